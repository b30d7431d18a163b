import { sleep } from '../../core/retry.js';

/** Waits for every promise to settle, but no longer than `timeoutMs`; leaves no timer behind either way. */
export async function settleWithin(promises: Iterable<Promise<unknown>>, timeoutMs: number): Promise<void> {
  const done = new AbortController();
  await Promise.race([Promise.allSettled(promises), sleep(timeoutMs, done.signal)]);
  done.abort();
}
