/**
 * `tollgate/core` (and the root `tollgate`): the protocol without any transport, driver or SDK. Tokens, the
 * receiving steps (`processSignal`), minting, dispatch and relay over the `TokenStore` port, and the errors.
 * test/package/entries.test.ts proves that loading it loads no native module and no SDK.
 */
export {
  Dispatcher,
  type DispatcherOptions,
  type DispatchReport,
  type SignalSender,
} from '../core/dispatcher.js';
export * from '../core/errors.js';
export { canonicalJson, fingerprint, isFingerprint, type JsonValue } from '../core/fingerprint.js';
export { isTokenId, newTokenId } from '../core/ids.js';
export { COMMIT_LIMITS } from '../core/limits.js';
export { type MintContext, pendingToken, type SignalSpec } from '../core/mint.js';
export { type DropReason, type Logger, type Observer, silentLogger } from '../core/observer.js';
export {
  DEFAULT_RETRY,
  type Dropped,
  type Handler,
  type Processed,
  type ProcessOutcome,
  type ProcessRequest,
  processSignal,
  type Rejected,
  type RetryPolicy,
} from '../core/processor.js';
export { Relay, type RelayOptions, type RelayPass, type RelayStats } from '../core/relay.js';
export type { BackoffPolicy } from '../core/retry.js';
export { DEFAULT_SCHEDULE_HORIZON_MS, type ScheduleWhen, scheduledToken } from '../core/scheduling.js';
export type * from '../core/store.js';
export * from '../core/token.js';
// Span names and attribute keys, for users who filter or assert on Tollgate's spans.
export { SpanNames, TraceAttributes, type TraceOutcome } from '../core/tracing.js';
export type { HandlerContext } from '../core/unit-of-work.js';
