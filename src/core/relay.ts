import { randomInt } from 'node:crypto';
import type { Dispatcher, DispatchReport } from './dispatcher.js';
import { isPermanentDispatchFailure } from './errors.js';
import { type Logger, silentLogger } from './observer.js';
import type { TokenStore } from './store.js';
import type { TokenRecord } from './token.js';

/** Tombstones deleted per purge call of the housekeeping. */
const PURGE_BATCH = 1_000;

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
  /**
   * How often to look for scheduled tokens that came due, between the passes (jittered like them). Default
   * 250 ms: a signal is sent at most about this long after its due time, plus the send. 0: only in the passes.
   */
  dueIntervalMs?: number;
  /** Only tokens for this medium (a process without an HTTP client leaves HTTP tokens to others). */
  medium?: 'amqp' | 'http';
  /** Tombstone purge and issued-token expiry run every this many passes (0 = never). Default 30. */
  housekeepingEvery?: number;
  logger?: Logger;
  clock?: () => number;
}

export interface RelayPass {
  /** Scheduled tokens that came due and were claimed to be sent now (their sends count in dispatched/failed). */
  due: number;
  /** Pending tokens claimed for a re-send. */
  claimed: number;
  dispatched: number;
  failed: number;
  /** Of the failed, those the receiver refused for good: revoked, so no relay sends them again. */
  givenUp: number;
  expired: number;
  purged: number;
}

/** What an operator's redispatch of one token came to. */
export type RedispatchOutcome =
  /** Sent and marked `dispatched`. */
  | 'dispatched'
  /** Not sent: it stays `pending` under its lease, and a pass sends it again once the lease runs out. */
  | 'failed'
  /** Refused for good by its receiver: revoked, as a pass would. */
  | 'given-up'
  /** Not pending any more, or for a medium this relay has no sender for (its lease is released for one that has). */
  | 'not-claimed';

export interface RelayStats extends RelayPass {
  passes: number;
  lastPassAt?: number;
}

/**
 * Sends scheduled tokens once they are due (claimDue moves each to `pending` for exactly one relay, earliest due
 * first), and re-dispatches tokens left pending (their process crashed after commit, or the broker/peer refused
 * them; a due token whose relay died after its claim is among them once its lease runs out).
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
  private dueTimer: NodeJS.Timeout | undefined;
  private firing: Promise<Sends> | undefined;
  /** Redispatches in progress, which stop() waits for as it waits for a pass. */
  private readonly redispatching = new Set<Promise<RedispatchOutcome>>();
  private stopped = true;
  /** Set by stop(): a due run in progress ends after its current batch. */
  private halting = false;
  readonly stats: RelayStats = {
    passes: 0,
    due: 0,
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
      dueIntervalMs: 250,
      housekeepingEvery: 30,
      logger: silentLogger,
      clock: Date.now,
      ...options,
    };
  }

  /** How long a token stays pending before this relay sends it again. */
  get delayMs(): number {
    return this.options.delayMs;
  }

  /**
   * One pass: send the scheduled tokens that came due, then re-send the pending tokens left behind, then (every
   * `housekeepingEvery` passes) expire and purge. Also callable directly (tests).
   */
  async runOnce(): Promise<RelayPass> {
    if (this.running) return this.running;
    this.running = this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * Sends one pending token now, whatever its age (an operator's "redispatch"), as a pass would: leases it (so a
   * pass that starts meanwhile leaves it alone), sends it with this relay's dispatcher, marks it `dispatched`, and
   * gives it up if its receiver refuses it for good. The lease is taken even from a relay that holds it (see
   * TokenStore.claimToken).
   */
  async redispatch(id: string): Promise<RedispatchOutcome> {
    const sending = this.sendNow(id).finally(() => {
      this.redispatching.delete(sending);
    });
    this.redispatching.add(sending);
    return sending;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.halting = false;
    this.schedule();
    this.scheduleDue();
  }

  /** Stops scheduling and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.halting = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.dueTimer) clearTimeout(this.dueTimer);
    this.timer = undefined;
    this.dueTimer = undefined;
    await this.running?.catch(() => undefined);
    await this.firing?.catch(() => undefined);
    await Promise.allSettled(this.redispatching);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = repeatAfter(this.options.intervalMs, () =>
      this.runOnce()
        .catch((error) => this.options.logger.warn({ err: error }, 'relay pass failed'))
        .finally(() => this.schedule()),
    );
  }

  /**
   * Purges every tombstone past its retention, PURGE_BATCH at a time, until a batch comes back short. One purge
   * call per housekeeping pass (every 30 passes of 2 s by default) at the store's own limit (10 000 on SQLite)
   * capped the purge at some 170 tombstones a second: a store taking more hops than that grew without bound
   * whatever its retention (soak/memory.ts showed it). Yields to the event loop between batches, so hops keep
   * running while a backlog is purged (a batch of 1 000 holds SQLite's thread for a few milliseconds).
   */
  private async purge(now: number): Promise<number> {
    let purged = 0;
    for (;;) {
      const batch = await this.options.store.purge(now, PURGE_BATCH);
      purged += batch;
      if (batch < PURGE_BATCH || this.halting) return purged;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private scheduleDue(): void {
    if (this.stopped || this.options.dueIntervalMs <= 0) return;
    this.dueTimer = repeatAfter(this.options.dueIntervalMs, () =>
      this.fireDue()
        .catch((error) => this.options.logger.warn({ err: error }, 'relay could not send due tokens'))
        .finally(() => this.scheduleDue()),
    );
  }

  private async pass(): Promise<RelayPass> {
    const { store, delayMs, leaseMs, batchSize, medium, clock, housekeepingEvery } = this.options;
    const fired = await this.fireDue();
    const now = clock();
    const claimed = await store.claimPending({
      mintedBefore: now - delayMs,
      now,
      leaseMs,
      limit: batchSize,
      ...(medium ? { medium } : {}),
    });
    const resent = await this.send(claimed, now);
    const pass: RelayPass = {
      due: fired.tokens,
      claimed: claimed.length,
      dispatched: fired.dispatched + resent.dispatched,
      failed: fired.failed + resent.failed,
      givenUp: fired.givenUp + resent.givenUp,
      expired: 0,
      purged: 0,
    };
    this.stats.passes += 1;
    if (housekeepingEvery > 0 && (this.stats.passes - 1) % housekeepingEvery === 0) {
      pass.expired = await store.expireIssued(now);
      pass.purged = await this.purge(now);
    }
    this.stats.claimed += pass.claimed;
    this.stats.expired += pass.expired;
    this.stats.purged += pass.purged;
    this.stats.lastPassAt = now;
    if (pass.claimed > 0) this.options.logger.info({ ...pass }, 'relay re-dispatched pending tokens');
    return pass;
  }

  private async sendNow(id: string): Promise<RedispatchOutcome> {
    const { store, leaseMs, medium, clock } = this.options;
    const now = clock();
    const token = await store.claimToken(id, { now, leaseMs, ...(medium ? { medium } : {}) });
    if (!token) {
      // For another medium, it is left to a relay that can send it, at its next pass. Released from a token that
      // is not pending, the lease meant nothing anyway.
      if (medium) await store.releaseLease(id);
      return 'not-claimed';
    }
    this.stats.claimed += 1;
    const sent = await this.send([token], now);
    if (sent.dispatched > 0) return 'dispatched';
    return sent.givenUp > 0 ? 'given-up' : 'failed';
  }

  /**
   * Sends the scheduled tokens that came due, earliest first, a batch at a time until none is left. One run at a
   * time per relay (a pass and the due timer share it); across processes, claimDue gives each token to one.
   * A token whose send fails stays pending under its lease: the pending pass sends it again after the lease.
   */
  private fireDue(): Promise<Sends> {
    if (this.firing) return this.firing.then(() => NO_SENDS);
    this.firing = this.drainDue().finally(() => {
      this.firing = undefined;
    });
    return this.firing;
  }

  private async drainDue(): Promise<Sends> {
    const { store, leaseMs, batchSize, medium, clock } = this.options;
    const claim = async () => {
      const now = clock();
      const claimed = await store.claimDue({ now, leaseMs, limit: batchSize, ...(medium ? { medium } : {}) });
      return { claimed, now };
    };
    const total: Sends = { ...NO_SENDS };
    let claiming = claim();
    for (let round = 0; round < MAX_DUE_ROUNDS; round++) {
      const { claimed, now } = await claiming;
      this.stats.due += claimed.length;
      const more = claimed.length === batchSize && !this.halting && round + 1 < MAX_DUE_ROUNDS;
      if (more) {
        // Behind a backlog, the next batch is claimed while this one is sent, so that the store's work on the two
        // (a claim, the dispatched marks: a commit each) overlaps. Batches are still sent in due order. Should the
        // send throw, the next claim's tokens stay pending under their lease, for the pending pass.
        claiming = claim();
        claiming.catch(() => undefined);
      }
      const sent = await this.send(claimed, now);
      total.tokens += claimed.length;
      total.dispatched += sent.dispatched;
      total.failed += sent.failed;
      total.givenUp += sent.givenUp;
      if (!more) break;
    }
    if (total.tokens > 0) this.options.logger.debug({ ...total }, 'relay sent due scheduled tokens');
    return total;
  }

  /** Dispatches claimed tokens and gives up those refused for good; counts into the stats. */
  private async send(tokens: TokenRecord[], now: number): Promise<Sends> {
    const report = await this.options.dispatcher.dispatch(tokens, 'relay');
    const sent: Sends = {
      tokens: tokens.length,
      dispatched: report.dispatched.length,
      failed: report.failed.length,
      givenUp: await this.giveUpRefused(report, now),
    };
    this.stats.dispatched += sent.dispatched;
    this.stats.failed += sent.failed;
    this.stats.givenUp += sent.givenUp;
    return sent;
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

/** What one batch of sends came to. */
interface Sends {
  tokens: number;
  dispatched: number;
  failed: number;
  givenUp: number;
}

const NO_SENDS: Readonly<Sends> = { tokens: 0, dispatched: 0, failed: 0, givenUp: 0 };

/** Batches one due run claims at most before it yields to the next timer (a backlog of 100 batches). */
const MAX_DUE_ROUNDS = 100;

/** A timer after `base` ms jittered ±20% (so relays in several processes drift apart), not holding the process. */
function repeatAfter(base: number, run: () => void): NodeJS.Timeout {
  const jitter = Math.floor(base * 0.2);
  const timer = setTimeout(run, base + (jitter > 0 ? randomInt(-jitter, jitter + 1) : 0));
  timer.unref();
  return timer;
}
