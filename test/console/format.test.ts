import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { age, between, clockTime, duration, instant, rate, shortId } from '../../console/src/format.js';

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

describe('duration', () => {
  it('shows whole milliseconds below a second', () => {
    expect(duration(0)).toBe('0 ms');
    expect(duration(42)).toBe('42 ms');
    expect(duration(42.4)).toBe('42 ms');
    expect(duration(42.5)).toBe('43 ms');
    expect(duration(999)).toBe('999 ms');
  });

  it('shows seconds with one decimal below 10 s, whole seconds up to a minute', () => {
    expect(duration(SECOND)).toBe('1.0 s');
    expect(duration(4_200)).toBe('4.2 s');
    expect(duration(9_900)).toBe('9.9 s');
    expect(duration(10 * SECOND)).toBe('10 s');
    expect(duration(10_400)).toBe('10 s');
    expect(duration(59 * SECOND)).toBe('59 s');
  });

  it('shows two units from a minute on, the smaller one left out when it is zero', () => {
    expect(duration(MINUTE)).toBe('1 min');
    expect(duration(3 * MINUTE + 20 * SECOND)).toBe('3 min 20 s');
    expect(duration(HOUR - 1)).toBe('59 min 59 s');
    expect(duration(HOUR)).toBe('1 h');
    expect(duration(2 * HOUR + 5 * MINUTE)).toBe('2 h 5 min');
    expect(duration(2 * HOUR + 5 * MINUTE + 59 * SECOND)).toBe('2 h 5 min');
    expect(duration(DAY - 1)).toBe('23 h 59 min');
    expect(duration(DAY)).toBe('1 d');
    expect(duration(3 * DAY + 4 * HOUR)).toBe('3 d 4 h');
    expect(duration(400 * DAY + 30 * MINUTE)).toBe('400 d');
  });

  it('picks the unit after rounding: never `1000 ms`, `10.0 s` or `60 s`', () => {
    expect(duration(999.4)).toBe('999 ms');
    expect(duration(999.5)).toBe('1.0 s');
    expect(duration(9_949)).toBe('9.9 s');
    expect(duration(9_950)).toBe('10 s');
    expect(duration(9_999)).toBe('10 s');
    expect(duration(59_499)).toBe('59 s');
    expect(duration(59_500)).toBe('1 min');
    expect(duration(59_999)).toBe('1 min');
    expect(duration(-59_999)).toBe('−1 min');
  });

  it('marks a negative duration (clocks apart) with a minus sign', () => {
    expect(duration(-42)).toBe('−42 ms');
    expect(duration(-1_500)).toBe('−1.5 s');
    expect(duration(-(3 * MINUTE + 20 * SECOND))).toBe('−3 min 20 s');
    expect(duration(-(3 * DAY + 4 * HOUR))).toBe('−3 d 4 h');
  });

  it('is "—" for a duration that is not a number or is infinite', () => {
    expect(duration(Number.NaN)).toBe('—');
    expect(duration(Number.POSITIVE_INFINITY)).toBe('—');
    expect(duration(Number.NEGATIVE_INFINITY)).toBe('—');
  });
});

describe('between', () => {
  it('is the time from one ISO instant to another, whatever their offsets', () => {
    expect(between('2026-05-04T12:00:00.000Z', '2026-05-04T12:00:00.042Z')).toBe('42 ms');
    expect(between('2026-05-04T14:00:00+02:00', '2026-05-04T12:03:20Z')).toBe('3 min 20 s');
    expect(between('2026-05-04T12:00:00.042Z', '2026-05-04T12:00:00.000Z')).toBe('−42 ms');
  });

  it('is "—" when either instant is missing', () => {
    expect(between(undefined, '2026-05-04T12:00:00Z')).toBe('—');
    expect(between('2026-05-04T12:00:00Z', undefined)).toBe('—');
    expect(between('', '2026-05-04T12:00:00Z')).toBe('—');
    expect(between(undefined, undefined)).toBe('—');
  });

  it('is "—" when either instant does not parse', () => {
    expect(between('not an instant', '2026-05-04T12:00:00Z')).toBe('—');
    expect(between('2026-05-04T12:00:00Z', 'not an instant')).toBe('—');
  });
});

describe('instants', () => {
  // Shown in the reader's time zone: one with a half-hour offset, so a UTC or a whole-hour slip would show.
  const zone = process.env.TZ;
  beforeAll(() => {
    process.env.TZ = 'Asia/Kolkata';
  });
  afterAll(() => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });

  it("shows an instant in the reader's time zone, to the second", () => {
    expect(instant('2026-05-04T08:33:09.999Z')).toBe('2026-05-04 14:03:09');
    expect(instant('2026-12-31T20:00:00Z')).toBe('2027-01-01 01:30:00');
    expect(instant('2026-01-02T03:04:05+05:30')).toBe('2026-01-02 03:04:05');
  });

  it('shows a text that is not an instant as it is', () => {
    expect(instant('not an instant')).toBe('not an instant');
    expect(instant('')).toBe('');
  });

  it('shows the time of day alone', () => {
    expect(clockTime('2026-05-04T08:33:09Z')).toBe('14:03:09');
    expect(clockTime('2026-05-04T18:30:00Z')).toBe('00:00:00');
  });
});

describe('age', () => {
  const now = Date.parse('2026-05-04T12:03:20Z');

  it('is the time since an instant', () => {
    expect(age('2026-05-04T12:00:00Z', now)).toBe('3 min 20 s');
    expect(age('2026-05-04T12:03:19.958Z', now)).toBe('42 ms');
    expect(age('2026-05-01T11:03:20Z', now)).toBe('3 d 1 h');
  });

  it('is zero for an instant in the future (a clock ahead of the reader)', () => {
    expect(age('2026-05-04T12:05:00Z', now)).toBe('0 ms');
  });

  it('is "—" for an instant that does not parse', () => {
    expect(age('not an instant', now)).toBe('—');
  });
});

describe('rate', () => {
  it('shows up to two decimals below 10 per second, without trailing zeros', () => {
    expect(rate(0)).toBe('0/s');
    expect(rate(0.5)).toBe('0.5/s');
    expect(rate(0.01)).toBe('0.01/s');
    expect(rate(1)).toBe('1/s');
    expect(rate(1.1)).toBe('1.1/s');
    expect(rate(2.25)).toBe('2.25/s');
    expect(rate(2.257)).toBe('2.26/s');
  });

  it('shows a rate too small for two decimals as 0, and one rounded up to 10 as 10', () => {
    expect(rate(0.004)).toBe('0/s');
    expect(rate(9.999)).toBe('10/s');
  });

  it('shows whole numbers from 10 per second on', () => {
    expect(rate(10)).toBe('10/s');
    expect(rate(123.4)).toBe('123/s');
    expect(rate(123.5)).toBe('124/s');
  });
});

describe('shortId', () => {
  it('keeps an id of up to 10 characters whole', () => {
    expect(shortId('')).toBe('');
    expect(shortId('abcdefghij')).toBe('abcdefghij');
  });

  it('cuts a longer id to its first 8 characters and an ellipsis', () => {
    expect(shortId('abcdefghijk')).toBe('abcdefgh…');
    expect(shortId('Zq3xW9pL0aB4cD8eF2gH1i')).toBe('Zq3xW9pL…');
  });
});
