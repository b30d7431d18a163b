import type { CancellationReason } from '@aws-sdk/client-dynamodb';
import { StoreFailureError, StoreUnavailableError, TollgateError } from '../../core/errors.js';
import {
  type CommitFailure,
  type CommitRequest,
  type ConsumeRequest,
  revokeConflictKey,
} from '../../core/store.js';
import { LIVE_STATUSES, type TokenRecord } from '../../core/token.js';
import { type Item, itemToToken } from './marshal.js';

/*
 * How the DynamoDB store reads failures: SDK errors and transaction cancellations are classified by their
 * names, codes and returned items (never by message text) into the core's CommitFailure vocabulary.
 */

/**
 * Codes DynamoDB puts in CancellationReasons for an item that a retry may well get through.
 * Others (ValidationError, ItemCollectionSizeLimitExceeded) will fail again.
 */
const TRANSIENT_REASON_CODES = new Set([
  'TransactionConflict',
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
  'RequestLimitExceeded',
]);

/** Error names of the SDK for conditions that pass with time. */
const TRANSIENT_ERROR_NAMES = new Set([
  'TransactionConflictException',
  'TransactionInProgressException',
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
]);

/** The parts of an SDK error this module reads. Everything is optional: anything may be thrown. */
interface SdkErrorShape {
  name?: unknown;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
  CancellationReasons?: CancellationReason[];
  Item?: Item;
}

export function sdkError(error: unknown): SdkErrorShape {
  return typeof error === 'object' && error !== null ? (error as SdkErrorShape) : {};
}

export function isConditionFailure(error: unknown): boolean {
  return sdkError(error).name === 'ConditionalCheckFailedException';
}

/**
 * Retrying may help: throttling, conflicts, server faults, and anything that never got an HTTP answer
 * (connection refused or reset, timeouts): those errors carry no `$metadata.httpStatusCode`.
 */
export function isTransientError(error: unknown): boolean {
  if (error instanceof TollgateError) return error instanceof StoreUnavailableError;
  const shape = sdkError(error);
  if (typeof shape.name === 'string' && TRANSIENT_ERROR_NAMES.has(shape.name)) return true;
  if (shape.$retryable !== undefined) return true;
  const status = shape.$metadata?.httpStatusCode;
  if (status === undefined) return error instanceof Error;
  return status >= 500 || status === 429;
}

/** Wraps whatever an SDK call threw into the store's error vocabulary (TollgateErrors pass through). */
export function storeError(error: unknown, operation: string): TollgateError {
  if (error instanceof TollgateError) return error;
  const name = typeof sdkError(error).name === 'string' ? String(sdkError(error).name) : 'unknown';
  const details = { operation, error: name };
  return isTransientError(error)
    ? new StoreUnavailableError(`DynamoDB ${operation} failed (${name}); retry later`, details, {
        cause: error,
      })
    : new StoreFailureError(`DynamoDB ${operation} failed (${name})`, details, { cause: error });
}

/** Cancellation reasons whose codes are all retriable (or absent: DynamoDB then says nothing useful). */
export function cancellationIsTransient(reasons: readonly CancellationReason[]): boolean {
  return reasons.every(
    (r) => r.Code === undefined || r.Code === 'None' || TRANSIENT_REASON_CODES.has(r.Code),
  );
}

/**
 * Why the incoming token could not be consumed, judged from its record as it was when the condition failed
 * (the same order of checks as the SQLite store). Undefined if the record would have passed.
 */
export function consumeFailure(
  token: TokenRecord | undefined,
  consume: ConsumeRequest,
  now: number,
): CommitFailure | undefined {
  if (token === undefined) return { kind: 'token-missing' };
  const expired = token.expiresAt !== undefined && token.expiresAt <= now;
  if (!LIVE_STATUSES.includes(token.status) || expired) {
    return { kind: 'token-not-live', status: token.status, expired };
  }
  if (token.fingerprint !== undefined && token.fingerprint !== consume.fingerprint) {
    return { kind: 'fingerprint-mismatch' };
  }
  return undefined;
}

/** How a commit's own action is named and treated when its condition fails (see PreparedOwnAction). */
export interface OwnActionLabel {
  item: string;
  retry: boolean;
}

/**
 * Classifies a failed commit transaction. Its items are, in this order: the consume update, one action per
 * state write, one put per minted token, one update per revoke, then the handler's own actions (`own`, in the
 * order staged); CancellationReasons are index-aligned with them. Only codes and the returned item are read,
 * never message text. The token's condition is judged first, as a failed consume means the signal was already
 * handled (or never valid) whatever else failed; then state versions, mints, revokes (a token no longer in the
 * status the handler read: a conflict, so the handler re-runs on fresh data), and last the handler's own
 * conditions. `reasons` is this commit's slice when it was cancelled as part of a group (CommitGroups).
 */
export function classifyCommitError(
  error: unknown,
  request: CommitRequest,
  own: readonly OwnActionLabel[] = [],
  reasons: readonly CancellationReason[] = sdkError(error).CancellationReasons ?? [],
): CommitFailure {
  if (sdkError(error).name !== 'TransactionCanceledException') {
    return isTransientError(error)
      ? { kind: 'transient', cause: error }
      : { kind: 'permanent', cause: error };
  }
  const failedCondition = (index: number) => reasons[index]?.Code === 'ConditionalCheckFailed';

  if (failedCondition(0)) {
    const item = reasons[0]?.Item;
    let token: TokenRecord | undefined;
    try {
      token = item === undefined ? undefined : itemToToken(item);
    } catch (malformed) {
      return { kind: 'permanent', cause: malformed };
    }
    // A record that passes every check cannot have failed the condition; be safe and let the caller retry.
    return consumeFailure(token, request.consume, request.now) ?? { kind: 'transient', cause: error };
  }
  for (const [i, write] of request.writes.entries()) {
    if (failedCondition(1 + i)) return { kind: 'version-conflict', key: write.key };
  }
  for (const [i, token] of request.mints.entries()) {
    if (failedCondition(1 + request.writes.length + i)) return { kind: 'mint-collision', tokenId: token.id };
  }
  const revokeStart = 1 + request.writes.length + request.mints.length;
  const revokes = request.revokes ?? [];
  for (const [i, revoke] of revokes.entries()) {
    if (failedCondition(revokeStart + i)) {
      return { kind: 'version-conflict', key: revokeConflictKey(revoke.tokenId) };
    }
  }
  const ownStart = revokeStart + revokes.length;
  for (const [i, action] of own.entries()) {
    if (failedCondition(ownStart + i)) {
      return { kind: 'own-condition-failed', item: action.item, retry: action.retry };
    }
  }
  return cancellationIsTransient(reasons)
    ? { kind: 'transient', cause: error }
    : { kind: 'permanent', cause: error };
}
