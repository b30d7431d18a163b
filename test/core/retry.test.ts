import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/core/retry.js';

const base = { baseDelayMs: 100, maxDelayMs: 1_000 };
const lowest = () => 0;
const highest = () => 0.999_999;

describe('backoffDelay', () => {
  it('doubles the cap per attempt from the base, and stops at the maximum', () => {
    const caps = [1, 2, 3, 4, 5, 6].map((attempt) => backoffDelay({ ...base, jitter: 'none' }, attempt));
    expect(caps).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('draws full jitter from zero up to the cap (the default)', () => {
    expect(backoffDelay(base, 3, lowest)).toBe(0);
    expect(backoffDelay(base, 3, highest)).toBe(399);
    expect(backoffDelay({ ...base, jitter: 'full' }, 3, () => 0.5)).toBe(200);
  });

  it('draws equal jitter from half the cap up to the cap: never zero', () => {
    const equal = { ...base, jitter: 'equal' as const };
    expect(backoffDelay(equal, 3, lowest)).toBe(200);
    expect(backoffDelay(equal, 3, highest)).toBe(399);
    expect(backoffDelay(equal, 1, lowest)).toBe(50);
  });

  it('stays finite and capped however many attempts came before, and treats attempt 0 as the first', () => {
    for (const jitter of ['full', 'equal', 'none'] as const) {
      const delay = backoffDelay({ ...base, jitter }, 1e9, highest);
      expect(Number.isFinite(delay)).toBe(true);
      expect(delay).toBeLessThanOrEqual(1_000);
    }
    expect(backoffDelay({ ...base, jitter: 'none' }, 0)).toBe(100);
  });
});
