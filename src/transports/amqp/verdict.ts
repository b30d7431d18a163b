import type { Settled } from '../../core/batch.js';
import type { ErrorCode } from '../../core/errors.js';
import type { TokenRecord } from '../../core/token.js';

/** What becomes of one delivery of a batch once its run of the protocol has settled. */
export type Verdict =
  /** Its token consumed with its state change: its emitted signals go out with the batch's, and it is acked with it. */
  | { action: 'ack'; processed: true; emitted: readonly TokenRecord[] }
  /** A copy of a signal already applied, or one whose token ended: acked with the batch, and nothing else. */
  | { action: 'ack'; processed: false }
  /** Its token is bound to another payload: parked in the dead-letter queue with the reason, never run again. */
  | { action: 'dead-letter'; code: ErrorCode; reason: string }
  /**
   * Its run threw and its token is untouched: it leaves the batch, whose other deliveries go on, and
   * `dispositionOf` decides what comes next (a re-run after a pause, a requeue, a dead letter).
   */
  | { action: 'alone'; error: unknown };

/** One delivery's verdict, from its own outcome alone: what its neighbours did never changes it. */
export function verdictOf(settled: Settled<unknown>): Verdict {
  if (!settled.ok) return { action: 'alone', error: settled.error };
  const { outcome } = settled;
  switch (outcome.kind) {
    case 'processed':
      return { action: 'ack', processed: true, emitted: outcome.emitted };
    case 'dropped':
      return { action: 'ack', processed: false };
    case 'rejected':
      return { action: 'dead-letter', code: outcome.error.code, reason: outcome.error.message };
  }
}
