import { ConfigError } from '../../core/errors.js';
import type { PoolSettings } from './pool.js';

/* What PostgresTokenStore is opened with, its defaults and the checks on it. */

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database (node-postgres connection string). */
  url: string;
  /** PostgreSQL schema (namespace) holding Tollgate's tables. Default 'tollgate'. */
  schema?: string;
  /** Connections in the pool. Default 10. A hop holds one while its handler runs. */
  poolSize?: number;
  /** Create the schema if missing (development, tests). Default false: production applies deploy/postgres. */
  createTables?: boolean;
  /** How long consumed, expired and revoked tokens are kept before purge. Default 24 h. */
  tombstoneRetentionMs?: number;
  /** How long to wait for a connection (a new one, or a free one from a busy pool). Default 5 s. */
  connectTimeoutMs?: number;
  /**
   * How long one statement may go unanswered before its connection is taken for dead and cut (the hop is then
   * re-run on another; the server rolls the cut one back). A partition that drops packets without a reset gives
   * no other sign. Applies to the handlers' own statements too. Default 60 s.
   */
  statementTimeoutMs?: number;
  /**
   * The server ends a transaction left idle this long (PostgreSQL's idle_in_transaction_session_timeout), so a
   * hop whose process vanished mid-transaction does not keep its token's row locked. A handler must not spend
   * longer than this between its own statements. Default 60 s.
   */
  idleInTransactionTimeoutMs?: number;
}

const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;
const DEFAULT_POOL_SIZE = 10;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_STATEMENT_TIMEOUT_MS = 60_000;
const DEFAULT_IDLE_IN_TRANSACTION_MS = 60_000;

export function positive(setting: string, value: number | undefined, fallback: number): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < 1)
    throw new ConfigError(setting, 'must be a positive integer');
  return chosen;
}

function checkUrl(url: string): string {
  let parsed: URL;
  try {
    if (typeof url !== 'string' || url === '') throw new TypeError('empty');
    parsed = new URL(url);
  } catch {
    throw new ConfigError('url', 'is not a URL; expected postgres://user:password@host:port/database');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigError('url', `must start with postgres:// or postgresql:// (got ${parsed.protocol}//)`);
  }
  return url;
}

/** The settings with their defaults, or a ConfigError naming the first one that is wrong. */
export function checkOptions(options: PostgresStoreOptions): { retentionMs: number; pool: PoolSettings } {
  const url = checkUrl(options.url);
  const retentionMs = options.tombstoneRetentionMs ?? DEFAULT_RETENTION_MS;
  if (!Number.isSafeInteger(retentionMs) || retentionMs < 0) {
    throw new ConfigError('tombstoneRetentionMs', 'must be a non-negative integer');
  }
  const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
  if (!Number.isSafeInteger(poolSize) || poolSize < 1) {
    throw new ConfigError('poolSize', 'must be a positive integer');
  }
  const pool: PoolSettings = {
    url,
    poolSize,
    connectTimeoutMs: positive('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS),
    statementTimeoutMs: positive(
      'statementTimeoutMs',
      options.statementTimeoutMs,
      DEFAULT_STATEMENT_TIMEOUT_MS,
    ),
    idleInTransactionTimeoutMs: positive(
      'idleInTransactionTimeoutMs',
      options.idleInTransactionTimeoutMs,
      DEFAULT_IDLE_IN_TRANSACTION_MS,
    ),
  };
  return { retentionMs, pool };
}
