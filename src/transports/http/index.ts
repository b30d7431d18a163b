export { type Delivery, type HttpSenderOptions, HttpSignalSender } from './client.js';
export {
  type AnswerVerdict,
  type DeliveryOutcome,
  HttpDispatchError,
  judgeAnswer,
  parseRetryAfter,
} from './delivery.js';
export {
  type EdgeSendOptions,
  type HttpDestination,
  HttpEdgeClient,
  type HttpEdgeClientOptions,
} from './edge.js';
export { type ExactlyOnceStatus, HEADERS } from './headers.js';
export {
  type ExactlyOnceRouteConfig,
  type TollgatePluginOptions,
  tollgateOf,
  tollgatePlugin,
} from './plugin.js';
export {
  PROBLEM_BASE,
  PROBLEM_CONTENT_TYPE,
  type ProblemDetails,
  type ProblemKind,
  problemDetailsSchema,
  problemKindOf,
  problemType,
} from './problems.js';
export { createHttpRelay, type HttpRelayOptions } from './relay.js';
