import {
  StoreFailureError,
  StoreSchemaMissingError,
  StoreUnavailableError,
  TollgateError,
} from '../../core/errors.js';
import type { CommitFailure } from '../../core/store.js';

/*
 * How the PostgreSQL store reads failures: by SQLSTATE (`error.code` of a server error), by Node's network error
 * codes, and by where the error came from (acquiring a connection, or a client whose connection broke). Never
 * by message text.
 */

/** What a failure means for the operation that met it. */
export type Verdict =
  /** The transaction lost a race (serialization failure, deadlock, lock timeout): run it again. */
  | 'conflict'
  /** The server or the connection is gone or refusing: try again later; nothing was written. */
  | 'unavailable'
  /** A unique key was taken (a token id on mint). */
  | 'duplicate'
  /** Tollgate's schema or tables are not there (dropped, or never created). */
  | 'schema-missing'
  /** Anything else: the same request would fail again. */
  | 'permanent';

/** SQLSTATEs with a meaning of their own. The full list: https://www.postgresql.org/docs/current/errcodes-appendix.html */
const BY_SQLSTATE: Readonly<Record<string, Verdict>> = {
  '40001': 'conflict', // serialization_failure
  '40P01': 'conflict', // deadlock_detected
  '55P03': 'conflict', // lock_not_available (lock_timeout, NOWAIT)
  '57014': 'conflict', // query_canceled (statement_timeout, pg_cancel_backend): the transaction was rolled back
  '23505': 'duplicate', // unique_violation
  '57P01': 'unavailable', // admin_shutdown (also pg_terminate_backend)
  '57P02': 'unavailable', // crash_shutdown
  '57P03': 'unavailable', // cannot_connect_now (starting up, shutting down, in recovery)
  '53300': 'unavailable', // too_many_connections
  '42P01': 'schema-missing', // undefined_table
  '3F000': 'schema-missing', // invalid_schema_name
};

/** SQLSTATE classes (first two characters) with one meaning throughout. */
const BY_SQLSTATE_CLASS: Readonly<Record<string, Verdict>> = {
  '08': 'unavailable', // connection exception
};

/** Node's codes for a connection that could not be made or was cut. */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** Where the error came from, as the store saw it. */
export interface ErrorContext {
  /** Thrown while acquiring a connection: with no SQLSTATE saying otherwise, the server is unreachable. */
  connecting?: boolean;
  /**
   * The client the statement ran on reported its connection broken (its 'error' event fired). node-postgres
   * gives "Connection terminated" and "not queryable" errors no code: this flag is how they are recognised.
   */
  connectionLost?: boolean;
}

function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

export function verdictOf(error: unknown, context: ErrorContext = {}): Verdict {
  if (error instanceof TollgateError) {
    return error instanceof StoreUnavailableError ? 'unavailable' : 'permanent';
  }
  const code = codeOf(error);
  // The server's own answer (a wrong password or database at connect included) says what it means.
  if (code !== undefined && SQLSTATE.test(code)) {
    return BY_SQLSTATE[code] ?? BY_SQLSTATE_CLASS[code.slice(0, 2)] ?? 'permanent';
  }
  if (code !== undefined && NETWORK_CODES.has(code)) return 'unavailable';
  // No answer at all: a connection that could not be made, or one that broke under the statement.
  if (context.connectionLost || context.connecting) return 'unavailable';
  return 'permanent';
}

/** Whether running the transaction again may succeed (the verdicts a commit reports as `transient`). */
export function isRetriable(verdict: Verdict): boolean {
  return verdict === 'conflict' || verdict === 'unavailable';
}

/**
 * The error, or one of its causes (a handler's error wrapping a driver error), whose SQLSTATE says the
 * transaction lost a race (serialization failure, deadlock): running the hop again may well succeed.
 */
export function conflictIn(error: unknown, depth = 4): unknown {
  let current: unknown = error;
  for (let i = 0; i < depth && typeof current === 'object' && current !== null; i++) {
    if (!(current instanceof TollgateError) && verdictOf(current) === 'conflict') return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Wraps whatever a statement threw into the store's error vocabulary (TollgateErrors pass through). */
export function storeError(error: unknown, operation: string, context: ErrorContext = {}): TollgateError {
  if (error instanceof TollgateError) return error;
  const code = codeOf(error) ?? 'none';
  const details = { operation, code };
  switch (verdictOf(error, context)) {
    case 'conflict':
    case 'unavailable':
      return new StoreUnavailableError(`PostgreSQL ${operation} failed (${code}); retry later`, details, {
        cause: error,
      });
    case 'schema-missing':
      return new StoreSchemaMissingError(
        `PostgreSQL ${operation} failed: Tollgate's tables are missing (${code}); ${HOW_TO_CREATE}`,
        details,
        { cause: error },
      );
    default:
      return new StoreFailureError(`PostgreSQL ${operation} failed (${code})`, details, { cause: error });
  }
}

/** A failed commit in the core's vocabulary: retriable failures leave the token untouched and are re-run. */
export function commitFailure(error: unknown, context: ErrorContext = {}): CommitFailure {
  return isRetriable(verdictOf(error, context))
    ? { kind: 'transient', cause: error }
    : { kind: 'permanent', cause: error };
}

export const HOW_TO_CREATE =
  'create them with psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/postgres/001_tollgate.sql ' +
  '-f deploy/postgres/002_scheduling.sql ' +
  '(schema "tollgate"; for another schema, call ensureSchema()), or open the store with createTables: true';
