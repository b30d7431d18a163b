import { sleep } from '../../core/retry.js';

/** A run in progress; the promise that others wait on is made only when someone waits. */
interface Run {
  finished?: Promise<void>;
  finish?: () => void;
}

/**
 * Tokens whose request is being processed in this process. A second copy arriving meanwhile waits briefly for
 * the first to finish (it then gets the replay) instead of running the handler twice just to lose the commit.
 * Copies in other processes are not seen here: the store decides between them (one commit wins, the other
 * replays).
 */
export class InProgressTokens {
  private readonly running = new Map<string, Run>();

  /**
   * Marks the token as in progress if no run of it is, and returns the call that ends the mark; undefined if a run
   * is in progress. Synchronous: almost every request finds its token free, and then pays for no promise.
   */
  tryEnter(tokenId: string): (() => void) | undefined {
    if (this.running.has(tokenId)) return undefined;
    const run: Run = {};
    this.running.set(tokenId, run);
    return () => {
      this.running.delete(tokenId);
      run.finish?.();
    };
  }

  /**
   * Marks the token as in progress, first waiting up to `waitMs` for a run of it already in progress here.
   * Returns undefined if it is still in progress after that; otherwise the call that ends the mark.
   */
  async acquire(tokenId: string, waitMs: number): Promise<(() => void) | undefined> {
    const deadline = performance.now() + waitMs;
    for (;;) {
      const release = this.tryEnter(tokenId);
      if (release) return release;
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      // Several copies may wake together: the loop lets only one of them enter, the others wait on it.
      const abort = new AbortController();
      await Promise.race([finished(this.running.get(tokenId) as Run), sleep(left, abort.signal)]);
      abort.abort();
    }
  }

  get size(): number {
    return this.running.size;
  }

  /** Resolves once nothing is in progress (used on close to let running requests finish). */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()].map(finished));
  }
}

function finished(run: Run): Promise<void> {
  run.finished ??= new Promise<void>((resolve) => {
    run.finish = resolve;
  });
  return run.finished;
}
