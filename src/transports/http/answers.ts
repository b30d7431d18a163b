import { ErrorCodes } from '../../core/errors.js';
import type { Dropped, Rejected } from '../../core/processor.js';
import type { ProblemAnswer } from './problem-details.js';
import { problemForError } from './problem-mapping.js';

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
    return {
      kind: 'fingerprint-mismatch',
      detail: 'The token was minted for a different payload; nothing changed.',
      tokenId,
    };
  }
  switch (outcome.error.code) {
    case ErrorCodes.TOKEN_CONSUMED:
      return {
        kind: 'token-consumed',
        detail:
          'The token was already consumed and no response was kept for replay; this request changes nothing.',
        tokenId,
      };
    case ErrorCodes.TOKEN_REVOKED:
      return {
        kind: 'token-revoked',
        detail: 'The token was revoked; this request changes nothing.',
        tokenId,
      };
    case ErrorCodes.TOKEN_EXPIRED:
      return {
        kind: 'token-expired',
        detail: 'The token expired before it was used; this request changes nothing.',
        tokenId,
      };
    default:
      return { kind: 'token-unknown', detail: UNKNOWN_DETAIL, tokenId };
  }
}

export function answerForInProgress(tokenId: string, retryAfter: RetryAfter): ProblemAnswer {
  return {
    kind: 'token-in-progress',
    detail: 'A copy of this request with the same token is being processed.',
    tokenId,
    retryAfterSeconds: retryAfter.inProgressSeconds,
  };
}

/**
 * The answer to an error thrown while processing, from the catalogue every Tollgate HTTP answer shares. None of
 * these consumed the token: the same request may be sent again.
 */
export function answerForError(
  error: unknown,
  tokenId: string | undefined,
  retryAfter: RetryAfter,
): ProblemAnswer {
  return problemForError(error, {
    ...(tokenId === undefined ? {} : { tokenId }),
    retryAfterSeconds: retryAfter.unavailableSeconds,
  });
}
