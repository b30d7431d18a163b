// Protocol core
export * from './core/errors.js';
export { newTokenId, isTokenId } from './core/ids.js';
export { canonicalJson, fingerprint, isFingerprint, type JsonValue } from './core/fingerprint.js';
export * from './core/token.js';
export type * from './core/store.js';
export { COMMIT_LIMITS } from './core/limits.js';
export { pendingToken, type SignalSpec, type MintContext } from './core/mint.js';
export type { HandlerContext } from './core/unit-of-work.js';
export {
  processSignal,
  DEFAULT_RETRY,
  type Handler,
  type ProcessOutcome,
  type ProcessRequest,
  type Processed,
  type Dropped,
  type Rejected,
  type RetryPolicy,
} from './core/processor.js';
export type { BackoffPolicy } from './core/retry.js';
export { Dispatcher, type SignalSender, type DispatchReport, type DispatcherOptions } from './core/dispatcher.js';
export { Relay, type RelayOptions, type RelayPass, type RelayStats } from './core/relay.js';
export { silentLogger, type Logger, type Observer, type DropReason } from './core/observer.js';

// Stores
export { SqliteTokenStore, type SqliteStoreOptions } from './stores/sqlite/sqlite-store.js';
