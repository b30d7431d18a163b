/** Human text for durations, instants and endpoints; every view formats the same way. */

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * `42 ms`, `4.2 s`, `3 min 20 s`, `2 h 5 min`, `3 d 4 h`. Below a minute the unit is chosen after rounding, so
 * 59.6 s is `1 min`, not `60 s`; from a minute on the smaller unit is cut, never rounded up into the larger.
 * A negative duration (clocks apart) keeps its minus sign; one that is not a number, or infinite, is `—`.
 */
export function duration(ms: number): string {
  // An instant that does not parse makes NaN, which would show as `NaN d NaN h`.
  if (!Number.isFinite(ms)) return '—';
  const abs = Math.abs(ms);
  const sign = ms < 0 ? '−' : '';
  const millis = Math.round(abs);
  if (millis < SECOND) return `${sign}${millis} ms`;
  const tenths = Math.round(abs / 100);
  if (tenths < 100) return `${sign}${(tenths / 10).toFixed(1)} s`;
  const seconds = Math.round(abs / SECOND);
  if (seconds < 60) return `${sign}${seconds} s`;
  const atLeastAMinute = Math.max(abs, MINUTE);
  if (atLeastAMinute < HOUR) return `${sign}${pair(atLeastAMinute, MINUTE, 'min', SECOND, 's')}`;
  if (abs < DAY) return `${sign}${pair(abs, HOUR, 'h', MINUTE, 'min')}`;
  return `${sign}${pair(abs, DAY, 'd', HOUR, 'h')}`;
}

function pair(ms: number, big: number, bigUnit: string, small: number, smallUnit: string): string {
  const whole = Math.floor(ms / big);
  const rest = Math.floor((ms - whole * big) / small);
  return rest === 0 ? `${whole} ${bigUnit}` : `${whole} ${bigUnit} ${rest} ${smallUnit}`;
}

/** Time between two ISO instants, or `—` when either is missing. */
export function between(from: string | undefined, to: string | undefined): string {
  if (!from || !to) return '—';
  return duration(Date.parse(to) - Date.parse(from));
}

/** An instant in the reader's time zone, to the second: `2026-05-04 14:03:09`. */
export function instant(iso: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())} ` +
    `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`
  );
}

/** Time of day to the second, for "updated at". */
export function clockTime(iso: string): string {
  return instant(iso).slice(11);
}

/** How long ago an instant was, from now: `3 min 20 s ago`. */
export function age(iso: string, now: number = Date.now()): string {
  return duration(Math.max(0, now - Date.parse(iso)));
}

/** A rate per second with two significant decimals at most. */
export function rate(perSecond: number): string {
  if (perSecond === 0) return '0/s';
  return `${perSecond < 10 ? perSecond.toFixed(2).replace(/\.?0+$/, '') : Math.round(perSecond)}/s`;
}

/** The first characters of an id, for graph labels where the full id does not fit. */
export function shortId(id: string): string {
  return id.length > 10 ? `${id.slice(0, 8)}…` : id;
}
