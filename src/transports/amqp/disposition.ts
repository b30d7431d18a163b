import { type ErrorCode, ErrorCodes, isTollgateError } from '../../core/errors.js';
import { type BackoffPolicy, backoffDelay } from '../../core/retry.js';

/** What to do with a delivery whose processing threw. */
export type Disposition =
  /** Run the handler again on this delivery after a pause. */
  | { action: 'retry'; delayMs: number }
  /** Give the message back to the broker after a pause; its token is untouched, so nothing is lost. */
  | { action: 'requeue'; delayMs: number }
  /** Nothing will make it succeed (or it failed too often): park it in the dead-letter queue with the reason. */
  | { action: 'dead-letter'; code: ErrorCode; reason: string };

/** Failures that are the same every time: retrying only delays the dead letter. */
const HOPELESS: ReadonlySet<ErrorCode> = new Set([
  ErrorCodes.TOKEN_HEADER_MISSING,
  ErrorCodes.TOKEN_MALFORMED,
  ErrorCodes.INVALID_PAYLOAD,
  ErrorCodes.LIMIT_EXCEEDED,
  ErrorCodes.SCHEDULE_BEYOND_HORIZON,
  ErrorCodes.UNKNOWN_SIGNAL_TYPE,
]);

/**
 * Failures that are not the message's fault: our infrastructure, or contention on shared state (the handler
 * was already re-run on fresh state several times). They must never dead-letter a healthy message.
 */
const NOT_THE_MESSAGES_FAULT: ReadonlySet<ErrorCode> = new Set([
  ErrorCodes.STORE_UNAVAILABLE,
  ErrorCodes.CLOSED,
  ErrorCodes.VERSION_CONFLICT,
]);

/** How long this delivery has been held, and how long a store outage may hold it. */
export interface Holding {
  heldMs: number;
  outageHoldMs: number;
}

/**
 * Decides from the error's code (never its text). `attempt` counts handler runs of this delivery, from 1.
 * Attempts are bounded in the process; the quorum queue's delivery limit bounds them across crashes.
 *
 * A store outage keeps the delivery here and re-runs it (for up to `outageHoldMs`) instead of requeueing at
 * once: the broker counts every requeue toward the queue's delivery limit, so requeueing through a long outage
 * would let it dead-letter healthy messages by itself. Held deliveries also fill the prefetch window, so the
 * broker stops handing this consumer more messages it could not handle either.
 */
export function dispositionOf(
  error: unknown,
  attempt: number,
  policy: BackoffPolicy,
  holding: Holding = { heldMs: 0, outageHoldMs: 0 },
): Disposition {
  const code: ErrorCode = isTollgateError(error) ? error.code : ErrorCodes.HANDLER_FAILED;
  const reason = error instanceof Error ? error.message : String(error);
  if (code === ErrorCodes.STORE_UNAVAILABLE && holding.heldMs < holding.outageHoldMs)
    return { action: 'retry', delayMs: backoffDelay(policy, attempt) };
  if (NOT_THE_MESSAGES_FAULT.has(code)) return { action: 'requeue', delayMs: backoffDelay(policy, attempt) };
  if (HOPELESS.has(code) || attempt >= policy.attempts) return { action: 'dead-letter', code, reason };
  return { action: 'retry', delayMs: backoffDelay(policy, attempt) };
}
