import { DispatchFailedError, type ErrorCodes } from '../../core/errors.js';
import { HEADERS } from './headers.js';
import { problemKindOf } from './problems.js';

/** How the peer took a signal that counts as delivered. */
export type DeliveryOutcome =
  /** this request changed state */
  | 'processed'
  /** an earlier copy did; this is its replayed answer */
  | 'duplicate'
  /** the token was consumed (or is unknown: consumed and purged) and no answer was kept */
  | 'already-consumed'
  /** a 2xx from a peer that does not speak the protocol */
  | 'accepted';

export type AnswerVerdict =
  | { kind: 'delivered'; outcome: DeliveryOutcome }
  | { kind: 'retry'; retryAfterMs?: number }
  | { kind: 'permanent'; problemType?: string };

/**
 * What an HTTP answer means for the token that was sent. Decided on status, the Exactly-Once-Status header
 * and the problem `type`, never on text meant for humans.
 */
export function judgeAnswer(
  status: number,
  headers: Headers,
  problemType: string | undefined,
): AnswerVerdict {
  const marked = headers.get(HEADERS.status);
  // A processed or replayed answer may carry any status (a stored 404 is still the handler's answer).
  if (marked === 'processed' || marked === 'duplicate') return { kind: 'delivered', outcome: marked };
  const kind = problemKindOf(problemType);
  if (status === 409 && (kind === 'token-unknown' || kind === 'token-consumed')) {
    return { kind: 'delivered', outcome: 'already-consumed' };
  }
  if (status >= 200 && status < 300) return { kind: 'delivered', outcome: 'accepted' };
  const retriable = status === 408 || status === 429 || status >= 500 || kind === 'token-in-progress';
  if (retriable) {
    const retryAfterMs = parseRetryAfter(headers.get('retry-after'));
    return retryAfterMs === undefined ? { kind: 'retry' } : { kind: 'retry', retryAfterMs };
  }
  return problemType === undefined ? { kind: 'permanent' } : { kind: 'permanent', problemType };
}

/** `Retry-After` as delta-seconds or an HTTP date, in ms from now. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** A signal the peer refused for good, or that could not be delivered before the retries ran out. */
export class HttpDispatchError extends DispatchFailedError {
  /** HTTP status of the last answer; absent when no answer came (network error, timeout). */
  readonly status: number | undefined;
  /** Problem `type` URI of the last answer, when it was a problem document. */
  readonly problemType: string | undefined;
  /** True when retrying later may succeed (the token stays pending for the relay either way). */
  readonly retriable: boolean;

  constructor(
    message: string,
    facts: {
      tokenId: string;
      status?: number;
      problemType?: string;
      retriable: boolean;
      attempts: number;
      /** Which call of the delivery failed last: issuing the token at the receiver, or the signal itself. */
      step?: 'issue' | 'send';
      [fact: string]: unknown;
    },
    options?: ErrorOptions,
    code?: typeof ErrorCodes.ISSUE_REFUSED,
  ) {
    super(message, { ...facts }, options, code);
    this.status = facts.status;
    this.problemType = facts.problemType;
    this.retriable = facts.retriable;
  }
}
