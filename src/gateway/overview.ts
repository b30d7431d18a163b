import type { InFlightStats, TokenStore } from '../core/store.js';
import { IN_FLIGHT_STATUSES, type TokenStatus } from '../core/token.js';
import type { RelayTrigger } from './context.js';
import type { Totals } from './metrics.js';
import type { RateSampler } from './rates.js';
import { type Overview, RATED } from './schemas.js';

/** The figures the overview rates per second. */
export type RatedTotals = Pick<Totals, (typeof RATED)[number]>;

/** The rated figures out of the totals: what the sampler reads. */
export async function ratedTotals(source: TotalsSource): Promise<RatedTotals> {
  const totals = await source.totals();
  return Object.fromEntries(RATED.map((key) => [key, totals[key]])) as RatedTotals;
}

/** Where the totals come from: the Prometheus counters (MetricsObserver). */
export interface TotalsSource {
  readonly since: number;
  totals(): Promise<Totals>;
}

export interface OverviewSources {
  store: TokenStore;
  relay: RelayTrigger | null;
  totals: TotalsSource;
  rates: RateSampler<keyof RatedTotals>;
  clock: () => number;
}

interface StoreFigures {
  statuses: Record<TokenStatus, number>;
  inFlight: InFlightStats;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Composes `GET /v1/overview`: the store's counts, the relay's figures, the counters' totals and the sampler's
 * rates. Requests that arrive while the store is being read share that read (several consoles polling cost one).
 */
export class OverviewReader {
  private reading: Promise<StoreFigures> | undefined;

  constructor(private readonly sources: OverviewSources) {}

  async read(): Promise<Overview> {
    const { relay, totals, rates, clock } = this.sources;
    const [figures, counted] = await Promise.all([this.storeFigures(), totals.totals()]);
    const now = clock();
    const oldest = figures.inFlight.oldestMintedAt;
    const lastPassAt = relay?.stats?.lastPassAt;
    return {
      at: iso(now),
      statuses: figures.statuses,
      inFlight: IN_FLIGHT_STATUSES.reduce((sum, status) => sum + figures.statuses[status], 0),
      oldestInFlightAgeMs: oldest === undefined ? null : Math.max(0, now - oldest),
      relay: {
        enabled: relay !== null,
        delayMs: relay?.delayMs ?? 0,
        redispatched: counted.redispatched,
        givenUp: relay?.stats?.givenUp ?? 0,
        ...(lastPassAt === undefined ? {} : { lastPassAt: iso(lastPassAt) }),
      },
      totals: counted,
      since: iso(totals.since),
      rates: {
        intervalSeconds: rates.intervalMs / 1000,
        points: rates.points().map((point) => ({ ...point, at: iso(point.at) })),
      },
    };
  }

  private storeFigures(): Promise<StoreFigures> {
    const { store } = this.sources;
    this.reading ??= Promise.all([store.statusCounts(), store.inFlightStats()])
      .then(([statuses, inFlight]) => ({ statuses, inFlight }))
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }
}
