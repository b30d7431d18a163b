import type { Processed } from '../../core/processor.js';

/** How many tokens' unanswered commits are remembered; the oldest is forgotten first. */
const DEFAULT_CAPACITY = 10_000;

/**
 * Commits this process sent whose answer from the store was lost (the request then got 503), by token. When the
 * client retries the same token here, the core recognises the commit that did land as this request's own: the
 * retry answers `processed` and dispatches the emitted signals at once, instead of replaying as a duplicate and
 * leaving the signals to the relay. A retry that reaches another process still gets the stored answer.
 */
export class LostAnswers {
  private readonly byToken = new Map<string, Map<string, Processed<unknown>>>();

  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  /** The commits to recognise for this token; pass the map to `processSignal` as `maybeCommitted`. */
  take(tokenId: string): Map<string, Processed<unknown>> {
    const kept = this.byToken.get(tokenId);
    this.byToken.delete(tokenId);
    return kept ?? new Map();
  }

  /** Keeps what a failed request left in the map, if anything, for the next copy of the token. */
  keep(tokenId: string, commits: Map<string, Processed<unknown>>): void {
    if (commits.size === 0) return;
    this.byToken.set(tokenId, commits);
    if (this.byToken.size > this.capacity) {
      const oldest = this.byToken.keys().next().value as string;
      this.byToken.delete(oldest);
    }
  }
}
