import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DropReason, Observer } from '../core/observer.js';
import type { InFlightStats, TokenStore } from '../core/store.js';
import type { TokenRecord } from '../core/token.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Tollgate's Prometheus metrics, fed as a core Observer: pass it to processors, dispatchers, relays and
 * transports and every hop in the process is counted. In-flight figures are read from the store at scrape time.
 */
export class MetricsObserver implements Observer {
  private readonly mintedTotal: Counter;
  private readonly consumedTotal: Counter<'endpoint'>;
  private readonly duplicatesTotal: Counter<'reason'>;
  private readonly mismatchesTotal: Counter;
  private readonly rejectedTotal: Counter<'reason'>;
  private readonly deadLetteredTotal: Counter<'reason'>;
  private readonly commitRetriesTotal: Counter<'reason'>;
  private readonly redispatchesTotal: Counter;
  private readonly dispatchedTotal: Counter<'via'>;
  private readonly dispatchFailuresTotal: Counter;
  private readonly commitDuration: Histogram<'endpoint'>;
  private readonly hopDuration: Histogram<'endpoint'>;

  constructor(registry: Registry, store: TokenStore, clock: () => number = Date.now) {
    const registers = [registry];
    this.mintedTotal = new Counter({
      name: 'tollgate_tokens_minted_total',
      help: 'Tokens minted or issued',
      registers,
    });
    this.consumedTotal = new Counter({
      name: 'tollgate_tokens_consumed_total',
      help: 'Tokens consumed by a handler commit (state changes applied)',
      labelNames: ['endpoint'],
      registers,
    });
    this.duplicatesTotal = new Counter({
      name: 'tollgate_duplicates_dropped_total',
      help: 'Signals dropped because their token was unknown, consumed, revoked or expired',
      labelNames: ['reason'],
      registers,
    });
    this.mismatchesTotal = new Counter({
      name: 'tollgate_fingerprint_mismatches_total',
      help: 'Signals refused because the payload does not match the token fingerprint',
      registers,
    });
    this.rejectedTotal = new Counter({
      name: 'tollgate_signals_rejected_total',
      help: 'Signals refused before any state change, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.deadLetteredTotal = new Counter({
      name: 'tollgate_dead_lettered_total',
      help: 'Signals dead-lettered, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.commitRetriesTotal = new Counter({
      name: 'tollgate_commit_retries_total',
      help: 'Commit retries, by reason (version-conflict, transient)',
      labelNames: ['reason'],
      registers,
    });
    this.redispatchesTotal = new Counter({
      name: 'tollgate_relay_redispatches_total',
      help: 'Signals re-dispatched by the relay',
      registers,
    });
    this.dispatchedTotal = new Counter({
      name: 'tollgate_signals_dispatched_total',
      help: 'Signals handed to the broker or peer, by path (hop, relay, edge)',
      labelNames: ['via'],
      registers,
    });
    this.dispatchFailuresTotal = new Counter({
      name: 'tollgate_dispatch_failures_total',
      help: 'Dispatch attempts that failed (the token stays pending for the relay)',
      registers,
    });
    this.commitDuration = new Histogram({
      name: 'tollgate_commit_duration_seconds',
      help: 'Duplicate check, handler and commit of one signal, by endpoint',
      labelNames: ['endpoint'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.hopDuration = new Histogram({
      name: 'tollgate_hop_duration_seconds',
      help: 'Whole hop as a transport sees it (receive to ack/response, or ingress to broker confirm)',
      labelNames: ['endpoint'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    registerInFlightGauges(registers, store, clock);
  }

  minted(tokens: readonly TokenRecord[]): void {
    this.mintedTotal.inc(tokens.length);
  }

  processed(endpoint: string, _token: TokenRecord, durationMs: number): void {
    this.consumedTotal.inc({ endpoint });
    this.commitDuration.observe({ endpoint }, durationMs / 1000);
  }

  dropped(_endpoint: string, _tokenId: string, reason: DropReason): void {
    this.duplicatesTotal.inc({ reason });
  }

  rejected(_endpoint: string, _tokenId: string | undefined, reason: string): void {
    if (reason === 'fingerprint-mismatch') this.mismatchesTotal.inc();
    this.rejectedTotal.inc({ reason });
  }

  commitRetried(_endpoint: string, reason: 'version-conflict' | 'transient'): void {
    this.commitRetriesTotal.inc({ reason });
  }

  dispatched(_token: TokenRecord, via: 'hop' | 'relay' | 'edge'): void {
    this.dispatchedTotal.inc({ via });
    if (via === 'relay') this.redispatchesTotal.inc();
  }

  dispatchFailed(): void {
    this.dispatchFailuresTotal.inc();
  }

  deadLettered(_endpoint: string, _tokenId: string | undefined, reason: string): void {
    this.deadLetteredTotal.inc({ reason });
  }

  hopCompleted(endpoint: string, durationMs: number): void {
    this.hopDuration.observe({ endpoint }, durationMs / 1000);
  }
}

/** In-flight count and oldest age, read from the store at scrape time (one query serves both gauges). */
function registerInFlightGauges(registers: Registry[], store: TokenStore, clock: () => number): void {
  let pending: Promise<InFlightStats | undefined> | undefined;
  // A failed read keeps the gauges' last values: a scrape must not fail because the store blinked.
  // Concurrent collects (one scrape) share the query; the next scrape reads afresh.
  const stats = (): Promise<InFlightStats | undefined> => {
    pending ??= store
      .inFlightStats()
      .catch(() => undefined)
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
  const inFlight: Gauge = new Gauge({
    name: 'tollgate_tokens_in_flight',
    help: 'Tokens minted and not yet consumed or ended (issued, pending, dispatched)',
    registers,
    async collect() {
      const current = await stats();
      if (current) inFlight.set(current.count);
    },
  });
  const oldestAge: Gauge = new Gauge({
    name: 'tollgate_oldest_in_flight_age_seconds',
    help: 'Age of the oldest in-flight token (0 when none)',
    registers,
    async collect() {
      const current = await stats();
      if (!current) return;
      const oldest = current.oldestMintedAt;
      oldestAge.set(oldest === undefined ? 0 : Math.max(0, (clock() - oldest) / 1000));
    },
  });
}
