import { Unreachable } from './api.js';

export interface PollTiming {
  /** Between answers. */
  intervalMs: number;
  /** The first wait after an unreachable attempt; it doubles on each further one. */
  firstBackoffMs: number;
  maxBackoffMs: number;
}

export const POLL_TIMING: PollTiming = { intervalMs: 2_000, firstBackoffMs: 1_000, maxBackoffMs: 10_000 };

/**
 * The wait before the next attempt after `failures` unreachable attempts in a row: the interval while the gateway
 * answers (even with an error: it is there), then 1 s, 2 s, 4 s, 8 s, and 10 s from then on.
 */
export function nextDelay(failures: number, timing: PollTiming = POLL_TIMING): number {
  if (failures === 0) return timing.intervalMs;
  return Math.min(timing.maxBackoffMs, timing.firstBackoffMs * 2 ** (failures - 1));
}

/**
 * Runs `task` now and again after each attempt settles, never two at once. Returns a function that stops it; an
 * attempt in flight then finishes without another being scheduled.
 */
export function poll(task: () => Promise<void>, timing: PollTiming = POLL_TIMING): () => void {
  let stopped = false;
  let failures = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = async () => {
    try {
      await task();
      failures = 0;
    } catch (error) {
      failures = error instanceof Unreachable ? failures + 1 : 0;
    }
    if (!stopped) timer = setTimeout(attempt, nextDelay(failures, timing));
  };
  void attempt();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
