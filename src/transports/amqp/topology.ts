import type { Channel } from 'amqplib';

export type ExchangeType = 'direct' | 'topic' | 'fanout' | 'headers';

export interface ExchangeSpec {
  name: string;
  /** Default 'topic'. */
  type?: ExchangeType;
}

export interface Binding {
  exchange: string;
  routingKey: string;
  /** The exchange is declared (durable) with this type. Default 'topic'. */
  exchangeType?: ExchangeType;
}

export interface QueueTopology {
  /** Declare exchanges, queues and bindings on every (re)connection. Default true; false = they exist already. */
  declare?: boolean;
  /** Default 'quorum': replicated, and it counts deliveries so a message that keeps crashing consumers ends. */
  queueType?: 'quorum' | 'classic';
  /**
   * Quorum queues: after this many deliveries the broker itself dead-letters the message. A backstop for
   * messages whose processing kills the process (the in-process attempt count dies with it). Default 20.
   */
  deliveryLimit?: number;
  /** Exchanges to bind the queue to. */
  bindings?: readonly Binding[];
}

/** Where a queue's rejected messages go: `<queue>.dlx` (fanout) → `<queue>.dead`. */
export interface DeadLetterNames {
  exchange: string;
  queue: string;
}

export function deadLetterNames(queue: string): DeadLetterNames {
  return { exchange: `${queue}.dlx`, queue: `${queue}.dead` };
}

export async function declareExchanges(channel: Channel, exchanges: readonly ExchangeSpec[]): Promise<void> {
  for (const exchange of exchanges) {
    if (exchange.name === '') continue; // the default exchange always exists
    await channel.assertExchange(exchange.name, exchange.type ?? 'topic', { durable: true });
  }
}

/**
 * Declares a consumer queue with its dead-letter exchange and queue, and its bindings. Idempotent: RabbitMQ
 * accepts a re-declaration with the same arguments, so this simply runs again after every reconnection.
 */
export async function declareConsumerQueue(
  channel: Channel,
  queue: string,
  topology: QueueTopology,
): Promise<void> {
  const dead = deadLetterNames(queue);
  const quorum = (topology.queueType ?? 'quorum') === 'quorum';
  const queueTypeArgs = quorum ? { 'x-queue-type': 'quorum' } : {};
  await channel.assertExchange(dead.exchange, 'fanout', { durable: true });
  await channel.assertQueue(dead.queue, { durable: true, arguments: queueTypeArgs });
  await channel.bindQueue(dead.queue, dead.exchange, '');
  await channel.assertQueue(queue, {
    durable: true,
    arguments: {
      ...queueTypeArgs,
      ...(quorum ? { 'x-delivery-limit': topology.deliveryLimit ?? 20 } : {}),
      'x-dead-letter-exchange': dead.exchange,
    },
  });
  for (const binding of topology.bindings ?? []) {
    if (binding.exchange === '') continue; // every queue is bound to the default exchange by its name
    await channel.assertExchange(binding.exchange, binding.exchangeType ?? 'topic', { durable: true });
    await channel.bindQueue(queue, binding.exchange, binding.routingKey);
  }
}
