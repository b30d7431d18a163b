import { InvalidArgumentError, ScheduleBeyondHorizonError } from './errors.js';
import { type MintContext, pendingToken, type SignalSpec } from './mint.js';
import { sourcesOf, type TokenRecord, type TokenStatus } from './token.js';

/*
 * Scheduled signals: a token minted `scheduled` with a due time, which a relay's claimDue moves to `pending`
 * and sends once it is due. Pure functions; the handler context (unit-of-work.ts) stages what they build.
 */

/** How far ahead a handler may schedule unless the processor is told otherwise: 366 days. */
export const DEFAULT_SCHEDULE_HORIZON_MS = 366 * 24 * 60 * 60 * 1000;

/** When a scheduled signal is due: at an instant (ms since epoch), or after a delay from the handler's run. */
export interface ScheduleWhen {
  at?: number;
  afterMs?: number;
}

/** The statuses a cancel can revoke from, as the status table allows. */
export const CANCELLABLE: readonly TokenStatus[] = sourcesOf('revoked');

/**
 * The due instant of `when` (exactly one of `at` and `afterMs`, integers). A time in the past is allowed: the
 * signal is then due at once. One beyond `now + horizonMs` is refused with ScheduleBeyondHorizonError.
 */
export function dueAtOf(when: ScheduleWhen, now: number, horizonMs: number): number {
  const { at, afterMs } = when ?? {};
  if ((at === undefined) === (afterMs === undefined)) {
    throw new InvalidArgumentError('schedule needs exactly one of `at` and `afterMs`');
  }
  if (at !== undefined && !(Number.isSafeInteger(at) && at >= 0)) {
    throw new InvalidArgumentError('schedule `at` must be an instant: integer milliseconds since the epoch', {
      at,
    });
  }
  if (afterMs !== undefined && !Number.isSafeInteger(afterMs)) {
    throw new InvalidArgumentError('schedule `afterMs` must be an integer number of milliseconds', {
      afterMs,
    });
  }
  const dueAt = at ?? Math.max(0, now + (afterMs as number));
  const latest = now + horizonMs;
  if (dueAt > latest) throw new ScheduleBeyondHorizonError(dueAt, horizonMs, latest);
  return dueAt;
}

/** The `scheduled` token of a signal due at `dueAt`: a pending token's fields, held back until then. */
export function scheduledToken(signal: SignalSpec, context: MintContext, dueAt: number): TokenRecord {
  return { ...pendingToken(signal, context), status: 'scheduled', dueAt };
}

/** Checks a scheduling horizon option. */
export function checkHorizon(horizonMs: number): number {
  if (!Number.isSafeInteger(horizonMs) || horizonMs < 0) {
    throw new InvalidArgumentError('scheduleHorizonMs must be a non-negative integer', { horizonMs });
  }
  return horizonMs;
}
