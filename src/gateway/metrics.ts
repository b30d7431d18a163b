import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DropReason, Observer } from '../core/observer.js';
import type { InFlightStats, TokenStore } from '../core/store.js';
import type { TokenRecord } from '../core/token.js';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface MetricSpec {
  name: string;
  help: string;
  labelNames?: readonly string[];
}

/** The counters, each written once: what it counts and by which label. */
const COUNTERS = {
  minted: { name: 'tollgate_tokens_minted_total', help: 'Tokens minted or issued' },
  consumed: {
    name: 'tollgate_tokens_consumed_total',
    help: 'Tokens consumed by a handler commit (state changes applied)',
    labelNames: ['endpoint'],
  },
  duplicates: {
    name: 'tollgate_duplicates_dropped_total',
    help: 'Signals dropped because their token was unknown, consumed, revoked or expired',
    labelNames: ['reason'],
  },
  mismatches: {
    name: 'tollgate_fingerprint_mismatches_total',
    help: 'Signals refused because the payload does not match the token fingerprint',
  },
  rejected: {
    name: 'tollgate_signals_rejected_total',
    help: 'Signals refused before any state change, by reason',
    labelNames: ['reason'],
  },
  deadLettered: {
    name: 'tollgate_dead_lettered_total',
    help: 'Signals dead-lettered, by reason',
    labelNames: ['reason'],
  },
  commitRetries: {
    name: 'tollgate_commit_retries_total',
    help: 'Commit retries, by reason (version-conflict, transient)',
    labelNames: ['reason'],
  },
  redispatches: { name: 'tollgate_relay_redispatches_total', help: 'Signals re-dispatched by the relay' },
  dispatched: {
    name: 'tollgate_signals_dispatched_total',
    help: 'Signals handed to the broker or peer, by path (hop, relay, edge)',
    labelNames: ['via'],
  },
  dispatchFailures: {
    name: 'tollgate_dispatch_failures_total',
    help: 'Dispatch attempts that failed (the token stays pending for the relay)',
  },
} as const satisfies Record<string, MetricSpec>;

/**
 * The running totals `/v1/overview` shows, each the sum over its labels of one counter above: the overview and
 * `/metrics` read the same counters, so they cannot disagree.
 */
const TOTALS = {
  minted: 'minted',
  consumed: 'consumed',
  duplicates: 'duplicates',
  deadLettered: 'deadLettered',
  redispatched: 'redispatches',
  dispatchFailures: 'dispatchFailures',
} as const satisfies Record<string, keyof typeof COUNTERS>;

export type Totals = Record<keyof typeof TOTALS, number>;

/** The latency histograms, by endpoint. */
const HISTOGRAMS = {
  commit: {
    name: 'tollgate_commit_duration_seconds',
    help: 'Duplicate check, handler and commit of one signal, by endpoint',
    labelNames: ['endpoint'],
  },
  hop: {
    name: 'tollgate_hop_duration_seconds',
    help: 'Whole hop as a transport sees it (receive to ack/response, or ingress to broker confirm)',
    labelNames: ['endpoint'],
  },
} as const satisfies Record<string, MetricSpec>;

/** The gauges, read from the store at scrape time. */
const GAUGES = {
  inFlight: {
    name: 'tollgate_tokens_in_flight',
    help: 'Tokens minted and not yet consumed or ended (issued, pending, dispatched)',
  },
  oldestAge: {
    name: 'tollgate_oldest_in_flight_age_seconds',
    help: 'Age of the oldest in-flight token (0 when none)',
  },
} as const satisfies Record<string, MetricSpec>;

/** Every metric name the gateway exports, counters, histograms and gauges alike (docs/operations.md lists them). */
export const METRIC_NAMES: readonly string[] = [
  ...Object.values(COUNTERS).map((spec) => spec.name),
  ...Object.values(HISTOGRAMS).map((spec) => spec.name),
  ...Object.values(GAUGES).map((spec) => spec.name),
];

function build<K extends string, M>(
  specs: Record<K, MetricSpec>,
  make: (spec: MetricSpec) => M,
): Record<K, M> {
  const built = {} as Record<K, M>;
  for (const key of Object.keys(specs) as K[]) built[key] = make(specs[key]);
  return built;
}

/**
 * Tollgate's Prometheus metrics, fed as a core Observer: pass it to processors, dispatchers, relays and
 * transports and every hop in the process is counted. In-flight figures are read from the store at scrape time.
 */
export class MetricsObserver implements Observer {
  /** When the counters started from zero (ms since the epoch). */
  readonly since: number;
  private readonly count: Record<keyof typeof COUNTERS, Counter<string>>;
  private readonly time: Record<keyof typeof HISTOGRAMS, Histogram<string>>;

  constructor(registry: Registry, store: TokenStore, clock: () => number = Date.now) {
    this.since = clock();
    const registers = [registry];
    this.count = build(
      COUNTERS,
      (spec) => new Counter({ ...spec, labelNames: spec.labelNames ?? [], registers }),
    );
    this.time = build(
      HISTOGRAMS,
      (spec) =>
        new Histogram({ ...spec, labelNames: spec.labelNames ?? [], buckets: LATENCY_BUCKETS, registers }),
    );
    registerInFlightGauges(registers, store, clock);
  }

  /** The counters behind the overview's totals, as `/metrics` would show them now (summed over labels). */
  async totals(): Promise<Totals> {
    const keys = Object.keys(TOTALS) as Array<keyof Totals>;
    const sums = await Promise.all(
      keys.map(async (key) => {
        const { values } = await this.count[TOTALS[key]].get();
        return values.reduce((sum, sample) => sum + sample.value, 0);
      }),
    );
    return Object.fromEntries(keys.map((key, i) => [key, sums[i]])) as Totals;
  }

  minted(tokens: readonly TokenRecord[]): void {
    this.count.minted.inc(tokens.length);
  }

  processed(endpoint: string, _token: TokenRecord, durationMs: number): void {
    this.count.consumed.inc({ endpoint });
    this.time.commit.observe({ endpoint }, durationMs / 1000);
  }

  dropped(_endpoint: string, _tokenId: string, reason: DropReason): void {
    this.count.duplicates.inc({ reason });
  }

  rejected(_endpoint: string, _tokenId: string | undefined, reason: string): void {
    if (reason === 'fingerprint-mismatch') this.count.mismatches.inc();
    this.count.rejected.inc({ reason });
  }

  commitRetried(_endpoint: string, reason: 'version-conflict' | 'transient'): void {
    this.count.commitRetries.inc({ reason });
  }

  dispatched(_token: TokenRecord, via: 'hop' | 'relay' | 'edge'): void {
    this.count.dispatched.inc({ via });
    if (via === 'relay') this.count.redispatches.inc();
  }

  dispatchFailed(): void {
    this.count.dispatchFailures.inc();
  }

  deadLettered(_endpoint: string, _tokenId: string | undefined, reason: string): void {
    this.count.deadLettered.inc({ reason });
  }

  hopCompleted(endpoint: string, durationMs: number): void {
    this.time.hop.observe({ endpoint }, durationMs / 1000);
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
    ...GAUGES.inFlight,
    registers,
    async collect() {
      const current = await stats();
      if (current) inFlight.set(current.count);
    },
  });
  const oldestAge: Gauge = new Gauge({
    ...GAUGES.oldestAge,
    registers,
    async collect() {
      const current = await stats();
      if (!current) return;
      const oldest = current.oldestMintedAt;
      oldestAge.set(oldest === undefined ? 0 : Math.max(0, (clock() - oldest) / 1000));
    },
  });
}
