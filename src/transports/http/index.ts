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
  type CredentialResolver,
  type IssueCall,
  IssueRefusedError,
  type IssueVerdict,
  issueCallFor,
  judgeIssueAnswer,
} from './issue-call.js';
export { DEFAULT_ISSUING_PATH, type Issued, type IssueSettings, issueToken } from './issuing.js';
export type { IssuingRouteOptions } from './issuing-route.js';
export {
  type ExactlyOnceRouteConfig,
  type TollgatePluginOptions,
  tollgateOf,
  tollgatePlugin,
} from './plugin.js';
export {
  type ProblemAnswer,
  type ProblemDetails,
  ProblemError,
  problemDetailsSchema,
  renderProblem,
  sendProblem,
} from './problem-details.js';
export { type ProblemMappingOptions, problemErrorHandler, problemForError } from './problem-mapping.js';
export { problemPagesRoute } from './problem-pages.js';
export {
  DEFAULT_PROBLEM_BASE,
  isProblemKind,
  PROBLEM_CONTENT_TYPE,
  PROBLEM_KINDS,
  PROBLEMS,
  type ProblemKind,
  type ProblemSpec,
  problemKindOf,
  problemKindOfCode,
  problemType,
} from './problems.js';
export { createHttpRelay, type HttpRelayOptions } from './relay.js';
export {
  type IssueBody,
  issueBodySchema,
  type TokenView,
  tokenView,
  tokenViewSchema,
} from './token-schemas.js';
