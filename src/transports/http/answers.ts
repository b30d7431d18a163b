import {
  ErrorCodes,
  HandlerFailedError,
  InvalidArgumentError,
  InvalidPayloadError,
  InvalidTokenError,
  LimitExceededError,
  OwnConditionFailedError,
  StoreUnavailableError,
  VersionConflictError,
} from '../../core/errors.js';
import type { Dropped, Rejected } from '../../core/processor.js';
import { type ProblemDetails, type ProblemKind, problem } from './problems.js';

/** An error answer: the problem body and whether the caller should come back later. */
export interface ProblemAnswer {
  body: ProblemDetails;
  /** Seconds for `Retry-After`, on answers where retrying the same request can succeed. */
  retryAfterSeconds?: number;
}

export interface RetryAfter {
  inProgressSeconds: number;
  unavailableSeconds: number;
}

const UNKNOWN_DETAIL =
  'No such token: it was never minted, or it was consumed long ago and its tombstone purged ' +
  '(the two cannot be told apart). Either way this request changes nothing.';

/** The answer to a token the duplicate check turned away (other than a consumed one with a stored response). */
export function answerForDropped(outcome: Dropped | Rejected, tokenId: string): ProblemAnswer {
  if (outcome.kind === 'rejected') {
    return answer(
      'fingerprint-mismatch',
      'The token was minted for a different payload; nothing changed.',
      tokenId,
    );
  }
  switch (outcome.error.code) {
    case ErrorCodes.TOKEN_CONSUMED:
      return answer(
        'token-consumed',
        'The token was already consumed and no response was kept for replay; this request changes nothing.',
        tokenId,
      );
    case ErrorCodes.TOKEN_REVOKED:
      return answer('token-revoked', 'The token was revoked; this request changes nothing.', tokenId);
    case ErrorCodes.TOKEN_EXPIRED:
      return answer(
        'token-expired',
        'The token expired before it was used; this request changes nothing.',
        tokenId,
      );
    default:
      return answer('token-unknown', UNKNOWN_DETAIL, tokenId);
  }
}

export function answerForInProgress(tokenId: string, retryAfter: RetryAfter): ProblemAnswer {
  return {
    ...answer('token-in-progress', 'A copy of this request with the same token is being processed.', tokenId),
    retryAfterSeconds: retryAfter.inProgressSeconds,
  };
}

/**
 * The answer to an error thrown while processing. None of these consumed the token: the same request may
 * be sent again.
 */
export function answerForError(
  error: unknown,
  tokenId: string | undefined,
  retryAfter: RetryAfter,
): ProblemAnswer {
  if (error instanceof InvalidTokenError) {
    return error.code === ErrorCodes.TOKEN_HEADER_MISSING
      ? answer('token-missing', 'This route requires an Exactly-Once-Token header.')
      : answer('token-malformed', 'Exactly-Once-Token must be 8-128 characters of A-Z a-z 0-9 _ -.');
  }
  if (error instanceof StoreUnavailableError) {
    return {
      ...answer('store-unavailable', 'The token store is unavailable; nothing was consumed.', tokenId),
      retryAfterSeconds: retryAfter.unavailableSeconds,
    };
  }
  if (error instanceof VersionConflictError) {
    return {
      ...answer(
        'state-contention',
        'The state kept changing under the handler; nothing was consumed.',
        tokenId,
      ),
      retryAfterSeconds: retryAfter.unavailableSeconds,
    };
  }
  if (error instanceof OwnConditionFailedError) {
    return answer(
      'own-condition-failed',
      `The handler's own condition on ${String(error.details.item)} failed; nothing was consumed.`,
      tokenId,
    );
  }
  if (error instanceof InvalidPayloadError) {
    return answer('invalid-payload', 'The request body cannot be fingerprinted as JSON.', tokenId);
  }
  if (error instanceof LimitExceededError) {
    return answer('response-too-large', 'The answer or the staged changes exceed the store limits.', tokenId);
  }
  if (error instanceof HandlerFailedError || error instanceof InvalidArgumentError) {
    return answer(
      'handler-failed',
      'The handler failed; nothing was consumed, the request may be retried.',
      tokenId,
    );
  }
  return answer('internal-error', 'The request could not be processed; nothing was consumed.', tokenId);
}

function answer(kind: ProblemKind, detail: string, tokenId?: string): ProblemAnswer {
  return { body: problem(kind, detail, tokenId) };
}
