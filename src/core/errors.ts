/**
 * Every failure Tollgate reports is a TollgateError with a stable `code`.
 * Callers branch on `code` (or `instanceof`), never on `message`.
 */
export const ErrorCodes = {
  TOKEN_HEADER_MISSING: 'TOLLGATE_ERR_TOKEN_HEADER_MISSING',
  TOKEN_MALFORMED: 'TOLLGATE_ERR_TOKEN_MALFORMED',
  TOKEN_UNKNOWN: 'TOLLGATE_ERR_TOKEN_UNKNOWN',
  TOKEN_CONSUMED: 'TOLLGATE_ERR_TOKEN_CONSUMED',
  TOKEN_REVOKED: 'TOLLGATE_ERR_TOKEN_REVOKED',
  TOKEN_EXPIRED: 'TOLLGATE_ERR_TOKEN_EXPIRED',
  TOKEN_EXISTS: 'TOLLGATE_ERR_TOKEN_EXISTS',
  TOKEN_IN_PROGRESS: 'TOLLGATE_ERR_TOKEN_IN_PROGRESS',
  FINGERPRINT_MISMATCH: 'TOLLGATE_ERR_FINGERPRINT_MISMATCH',
  VERSION_CONFLICT: 'TOLLGATE_ERR_VERSION_CONFLICT',
  OWN_CONDITION_FAILED: 'TOLLGATE_ERR_OWN_CONDITION_FAILED',
  INVALID_TRANSITION: 'TOLLGATE_ERR_INVALID_TRANSITION',
  STORE_UNAVAILABLE: 'TOLLGATE_ERR_STORE_UNAVAILABLE',
  STORE_FAILURE: 'TOLLGATE_ERR_STORE_FAILURE',
  STORE_SCHEMA_MISSING: 'TOLLGATE_ERR_STORE_SCHEMA_MISSING',
  LIMIT_EXCEEDED: 'TOLLGATE_ERR_LIMIT_EXCEEDED',
  SCHEDULE_BEYOND_HORIZON: 'TOLLGATE_ERR_SCHEDULE_BEYOND_HORIZON',
  INVALID_PAYLOAD: 'TOLLGATE_ERR_INVALID_PAYLOAD',
  INVALID_ARGUMENT: 'TOLLGATE_ERR_INVALID_ARGUMENT',
  UNKNOWN_SIGNAL_TYPE: 'TOLLGATE_ERR_UNKNOWN_SIGNAL_TYPE',
  HANDLER_FAILED: 'TOLLGATE_ERR_HANDLER_FAILED',
  DISPATCH_FAILED: 'TOLLGATE_ERR_DISPATCH_FAILED',
  ISSUE_REFUSED: 'TOLLGATE_ERR_ISSUE_REFUSED',
  CONFIG_INVALID: 'TOLLGATE_ERR_CONFIG_INVALID',
  CLOSED: 'TOLLGATE_ERR_CLOSED',
  // Refusals an HTTP answer gives without a TollgateError behind it; each names one problem kind.
  TOKEN_NOT_FOUND: 'TOLLGATE_ERR_TOKEN_NOT_FOUND',
  TOKEN_NOT_PENDING: 'TOLLGATE_ERR_TOKEN_NOT_PENDING',
  CONVERSATION_NOT_FOUND: 'TOLLGATE_ERR_CONVERSATION_NOT_FOUND',
  DESTINATION_MISMATCH: 'TOLLGATE_ERR_DESTINATION_MISMATCH',
  ROUTE_NOT_FOUND: 'TOLLGATE_ERR_ROUTE_NOT_FOUND',
  NOT_FOUND: 'TOLLGATE_ERR_NOT_FOUND',
  METHOD_NOT_ALLOWED: 'TOLLGATE_ERR_METHOD_NOT_ALLOWED',
  UNAUTHORIZED: 'TOLLGATE_ERR_UNAUTHORIZED',
  FORBIDDEN: 'TOLLGATE_ERR_FORBIDDEN',
  BODY_TOO_LARGE: 'TOLLGATE_ERR_BODY_TOO_LARGE',
  URI_TOO_LONG: 'TOLLGATE_ERR_URI_TOO_LONG',
  UNSUPPORTED_MEDIA_TYPE: 'TOLLGATE_ERR_UNSUPPORTED_MEDIA_TYPE',
  CONSOLE_UNAVAILABLE: 'TOLLGATE_ERR_CONSOLE_UNAVAILABLE',
  INTERNAL: 'TOLLGATE_ERR_INTERNAL',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export class TollgateError extends Error {
  readonly code: ErrorCode;
  /** Extra structured facts about the failure (token id, limit, key...). Never payloads or secrets. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** The signal carries no token, or one that cannot be a token id. */
export class InvalidTokenError extends TollgateError {}
/** The token does not exist (never minted, or consumed long ago and purged: indistinguishable by design). */
export class UnknownTokenError extends TollgateError {
  constructor(tokenId: string) {
    super(ErrorCodes.TOKEN_UNKNOWN, `token ${tokenId} is unknown (never minted, or consumed and purged)`, {
      tokenId,
    });
  }
}
/** The token was already consumed: the signal is a duplicate. */
export class TokenConsumedError extends TollgateError {
  constructor(tokenId: string) {
    super(ErrorCodes.TOKEN_CONSUMED, `token ${tokenId} was already consumed`, { tokenId });
  }
}
export class TokenRevokedError extends TollgateError {
  constructor(tokenId: string) {
    super(ErrorCodes.TOKEN_REVOKED, `token ${tokenId} was revoked`, { tokenId });
  }
}
export class TokenExpiredError extends TollgateError {
  constructor(tokenId: string) {
    super(ErrorCodes.TOKEN_EXPIRED, `token ${tokenId} expired before it was used`, { tokenId });
  }
}
export class TokenExistsError extends TollgateError {
  constructor(tokenId: string, reason: string) {
    super(ErrorCodes.TOKEN_EXISTS, `token ${tokenId} already exists: ${reason}`, { tokenId });
  }
}
export class FingerprintMismatchError extends TollgateError {
  constructor(tokenId: string) {
    super(ErrorCodes.FINGERPRINT_MISMATCH, `token ${tokenId} is bound to a different payload`, { tokenId });
  }
}
export class VersionConflictError extends TollgateError {
  constructor(key: string, attempts: number) {
    super(
      ErrorCodes.VERSION_CONFLICT,
      `state "${key}" kept changing under the handler (${attempts} attempts)`,
      { key, attempts },
    );
  }
}
/**
 * A condition the handler put on its own data (not on a token) did not hold, e.g. a DynamoDB ConditionExpression
 * on the application's table. Nothing of the hop was written; the token is untouched. Never a duplicate.
 */
export class OwnConditionFailedError extends TollgateError {
  constructor(item: string, attempts: number) {
    super(
      ErrorCodes.OWN_CONDITION_FAILED,
      `the handler's own condition on ${item} failed (${attempts} attempts); nothing of the hop was written`,
      { item, attempts },
    );
  }
}
export class InvalidTransitionError extends TollgateError {
  constructor(tokenId: string, from: string, to: string) {
    super(ErrorCodes.INVALID_TRANSITION, `token ${tokenId} cannot move from ${from} to ${to}`, {
      tokenId,
      from,
      to,
    });
  }
}
/** The store could not be reached or kept refusing (throttling, conflicts). Safe to retry later: nothing changed. */
export class StoreUnavailableError extends TollgateError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(ErrorCodes.STORE_UNAVAILABLE, message, details, options);
  }
}
/** The store rejected the request for a reason retrying will not fix. */
export class StoreFailureError extends TollgateError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(ErrorCodes.STORE_FAILURE, message, details, options);
  }
}
/** The store's tables are not there (or are older than this Tollgate); the message says how to create them. */
export class StoreSchemaMissingError extends TollgateError {
  constructor(message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(ErrorCodes.STORE_SCHEMA_MISSING, message, details, options);
  }
}
/** The request would exceed a store limit (item count or size); caught before anything is sent. */
export class LimitExceededError extends TollgateError {
  constructor(message: string, details: Record<string, unknown>) {
    super(ErrorCodes.LIMIT_EXCEEDED, message, details);
  }
}
/**
 * A handler scheduled a signal due later than the horizon allows (`scheduleHorizonMs`, default 366 days): a
 * date computed wrongly (seconds for milliseconds) would otherwise sit in the store for years. Nothing was written.
 */
export class ScheduleBeyondHorizonError extends TollgateError {
  constructor(dueAt: number, horizonMs: number, latest: number) {
    super(
      ErrorCodes.SCHEDULE_BEYOND_HORIZON,
      `a signal due at ${dueAt} is beyond the scheduling horizon of ${horizonMs} ms (latest ${latest})`,
      { dueAt, horizonMs, latest },
    );
  }
}
export class InvalidPayloadError extends TollgateError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(ErrorCodes.INVALID_PAYLOAD, message, details);
  }
}
export class InvalidArgumentError extends TollgateError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(ErrorCodes.INVALID_ARGUMENT, message, details);
  }
}
/** The user's handler threw; the token is untouched. */
export class HandlerFailedError extends TollgateError {
  constructor(tokenId: string, cause: unknown) {
    super(
      ErrorCodes.HANDLER_FAILED,
      `handler failed for token ${tokenId}: ${describe(cause)}`,
      { tokenId },
      { cause },
    );
  }
}
/**
 * A signal was not handed over. `details.retriable === false` marks a refusal that retrying will not fix; the
 * relay gives such a token up (see isPermanentDispatchFailure). `ISSUE_REFUSED`: the receiver would not issue
 * the token, so the signal was never sent.
 */
export class DispatchFailedError extends TollgateError {
  constructor(
    message: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
    code: typeof ErrorCodes.DISPATCH_FAILED | typeof ErrorCodes.ISSUE_REFUSED = ErrorCodes.DISPATCH_FAILED,
  ) {
    super(code, message, details, options);
  }
}

/** A dispatch failure that retrying will not fix: the peer refused the token for good. */
export function isPermanentDispatchFailure(error: unknown): error is DispatchFailedError {
  return error instanceof DispatchFailedError && error.details.retriable === false;
}
export class ConfigError extends TollgateError {
  constructor(setting: string, problem: string) {
    super(ErrorCodes.CONFIG_INVALID, `invalid setting ${setting}: ${problem}`, { setting });
  }
}
export class ClosedError extends TollgateError {
  constructor(what: string) {
    super(ErrorCodes.CLOSED, `${what} is closed`, {});
  }
}

export function isTollgateError(value: unknown): value is TollgateError {
  return value instanceof TollgateError;
}

function describe(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
