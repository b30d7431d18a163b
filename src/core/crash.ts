/**
 * Crash points let tests kill a real process at an exact protocol step (SIGKILL, no cleanup),
 * to prove that nothing is lost or doubled whatever step a crash interrupts.
 * Set TOLLGATE_CRASH_AT=<point> (optionally TOLLGATE_CRASH_AFTER=<n> to crash on the n-th time).
 * Never set in production: unset, this is one comparison.
 */
export type CrashPoint =
  | 'before-commit'
  | 'after-commit'
  | 'after-dispatch'
  | 'after-issue'
  | 'before-ack'
  | 'before-respond'
  | 'before-send'
  /** A batch of several hops committed together; none of their emitted signals handed to the broker yet. */
  | 'after-group-commit'
  /** The broker confirmed part of a batch's messages; the process has heard nothing yet of the rest. */
  | 'after-some-published'
  /** Just before one ack with `multiple` settles several deliveries of a batch. */
  | 'before-multiple-ack';

// Read once: a crash point is armed for a whole process, and reading process.env costs a call into C++ each time.
const WANTED = process.env.TOLLGATE_CRASH_AT;
const AFTER = Number(process.env.TOLLGATE_CRASH_AFTER ?? '1');
let hits = 0;

export function crashPoint(point: CrashPoint): void {
  if (WANTED === undefined || WANTED !== point) return;
  hits += 1;
  if (hits >= AFTER) process.kill(process.pid, 'SIGKILL');
}
