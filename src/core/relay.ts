import { randomInt } from 'node:crypto';
import type { Dispatcher, DispatchReport } from './dispatcher.js';
import { isPermanentDispatchFailure } from './errors.js';
import { type Logger, silentLogger } from './observer.js';
import type { TokenStore } from './store.js';

export interface RelayOptions {
  store: TokenStore;
  dispatcher: Dispatcher;
  /** A token still pending this long after minting is re-dispatched. Default 10 s. */
  delayMs?: number;
  /** How long a claimed token is left to this relay before another may take it. Default 30 s. */
  leaseMs?: number;
  /** Tokens per pass. Default 100. */
  batchSize?: number;
  /** Pause between passes (jittered ±20% so relays in several processes drift apart). Default 2 s. */
  intervalMs?: number;
  /** Only tokens for this medium (a process without an HTTP client leaves HTTP tokens to others). */
  medium?: 'amqp' | 'http';
  /** Tombstone purge and issued-token expiry run every this many passes (0 = never). Default 30. */
  housekeepingEvery?: number;
  logger?: Logger;
  clock?: () => number;
}

export interface RelayPass {
  claimed: number;
  dispatched: number;
  failed: number;
  /** Of the failed, those the receiver refused for good: revoked, so no relay sends them again. */
  givenUp: number;
  expired: number;
  purged: number;
}

export interface RelayStats extends RelayPass {
  passes: number;
  lastPassAt?: number;
}

/**
 * Re-dispatches tokens left pending (their process crashed after commit, or the broker/peer refused them).
 * Safe to run in every process: the store's lease makes two relays rarely send the same token at once,
 * and if they do the receiver drops the copy.
 *
 * A token whose re-dispatch fails permanently (isPermanentDispatchFailure: a 4xx refusal, a receiver that will
 * not issue it, a credential the sender does not know) is given up: revoked, logged as an error and counted in
 * `givenUp`, so it is not re-sent every lease for ever. It has then been refused twice, by the hop and by the
 * relay at least `delayMs` later. The revoked record keeps its payload and destination until its retention ends.
 */
export class Relay {
  private readonly options: Required<Omit<RelayOptions, 'medium'>> & { medium?: 'amqp' | 'http' };
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RelayPass> | undefined;
  private stopped = true;
  readonly stats: RelayStats = {
    passes: 0,
    claimed: 0,
    dispatched: 0,
    failed: 0,
    givenUp: 0,
    expired: 0,
    purged: 0,
  };

  constructor(options: RelayOptions) {
    this.options = {
      delayMs: 10_000,
      leaseMs: 30_000,
      batchSize: 100,
      intervalMs: 2_000,
      housekeepingEvery: 30,
      logger: silentLogger,
      clock: Date.now,
      ...options,
    };
  }

  /** One pass: claim due tokens and dispatch them. Also callable directly (tests, operator "redispatch"). */
  async runOnce(): Promise<RelayPass> {
    if (this.running) return this.running;
    this.running = this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  /** Stops scheduling and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private schedule(): void {
    if (this.stopped) return;
    const base = this.options.intervalMs;
    const jitter = Math.floor(base * 0.2);
    this.timer = setTimeout(
      () => {
        this.runOnce()
          .catch((error) => this.options.logger.warn({ err: error }, 'relay pass failed'))
          .finally(() => this.schedule());
      },
      base + (jitter > 0 ? randomInt(-jitter, jitter + 1) : 0),
    );
    this.timer.unref();
  }

  private async pass(): Promise<RelayPass> {
    const { store, dispatcher, delayMs, leaseMs, batchSize, medium, clock, housekeepingEvery } = this.options;
    const now = clock();
    const claimed = await store.claimPending({
      mintedBefore: now - delayMs,
      now,
      leaseMs,
      limit: batchSize,
      ...(medium ? { medium } : {}),
    });
    const report = await dispatcher.dispatch(claimed, 'relay');
    const pass: RelayPass = {
      claimed: claimed.length,
      dispatched: report.dispatched.length,
      failed: report.failed.length,
      givenUp: await this.giveUpRefused(report, now),
      expired: 0,
      purged: 0,
    };
    this.stats.passes += 1;
    if (housekeepingEvery > 0 && (this.stats.passes - 1) % housekeepingEvery === 0) {
      pass.expired = await store.expireIssued(now);
      pass.purged = await store.purge(now);
    }
    this.stats.claimed += pass.claimed;
    this.stats.dispatched += pass.dispatched;
    this.stats.failed += pass.failed;
    this.stats.givenUp += pass.givenUp;
    this.stats.expired += pass.expired;
    this.stats.purged += pass.purged;
    this.stats.lastPassAt = now;
    if (pass.claimed > 0) this.options.logger.info({ ...pass }, 'relay re-dispatched pending tokens');
    return pass;
  }

  /** Revokes the tokens the receiver refused for good; a token that moved on meanwhile is left as it is. */
  private async giveUpRefused(report: DispatchReport, now: number): Promise<number> {
    let givenUp = 0;
    for (const { tokenId, error } of report.failed) {
      if (!isPermanentDispatchFailure(error)) continue;
      try {
        await this.options.store.revoke(tokenId, now);
        givenUp += 1;
        this.options.logger.error(
          { token: tokenId, code: error.code, details: error.details },
          'relay gave up a signal its receiver refused for good; the token is revoked',
        );
      } catch (revokeError) {
        this.options.logger.warn(
          { token: tokenId, err: revokeError },
          'could not revoke a refused token (if it is still pending, the relay tries it again)',
        );
      }
    }
    return givenUp;
  }
}
