import { sleep } from '../../core/retry.js';

/**
 * Tokens whose request is being processed in this process. A second copy arriving meanwhile waits briefly for
 * the first to finish (it then gets the replay) instead of running the handler twice just to lose the commit.
 * Copies in other processes are not seen here: the store decides between them (one commit wins, the other
 * replays).
 */
export class InProgressTokens {
  private readonly running = new Map<string, Promise<void>>();

  /**
   * Marks the token as in progress, first waiting up to `waitMs` for a run of it already in progress here.
   * Returns undefined if it is still in progress after that; otherwise call `release` when done.
   */
  async acquire(tokenId: string, waitMs: number): Promise<{ release: () => void } | undefined> {
    const deadline = performance.now() + waitMs;
    for (;;) {
      const running = this.running.get(tokenId);
      if (!running) return { release: this.enter(tokenId) };
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      // Several copies may wake together: the loop lets only one of them enter, the others wait on it.
      const abort = new AbortController();
      await Promise.race([running, sleep(left, abort.signal)]);
      abort.abort();
    }
  }

  private enter(tokenId: string): () => void {
    let release!: () => void;
    const done = new Promise<void>((resolve) => {
      release = () => {
        this.running.delete(tokenId);
        resolve();
      };
    });
    this.running.set(tokenId, done);
    return release;
  }

  get size(): number {
    return this.running.size;
  }

  /** Resolves once nothing is in progress (used on close to let running requests finish). */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running.values()]);
  }
}
