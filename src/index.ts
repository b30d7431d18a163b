// Protocol core

export {
  Dispatcher,
  type DispatcherOptions,
  type DispatchReport,
  type SignalSender,
} from './core/dispatcher.js';
export * from './core/errors.js';
export { canonicalJson, fingerprint, isFingerprint, type JsonValue } from './core/fingerprint.js';
export { isTokenId, newTokenId } from './core/ids.js';
export { COMMIT_LIMITS } from './core/limits.js';
export { type MintContext, pendingToken, type SignalSpec } from './core/mint.js';
export { type DropReason, type Logger, type Observer, silentLogger } from './core/observer.js';
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
} from './core/processor.js';
export { Relay, type RelayOptions, type RelayPass, type RelayStats } from './core/relay.js';
export type { BackoffPolicy } from './core/retry.js';
export type * from './core/store.js';
export * from './core/token.js';
export type { HandlerContext } from './core/unit-of-work.js';
export { buildGateway, type GatewayDeps } from './gateway/app.js';
export { ENV_NAMES, type GatewayConfig, loadConfig } from './gateway/config.js';
export { createLogger } from './gateway/logging.js';
export { type RunningGateway, startGateway } from './gateway/runtime.js';
export { type DynamoDbStoreOptions, DynamoDbTokenStore } from './stores/dynamodb/dynamodb-store.js';
export type {
  DynamoConditionCheckInput,
  DynamoDeleteInput,
  DynamoGetInput,
  DynamoItem,
  DynamoPutInput,
  DynamoTx,
  DynamoUpdateInput,
  OwnActionOptions,
} from './stores/dynamodb/own-data.js';
export { ensureTables, stateTableDefinition, tokensTableDefinition } from './stores/dynamodb/tables.js';
export { openStore, type StoreConfig } from './stores/open.js';
export {
  type PgTx,
  type PostgresStoreOptions,
  PostgresTokenStore,
} from './stores/postgres/postgres-store.js';
export type { SqliteParams, SqliteRunOptions, SqliteTx, SqliteValue } from './stores/sqlite/own-data.js';
// Stores
export { type SqliteStoreOptions, SqliteTokenStore } from './stores/sqlite/sqlite-store.js';
export * from './transports/amqp/index.js';
export * from './transports/http/index.js';
