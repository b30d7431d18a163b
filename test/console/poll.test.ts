import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiProblem, Unreachable } from '../../console/src/api.js';
import { nextDelay, POLL_TIMING, poll } from '../../console/src/poll.js';

describe('the wait before the next poll', () => {
  it('is the interval while the gateway answers, then 1 s, 2 s, 4 s, 8 s and 10 s from then on', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map((failures) => nextDelay(failures))).toEqual([
      2_000, 1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000,
    ]);
  });

  it('stays at the maximum however long the gateway is away', () => {
    expect(nextDelay(2_000)).toBe(10_000);
  });

  it('follows the timing it is given', () => {
    const timing = { intervalMs: 500, firstBackoffMs: 300, maxBackoffMs: 1_000 };
    expect([0, 1, 2, 3, 4].map((failures) => nextDelay(failures, timing))).toEqual([
      500, 300, 600, 1_000, 1_000,
    ]);
  });

  it('uses the console timing by default', () => {
    expect(POLL_TIMING).toEqual({ intervalMs: 2_000, firstBackoffMs: 1_000, maxBackoffMs: 10_000 });
  });
});

describe('poll', () => {
  let stop: (() => void) | undefined;

  beforeEach(() => {
    vi.useFakeTimers({ now: 0 });
  });

  afterEach(() => {
    stop?.();
    stop = undefined;
    vi.useRealTimers();
  });

  /** Polls with tasks that settle at once, as `outcomes` says one after the other; returns when each started. */
  function pollWith(outcomes: Array<'ok' | Error>): number[] {
    const starts: number[] = [];
    stop = poll(async () => {
      const outcome = outcomes[starts.length] ?? 'ok';
      starts.push(Date.now());
      if (outcome !== 'ok') throw outcome;
    });
    return starts;
  }

  it('runs the task at once, then once per interval while it succeeds', async () => {
    const starts = pollWith([]);
    expect(starts).toEqual([0]);
    await vi.advanceTimersByTimeAsync(6_000);
    expect(starts).toEqual([0, 2_000, 4_000, 6_000]);
  });

  it('backs off while the gateway is unreachable: 1 s, 2 s, 4 s, 8 s, then every 10 s', async () => {
    const starts = pollWith(Array.from({ length: 10 }, () => new Unreachable(new Error('ECONNREFUSED'))));
    await vi.advanceTimersByTimeAsync(45_000);
    expect(starts).toEqual([0, 1_000, 3_000, 7_000, 15_000, 25_000, 35_000, 45_000]);
  });

  it('returns to the interval once the gateway answers, even with an error', async () => {
    const away = () => new Unreachable(new Error('ECONNREFUSED'));
    const starts = pollWith([
      away(),
      away(),
      'ok',
      away(),
      new ApiProblem(503, { title: 'Store unavailable' }, 'Service Unavailable'),
      away(),
      new TypeError('a bug in the task'),
      'ok',
    ]);
    await vi.advanceTimersByTimeAsync(13_000);
    // Unreachable twice: 1 s, 2 s; answered: 2 s; unreachable: 1 s; a problem: 2 s; unreachable: 1 s; a bug: 2 s.
    expect(starts).toEqual([0, 1_000, 3_000, 5_000, 6_000, 8_000, 9_000, 11_000, 13_000]);
  });

  it('never runs two attempts at once: the wait starts when an attempt settles', async () => {
    const starts: number[] = [];
    let running = 0;
    let most = 0;
    stop = poll(async () => {
      starts.push(Date.now());
      running += 1;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 5_000));
      running -= 1;
    });
    await vi.advanceTimersByTimeAsync(20_000);
    expect(starts).toEqual([0, 7_000, 14_000]);
    expect(most).toBe(1);
  });

  it('runs no further attempt once stopped between attempts', async () => {
    const starts = pollWith([]);
    await vi.advanceTimersByTimeAsync(2_000);
    stop?.();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(starts).toEqual([0, 2_000]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('lets an attempt in flight finish when stopped, without scheduling another', async () => {
    let finish: () => void = () => undefined;
    let finished = false;
    const starts: number[] = [];
    stop = poll(async () => {
      starts.push(Date.now());
      await new Promise<void>((resolve) => {
        finish = resolve;
      });
      finished = true;
    });
    stop();
    finish();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(finished).toBe(true);
    expect(starts).toEqual([0]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
