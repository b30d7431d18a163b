/**
 * Crash points let tests kill a real process at an exact protocol step (SIGKILL, no cleanup),
 * to prove that nothing is lost or doubled whatever step a crash interrupts.
 * Set TOLLGATE_CRASH_AT=<point> (optionally TOLLGATE_CRASH_AFTER=<n> to crash on the n-th time).
 * Never set in production: unset, this is one string comparison.
 */
export type CrashPoint =
  | 'before-commit'
  | 'after-commit'
  | 'after-dispatch'
  | 'after-issue'
  | 'before-ack'
  | 'before-respond'
  | 'before-send';

let hits = 0;

export function crashPoint(point: CrashPoint): void {
  const wanted = process.env.TOLLGATE_CRASH_AT;
  if (wanted === undefined || wanted !== point) return;
  hits += 1;
  const after = Number(process.env.TOLLGATE_CRASH_AFTER ?? '1');
  if (hits >= after) process.kill(process.pid, 'SIGKILL');
}
