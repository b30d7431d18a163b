import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/core/dispatcher.js';
import { pendingToken } from '../../src/core/mint.js';
import { Relay } from '../../src/core/relay.js';
import { scheduledToken } from '../../src/core/scheduling.js';
import type { TokenStore } from '../../src/core/store.js';
import { buildGateway } from '../../src/gateway/app.js';
import type { RelayTrigger } from '../../src/gateway/context.js';
import { createLogger } from '../../src/gateway/logging.js';
import { MetricsObserver } from '../../src/gateway/metrics.js';
import { OverviewReader, type RatedTotals, ratedTotals } from '../../src/gateway/overview.js';
import { RateSampler } from '../../src/gateway/rates.js';
import type { GatewayApp } from '../../src/gateway/routing.js';
import {
  ADMIN_KEY,
  bearer,
  KEYS,
  LogCapture,
  MINT_KEY,
  READ_KEY,
  RecordingPublisher,
  sqliteStore,
} from './support.js';

const queue = { medium: 'amqp' as const, exchange: 'orders', routingKey: 'placed' };

/** The counter behind each total, as /metrics names it. */
const TOTAL_METRICS = {
  minted: 'tollgate_tokens_minted_total',
  consumed: 'tollgate_tokens_consumed_total',
  duplicates: 'tollgate_duplicates_dropped_total',
  deadLettered: 'tollgate_dead_lettered_total',
  redispatched: 'tollgate_relay_redispatches_total',
  dispatchFailures: 'tollgate_dispatch_failures_total',
};

interface Harness {
  app: GatewayApp;
  store: TokenStore;
  metrics: MetricsObserver;
  rates: RateSampler<keyof RatedTotals>;
  logs: LogCapture;
  clock: { now: number };
}

const open: Harness[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) {
    await h.app.close();
    await h.store.close();
  }
});

/** A gateway on a real SQLite store whose clock and rate sampler the test drives. */
async function harness(
  relayOf:
    | RelayTrigger
    | null
    | ((store: TokenStore, metrics: MetricsObserver, now: () => number) => RelayTrigger) = null,
): Promise<Harness> {
  const store = sqliteStore();
  const registry = new Registry();
  const clock = { now: Date.parse('2030-01-01T00:00:00Z') };
  const now = () => clock.now;
  const metrics = new MetricsObserver(registry, store, now);
  const relay = typeof relayOf === 'function' ? relayOf(store, metrics, now) : relayOf;
  // An hour between timer samples (ten hours of them kept): the test takes them itself.
  const rates = new RateSampler(() => ratedTotals(metrics), {
    intervalMs: 3_600_000,
    windowMs: 36_000_000,
    clock: now,
  });
  const logs = new LogCapture();
  const app = buildGateway({
    store,
    publisher: null,
    registry,
    logger: createLogger('info', logs),
    relay,
    metrics,
    rates,
    clock: now,
    config: {
      apiKeys: KEYS,
      bridges: { ingress: [], egress: [] },
      bodyLimitBytes: 64 * 1024,
      defaultTokenTtlMs: 60 * 60 * 1000,
    },
  });
  await app.ready();
  const h = { app, store, metrics, rates, logs, clock };
  open.push(h);
  return h;
}

async function overview(h: Harness, key = READ_KEY) {
  return h.app.inject({ url: '/v1/overview', headers: bearer(key) });
}

/** Each metric's samples summed over their labels, read from the /metrics text. */
function scrape(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (match) sums.set(match[1] as string, (sums.get(match[1] as string) ?? 0) + Number(match[2]));
  }
  return sums;
}

describe('GET /v1/overview', () => {
  it('counts every status as the store does, with in-flight figures and the oldest age', async () => {
    const h = await harness();
    const { store } = h;
    const at = h.clock.now;
    const old = pendingToken({ destination: queue, payload: 1 }, { mintedBy: 't', now: at - 90_000 });
    const young = pendingToken({ destination: queue, payload: 2 }, { mintedBy: 't', now: at - 5_000 });
    const gone = pendingToken({ destination: queue, payload: 3 }, { mintedBy: 't', now: at - 999_000 });
    const later = scheduledToken(
      { destination: queue, payload: 4 },
      { mintedBy: 't', now: at - 500_000 },
      at + 1,
    );
    await store.mint([old, young, gone, later]);
    await store.markDispatched([young.id], at);
    await store.revoke(gone.id, at);
    for (let i = 0; i < 3; i++) {
      const issued = await h.app.inject({
        method: 'POST',
        url: '/v1/tokens',
        headers: bearer(MINT_KEY),
        payload: {},
      });
      expect(issued.statusCode).toBe(201);
    }

    const res = await overview(h);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.statuses).toEqual(await store.statusCounts());
    expect(body.statuses).toEqual({
      issued: 3,
      scheduled: 1,
      pending: 1,
      dispatched: 1,
      consumed: 0,
      expired: 0,
      revoked: 1,
    });
    expect(body.inFlight).toBe(6);
    expect(body.inFlight).toBe((await store.inFlightStats()).count);
    // The revoked token is older but ended; the scheduled one is older but waits for its due time.
    expect(body.oldestInFlightAgeMs).toBe(90_000);
    expect(body.at).toBe('2030-01-01T00:00:00.000Z');
    expect(body.since).toBe('2030-01-01T00:00:00.000Z');
  });

  it('answers null for the oldest age when nothing is in flight, and a relay that is off as such', async () => {
    const h = await harness();
    const body = (await overview(h)).json();
    expect(body.oldestInFlightAgeMs).toBeNull();
    expect(body.inFlight).toBe(0);
    expect(body.relay).toEqual({ enabled: false, delayMs: 0, redispatched: 0, givenUp: 0 });
  });

  it('gives totals equal to what /metrics reports, since the gateway started counting', async () => {
    const passAt = Date.parse('2029-12-31T23:59:58Z');
    const relay = { redispatch: async () => ({}), delayMs: 7_000, stats: { givenUp: 2, lastPassAt: passAt } };
    const h = await harness(relay);
    const token = pendingToken({ destination: queue, payload: 1 }, { mintedBy: 't', now: h.clock.now });
    const m = h.metrics;
    m.minted([token, token, token]);
    m.processed('orders', token, 3);
    m.processed('billing', token, 3);
    m.dropped('orders', token.id, 'consumed');
    m.dropped('orders', token.id, 'unknown');
    m.dropped('billing', token.id, 'revoked');
    m.deadLettered('orders', token.id, 'TOLLGATE_ERR_FINGERPRINT_MISMATCH');
    m.dispatched(token, 'relay');
    m.dispatched(token, 'relay');
    m.dispatched(token, 'hop');
    m.dispatchFailed();

    const body = (await overview(h)).json();
    expect(body.totals).toEqual({
      minted: 3,
      consumed: 2,
      duplicates: 3,
      deadLettered: 1,
      redispatched: 2,
      dispatchFailures: 1,
    });
    const scraped = scrape((await h.app.inject({ url: '/metrics' })).body);
    for (const [total, metric] of Object.entries(TOTAL_METRICS)) {
      expect(body.totals[total], total).toBe(scraped.get(metric) ?? 0);
    }
    expect(body.relay).toEqual({
      enabled: true,
      delayMs: 7_000,
      redispatched: 2,
      givenUp: 2,
      lastPassAt: '2029-12-31T23:59:58.000Z',
    });
  });

  it("shows a running relay's own delay, what it re-sent and when it last passed", async () => {
    let relay: Relay | undefined;
    const h = await harness((store, metrics, clock) => {
      const dispatcher = new Dispatcher({
        store,
        senders: [new RecordingPublisher()],
        observers: [metrics],
        clock,
      });
      relay = new Relay({ store, dispatcher, delayMs: 4_321, clock });
      return relay;
    });
    const stuck = pendingToken(
      { destination: queue, payload: 1 },
      { mintedBy: 't', now: h.clock.now - 10_000 },
    );
    await h.store.mint([stuck]);
    await relay?.runOnce();

    const body = (await overview(h)).json();
    expect(body.relay).toEqual({
      enabled: true,
      delayMs: 4_321,
      redispatched: 1,
      givenUp: 0,
      lastPassAt: '2030-01-01T00:00:00.000Z',
    });
    expect(body.totals.redispatched).toBe(1);
    expect(body.statuses.dispatched).toBe(1);
  });

  it('shows per-second rates over each interval, the first one interval after start', async () => {
    const h = await harness();
    const token = pendingToken({ destination: queue, payload: 1 }, { mintedBy: 't', now: h.clock.now });
    // The sampler took its first sample when the app became ready: no interval has ended yet.
    await h.rates.sample();
    let body = (await overview(h)).json();
    expect(body.rates).toEqual({ intervalSeconds: 3600, points: [] });

    h.clock.now += 1;
    h.metrics.minted(Array.from({ length: 10 }, () => token));
    h.metrics.dropped('orders', token.id, 'consumed');
    h.clock.now += 4_999;
    await h.rates.sample();
    h.metrics.minted([token, token]);
    h.clock.now += 2_000;
    await h.rates.sample();

    body = (await overview(h)).json();
    expect(body.rates.points).toEqual([
      {
        at: '2030-01-01T00:00:05.000Z',
        minted: 2,
        consumed: 0,
        duplicates: 0.2,
        deadLettered: 0,
        redispatched: 0,
      },
      {
        at: '2030-01-01T00:00:07.000Z',
        minted: 1,
        consumed: 0,
        duplicates: 0,
        deadLettered: 0,
        redispatched: 0,
      },
    ]);
  });

  it('needs the read scope: 401 without a key, 403 with a mint-only key, 200 with read or admin', async () => {
    const h = await harness();
    const none = await h.app.inject({ url: '/v1/overview' });
    expect(none.statusCode).toBe(401);
    expect(none.json().type).toBe('/problems/unauthorized');
    const mint = await overview(h, MINT_KEY);
    expect(mint.statusCode).toBe(403);
    expect(mint.json().type).toBe('/problems/forbidden');
    expect((await overview(h, READ_KEY)).statusCode).toBe(200);
    expect((await overview(h, ADMIN_KEY)).statusCode).toBe(200);
    expect(h.logs.text).not.toContain(READ_KEY);
    expect(h.logs.text).not.toContain(MINT_KEY);
  });

  it('answers a problem, not a partial overview, when the store cannot be read', async () => {
    const h = await harness();
    await h.store.close();
    const res = await overview(h);
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('is in the OpenAPI document with its schema and the read scope', async () => {
    const h = await harness();
    const doc = (await h.app.inject({ url: '/v1/openapi.json' })).json();
    const operation = doc.paths['/v1/overview'].get;
    expect(operation.operationId).toBe('getOverview');
    expect(operation.description).toMatch(/read scope/);
    const schema = operation.responses['200'].content['application/json'].schema;
    expect(Object.keys(schema.properties)).toEqual([
      'at',
      'statuses',
      'inFlight',
      'oldestInFlightAgeMs',
      'relay',
      'totals',
      'since',
      'rates',
    ]);
  });
});

describe('OverviewReader', () => {
  it('lets overviews asked for while the store is being counted share that count', async () => {
    const store = sqliteStore();
    let counts = 0;
    const counting = Object.create(store) as TokenStore;
    counting.statusCounts = () => {
      counts += 1;
      return store.statusCounts();
    };
    const metrics = new MetricsObserver(new Registry(), store);
    const reader = new OverviewReader({
      store: counting,
      relay: null,
      totals: metrics,
      rates: new RateSampler(() => ratedTotals(metrics)),
      clock: Date.now,
    });
    try {
      const together = await Promise.all([reader.read(), reader.read(), reader.read()]);
      expect(counts).toBe(1);
      expect(together[1]?.statuses).toEqual(together[0]?.statuses);
      await reader.read();
      expect(counts).toBe(2);
    } finally {
      await store.close();
    }
  });
});

describe('RateSampler', () => {
  it('keeps the points of the window only, oldest first', async () => {
    let now = 0;
    let total = 0;
    const sampler = new RateSampler(async () => ({ n: total }), {
      intervalMs: 1_000,
      windowMs: 3_000,
      clock: () => now,
    });
    for (let i = 0; i < 6; i++) {
      total += i;
      await sampler.sample();
      now += 1_000;
    }
    expect(sampler.points()).toEqual([
      { at: 3_000, n: 3 },
      { at: 4_000, n: 4 },
      { at: 5_000, n: 5 },
    ]);
  });

  it('divides by the time that really passed and skips a sample whose read failed', async () => {
    let now = 0;
    let fail = false;
    let total = 0;
    const sampler = new RateSampler(
      async () => {
        if (fail) throw new Error('registry gone');
        return { n: total };
      },
      { intervalMs: 1_000, clock: () => now },
    );
    await sampler.sample();
    total = 30;
    now = 3_000;
    fail = true;
    await sampler.sample();
    fail = false;
    now = 6_000;
    await sampler.sample();
    expect(sampler.points()).toEqual([{ at: 6_000, n: 5 }]);
  });
});
