export {
  AmqpConnection,
  type AmqpConnectionOptions,
  type ConnectHook,
  type ReconnectPolicy,
} from './connection.js';
export {
  AmqpConsumer,
  type ConsumeOptions,
  type ConsumerDependencies,
  type ConsumerStats,
} from './consumer.js';
export { amqpDestination, queueDestination } from './destination.js';
export { AmqpHeaders } from './headers.js';
export {
  AmqpPublisher,
  type AmqpPublisherOptions,
  type AmqpTarget,
  type PublishOptions,
} from './publisher.js';
export {
  type AmqpRelayOptions,
  type AmqpTollgate,
  type AmqpTollgateOptions,
  createAmqpTollgate,
} from './tollgate.js';
export {
  type Binding,
  type DeadLetterNames,
  deadLetterNames,
  declareConsumerQueue,
  declareExchanges,
  type ExchangeSpec,
  type ExchangeType,
  type QueueTopology,
} from './topology.js';
