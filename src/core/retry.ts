/**
 * How a pause is spread below its exponential cap:
 * - `full`: anywhere from 0 to the cap, so competing retriers spread out the most;
 * - `equal`: from half the cap to the cap, never zero, so a peer that is down is not hammered;
 * - `none`: the cap itself, for a single retrier with nobody to collide with.
 */
export type Jitter = 'full' | 'equal' | 'none';

/** The pauses between attempts: `baseDelayMs`, doubling per attempt up to `maxDelayMs`, spread by `jitter`. */
export interface DelayPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
  /** Default 'full'. */
  jitter?: Jitter;
}

export interface BackoffPolicy extends DelayPolicy {
  /** Total attempts, including the first. */
  attempts: number;
}

/** Doublings past this change nothing (2^30 times any base exceeds any sane cap) and would overflow to Infinity. */
const MAX_DOUBLINGS = 30;

/**
 * The pause after failed attempt `attempt` (1-based): the one backoff of the code base. Pure but for `random`,
 * which tests inject.
 */
export function backoffDelay(
  policy: DelayPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const doublings = Math.min(Math.max(0, attempt - 1), MAX_DOUBLINGS);
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** doublings);
  switch (policy.jitter ?? 'full') {
    case 'full':
      return Math.floor(random() * cap);
    case 'equal':
      return Math.floor(cap / 2 + random() * (cap / 2));
    case 'none':
      return cap;
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
