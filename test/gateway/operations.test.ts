import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { fingerprint } from '../../src/core/fingerprint.js';
import { pendingToken } from '../../src/core/mint.js';
import { MetricsObserver } from '../../src/gateway/metrics.js';
import { ApiKeys } from '../../src/transports/http/api-keys.js';
import { DEFAULT_PROBLEM_BASE } from '../../src/transports/http/index.js';
import {
  ADMIN_KEY,
  bearer,
  KEYS,
  MINT_KEY,
  metricValue,
  READ_KEY,
  sqliteStore,
  testGateway,
} from './support.js';

describe('API keys and scopes', () => {
  it('maps keys to scopes; admin has every scope; unknown keys have none', () => {
    const keys = new ApiKeys(KEYS);
    expect([...keys.scopesOf(READ_KEY)]).toEqual(['read']);
    expect([...keys.scopesOf(MINT_KEY)]).toEqual(['mint']);
    expect([...keys.scopesOf(ADMIN_KEY)].sort()).toEqual(['admin', 'mint', 'read']);
    expect(keys.scopesOf(`${ADMIN_KEY}x`).size).toBe(0);
    expect(keys.scopesOf('').size).toBe(0);
    expect(new ApiKeys({ read: [], mint: [], admin: [] }).enabled).toBe(false);
  });

  it('enforces scopes on every route: 401 without or with a wrong key, 403 without the scope', async () => {
    const gw = await testGateway({
      apiKeys: KEYS,
      bridges: { ingress: [{ route: 'r1', exchange: 'x', routingKey: 'k' }], egress: [] },
    });
    try {
      const call = (
        method: 'GET' | 'POST' | 'DELETE',
        url: string,
        headers: Record<string, string> = {},
        payload?: object,
      ) => gw.app.inject({ method, url, headers, ...(payload ? { payload } : {}) });

      const none = await call('GET', '/v1/tokens?status=issued');
      expect(none.statusCode).toBe(401);
      expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(none.json().type).toBe(`${DEFAULT_PROBLEM_BASE}unauthorized`);
      expect(
        (await call('GET', '/v1/tokens?status=issued', bearer('wrong-key-0123456789abcdef'))).statusCode,
      ).toBe(401);
      expect((await call('GET', '/v1/tokens?status=issued', { authorization: 'Basic abc' })).statusCode).toBe(
        401,
      );

      // read: GETs only
      expect((await call('GET', '/v1/tokens?status=issued', bearer(READ_KEY))).statusCode).toBe(200);
      expect((await call('GET', '/v1/tokens?status=issued', { 'x-api-key': READ_KEY })).statusCode).toBe(200);
      const readMint = await call('POST', '/v1/tokens', bearer(READ_KEY), {});
      expect(readMint.statusCode).toBe(403);
      expect(readMint.json().type).toBe(`${DEFAULT_PROBLEM_BASE}forbidden`);

      // mint: issue and ingress, not reads or admin
      const minted = await call('POST', '/v1/tokens', bearer(MINT_KEY), {});
      expect(minted.statusCode).toBe(201);
      const id = minted.json().id as string;
      expect((await call('GET', `/v1/tokens/${id}`, bearer(MINT_KEY))).statusCode).toBe(403);
      expect((await call('DELETE', `/v1/tokens/${id}`, bearer(MINT_KEY))).statusCode).toBe(403);
      expect(
        (await call('POST', '/v1/signals/r1', { ...bearer(MINT_KEY), 'exactly-once-token': id }, {}))
          .statusCode,
      ).toBe(202);
      expect(
        (await call('POST', '/v1/signals/r1', { ...bearer(READ_KEY), 'exactly-once-token': id }, {}))
          .statusCode,
      ).toBe(403);

      // admin: everything
      expect((await call('POST', `/v1/tokens/${id}/redispatch`, bearer(READ_KEY))).statusCode).toBe(403);
      expect((await call('POST', `/v1/tokens/${id}/redispatch`, bearer(ADMIN_KEY))).statusCode).toBe(409);
      expect(
        (await call('GET', `/v1/conversations/${minted.json().conversationId}`, bearer(ADMIN_KEY)))
          .statusCode,
      ).toBe(200);
      expect((await call('DELETE', `/v1/tokens/${id}`, bearer(ADMIN_KEY))).statusCode).toBe(200);

      // Auth is checked before the body is even parsed: no key + bad JSON is still a 401.
      const early = await gw.app.inject({
        method: 'POST',
        url: '/v1/tokens',
        payload: '{',
        headers: { 'content-type': 'application/json' },
      });
      expect(early.statusCode).toBe(401);

      // Probes, metrics and the API document stay open.
      for (const url of ['/health/live', '/health/ready', '/metrics', '/v1/openapi.json']) {
        expect((await call('GET', url)).statusCode).toBe(200);
      }
      // Keys never reach the logs.
      expect(gw.logs.text).not.toContain(READ_KEY);
      expect(gw.logs.text).not.toContain(ADMIN_KEY);
    } finally {
      await gw.close();
    }
  });
});

describe('health', () => {
  it('is live and ready with store and broker up; not ready when draining, the broker or the store is down', async () => {
    let brokerUp = true;
    const gw = await testGateway({
      broker: {
        ping: async () => {
          if (!brokerUp) throw new Error('down');
        },
      },
    });
    try {
      expect((await gw.app.inject({ url: '/health/live' })).json()).toEqual({ status: 'ok' });
      const ready = await gw.app.inject({ url: '/health/ready' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json()).toEqual({
        status: 'ok',
        checks: { store: 'ok', broker: 'ok', lifecycle: 'running' },
      });

      brokerUp = false;
      const noBroker = await gw.app.inject({ url: '/health/ready' });
      expect(noBroker.statusCode).toBe(503);
      expect(noBroker.json().checks.broker).toBe('unreachable');
      brokerUp = true;

      gw.lifecycle.draining = true;
      const draining = await gw.app.inject({ url: '/health/ready' });
      expect(draining.statusCode).toBe(503);
      expect(draining.json().checks.lifecycle).toBe('draining');
      gw.lifecycle.draining = false;

      await gw.store.close();
      const noStore = await gw.app.inject({ url: '/health/ready' });
      expect(noStore.statusCode).toBe(503);
      expect(noStore.json().checks.store).toBe('unreachable');
      expect((await gw.app.inject({ url: '/health/live' })).statusCode).toBe(200);
    } finally {
      await gw.close();
    }
  });
});

describe('metrics', () => {
  it('serves every Tollgate metric in Prometheus format', async () => {
    const gw = await testGateway();
    try {
      const res = await gw.app.inject({ url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      for (const name of [
        'tollgate_tokens_minted_total',
        'tollgate_tokens_consumed_total',
        'tollgate_duplicates_dropped_total',
        'tollgate_fingerprint_mismatches_total',
        'tollgate_dead_lettered_total',
        'tollgate_commit_retries_total',
        'tollgate_relay_redispatches_total',
        'tollgate_tokens_in_flight',
        'tollgate_oldest_in_flight_age_seconds',
        'tollgate_commit_duration_seconds',
        'tollgate_hop_duration_seconds',
      ]) {
        expect(res.body).toContain(`# TYPE ${name} `);
      }
    } finally {
      await gw.close();
    }
  });

  it('moves with the observer callbacks and reads in-flight figures from the store', async () => {
    const store = sqliteStore();
    const registry = new Registry();
    let now = Date.now();
    const metrics = new MetricsObserver(registry, store, () => now);
    try {
      expect(await metricValue(registry, 'tollgate_tokens_in_flight')).toBe(0);
      expect(await metricValue(registry, 'tollgate_oldest_in_flight_age_seconds')).toBe(0);
      const token = pendingToken(
        { destination: { medium: 'amqp', exchange: 'x', routingKey: 'k' }, payload: 1 },
        { mintedBy: 't', now },
      );
      await store.mint([token]);
      metrics.minted([token]);
      now += 30_000;
      expect(await metricValue(registry, 'tollgate_tokens_in_flight')).toBe(1);
      expect(await metricValue(registry, 'tollgate_oldest_in_flight_age_seconds')).toBe(30);

      metrics.processed('orders', token, 12);
      metrics.dropped('orders', token.id, 'consumed');
      metrics.rejected('orders', token.id, 'fingerprint-mismatch');
      metrics.commitRetried('orders', 'version-conflict');
      metrics.commitRetried('orders', 'transient');
      metrics.dispatched(token, 'relay');
      metrics.dispatched(token, 'hop');
      metrics.deadLettered('orders', token.id, 'TOLLGATE_ERR_FINGERPRINT_MISMATCH');
      metrics.hopCompleted('orders', 20);

      expect(await metricValue(registry, 'tollgate_tokens_minted_total')).toBe(1);
      expect(await metricValue(registry, 'tollgate_tokens_consumed_total', { endpoint: 'orders' })).toBe(1);
      expect(await metricValue(registry, 'tollgate_duplicates_dropped_total', { reason: 'consumed' })).toBe(
        1,
      );
      expect(await metricValue(registry, 'tollgate_fingerprint_mismatches_total')).toBe(1);
      expect(
        await metricValue(registry, 'tollgate_commit_retries_total', { reason: 'version-conflict' }),
      ).toBe(1);
      expect(await metricValue(registry, 'tollgate_commit_retries_total', { reason: 'transient' })).toBe(1);
      expect(await metricValue(registry, 'tollgate_relay_redispatches_total')).toBe(1);
      expect(
        await metricValue(registry, 'tollgate_dead_lettered_total', {
          reason: 'TOLLGATE_ERR_FINGERPRINT_MISMATCH',
        }),
      ).toBe(1);
      const text = await registry.metrics();
      expect(text).toContain('tollgate_commit_duration_seconds_count{endpoint="orders"} 1');
      expect(text).toContain('tollgate_hop_duration_seconds_count{endpoint="orders"} 1');

      await store.commit({
        consume: { tokenId: token.id, fingerprint: fingerprint(1), consumedBy: 'orders' },
        writes: [],
        mints: [],
        now,
      });
      expect(await metricValue(registry, 'tollgate_tokens_in_flight')).toBe(0);
      // A store that fails keeps the last values instead of failing the scrape.
      await store.close();
      await expect(registry.metrics()).resolves.toContain('tollgate_tokens_in_flight 0');
    } finally {
      await store.close();
    }
  });
});
