import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/core/dispatcher.js';
import { StoreUnavailableError } from '../../src/core/errors.js';
import { fingerprint } from '../../src/core/fingerprint.js';
import { newTokenId } from '../../src/core/ids.js';
import type { Observer } from '../../src/core/observer.js';
import type { TokenStore } from '../../src/core/store.js';
import { HttpSignalSender, tollgateOf, tollgatePlugin } from '../../src/transports/http/index.js';
import { freshStore, STORE_KINDS } from '../support/stores.js';
import { buildTestApp } from './fixtures/app.js';
import { deferred, expectProblem, listen, mintFor, post, tokenHeader } from './support.js';

describe.each(STORE_KINDS)('exactly-once fastify route on %s', (kind) => {
  let store: TokenStore;
  let app: FastifyInstance;
  let base: string;

  beforeEach(async () => {
    store = await freshStore(kind);
    app = await buildTestApp({ store, waitMs: 10_000 });
    base = await listen(app);
  });

  afterEach(async () => {
    await app.close();
    await store.close();
  });

  it('answers a fresh token with the handler answer, and replays it for a duplicate', async () => {
    const payload = { key: 'order-1', amount: 5 };
    const token = await mintFor(store, `${base}/add`, payload);

    const first = await post(`${base}/add`, payload, tokenHeader(token.id));
    expect(first.status).toBe(201);
    expect(first.headers.get('exactly-once-status')).toBe('processed');
    expect(first.headers.get('location')).toBe('/totals/order-1');
    expect(first.headers.get('x-not-kept')).toBe('live-only');
    expect(first.json).toEqual({ key: 'order-1', total: 5 });

    const again = await post(`${base}/add`, payload, tokenHeader(token.id));
    expect(again.status).toBe(201);
    expect(again.headers.get('exactly-once-status')).toBe('duplicate');
    expect(again.headers.get('location')).toBe('/totals/order-1');
    expect(again.headers.get('content-type')).toBe(first.headers.get('content-type'));
    expect(again.headers.get('x-not-kept')).toBeNull();
    expect(again.body).toBe(first.body);

    const consumed = await store.getToken(token.id);
    expect(consumed).toMatchObject({ status: 'consumed', consumedBy: 'adder' });
    expect(consumed?.response).toMatchObject({ statusCode: 201, body: first.body });
    expect((await store.readState('order-1'))?.value).toBe(5);
  });

  it('applies the same request once when it arrives 10 times concurrently', async () => {
    const payload = { key: 'concurrent', amount: 3 };
    const token = await mintFor(store, `${base}/add`, payload);
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => post(`${base}/add`, payload, tokenHeader(token.id))),
    );
    const statuses = answers.map((a) => a.headers.get('exactly-once-status'));
    expect(statuses.filter((s) => s === 'processed')).toHaveLength(1);
    expect(statuses.filter((s) => s === 'duplicate')).toHaveLength(9);
    for (const answer of answers) {
      expect(answer.status).toBe(201);
      expect(answer.json).toEqual({ key: 'concurrent', total: 3 });
    }
    expect((await store.readState('concurrent'))?.value).toBe(3);
    expect((await store.readState('runs:concurrent'))?.value).toBe(1);
  });

  it('applies the same request once when it arrives 10 times in sequence', async () => {
    const payload = { key: 'sequential', amount: 7 };
    const token = await mintFor(store, `${base}/add`, payload);
    const statuses: Array<string | null> = [];
    for (let i = 0; i < 10; i++) {
      const answer = await post(`${base}/add`, payload, tokenHeader(token.id));
      expect(answer.status).toBe(201);
      expect(answer.json).toEqual({ key: 'sequential', total: 7 });
      statuses.push(answer.headers.get('exactly-once-status'));
    }
    expect(statuses).toEqual(['processed', ...Array(9).fill('duplicate')]);
    expect((await store.readState('runs:sequential'))?.value).toBe(1);
  });

  it('accepts the payload whatever order its keys arrive in (canonical fingerprint)', async () => {
    const token = await mintFor(store, `${base}/add`, { key: 'canon', amount: 1 });
    const answer = await post(`${base}/add`, '{ "amount": 1.0, "key": "canon" }', tokenHeader(token.id));
    expect(answer.headers.get('exactly-once-status')).toBe('processed');
  });

  it('answers 400 token-missing when the route requires a token and none came', async () => {
    const answer = await post(`${base}/add`, { key: 'x', amount: 1 });
    expectProblem(answer, 400, 'token-missing');
    expect(answer.json).toMatchObject({ code: 'TOLLGATE_ERR_TOKEN_HEADER_MISSING' });
    expect(await store.readState('x')).toBeUndefined();
  });

  it('answers 400 token-malformed for a token that cannot be an id', async () => {
    for (const bad of ['short', 'has spaces in it', 'x'.repeat(129), 'semi;colon-token']) {
      const answer = await post(`${base}/add`, { key: 'x', amount: 1 }, tokenHeader(bad));
      expectProblem(answer, 400, 'token-malformed');
      expect(answer.json).toMatchObject({ code: 'TOLLGATE_ERR_TOKEN_MALFORMED' });
    }
  });

  it('answers 409 token-unknown for a token never minted, and says purged tokens look the same', async () => {
    const id = newTokenId();
    const answer = await post(`${base}/add`, { key: 'x', amount: 1 }, tokenHeader(id));
    expectProblem(answer, 409, 'token-unknown');
    expect(answer.json).toMatchObject({ code: 'TOLLGATE_ERR_TOKEN_UNKNOWN', tokenId: id });
    expect((answer.json as { detail: string }).detail).toMatch(/cannot be told apart/);
  });

  it('answers 409 token-consumed for a token consumed without a kept answer', async () => {
    const payload = { key: 'elsewhere', amount: 1 };
    const token = await mintFor(store, `${base}/add`, payload);
    // Consumed by a non-HTTP endpoint (an AMQP consumer keeps no answer).
    const committed = await store.commit({
      consume: { tokenId: token.id, fingerprint: fingerprint(payload), consumedBy: 'amqp-consumer' },
      writes: [],
      mints: [],
      now: Date.now(),
    });
    expect(committed.ok).toBe(true);
    const answer = await post(`${base}/add`, payload, tokenHeader(token.id));
    expectProblem(answer, 409, 'token-consumed');
    expect(answer.json).toMatchObject({ code: 'TOLLGATE_ERR_TOKEN_CONSUMED', tokenId: token.id });
  });

  it('answers 409 token-revoked for a revoked token', async () => {
    const payload = { key: 'revoked', amount: 1 };
    const token = await mintFor(store, `${base}/add`, payload);
    await store.revoke(token.id, Date.now());
    const answer = await post(`${base}/add`, payload, tokenHeader(token.id));
    expectProblem(answer, 409, 'token-revoked');
    expect(answer.json).toMatchObject({ code: 'TOLLGATE_ERR_TOKEN_REVOKED' });
    expect(await store.readState('revoked')).toBeUndefined();
  });

  it('answers 409 token-expired for an issued token past its expiry', async () => {
    const id = newTokenId();
    const now = Date.now();
    await store.issue({
      id,
      conversationId: newTokenId(),
      mintedBy: 'issuer',
      status: 'issued',
      mintedAt: now - 10_000,
      attempts: 0,
      expiresAt: now - 1_000,
    });
    const answer = await post(`${base}/add`, { key: 'expired', amount: 1 }, tokenHeader(id));
    expectProblem(answer, 409, 'token-expired');
    expect(answer.json).toMatchObject({ code: 'TOLLGATE_ERR_TOKEN_EXPIRED' });
  });

  it('answers 422 fingerprint-mismatch when the token was minted for another payload', async () => {
    const token = await mintFor(store, `${base}/add`, { key: 'fp', amount: 1 });
    const answer = await post(`${base}/add`, { key: 'fp', amount: 1000 }, tokenHeader(token.id));
    expectProblem(answer, 422, 'fingerprint-mismatch');
    expect(answer.json).toMatchObject({ code: 'TOLLGATE_ERR_FINGERPRINT_MISMATCH' });
    expect((await store.getToken(token.id))?.status).toBe('pending');
    expect(await store.readState('fp')).toBeUndefined();
  });

  it('answers 409 token-in-progress with Retry-After while a copy is still running here', async () => {
    const gate = deferred();
    const entered = deferred();
    const slowApp = await buildTestApp({
      store,
      waitMs: 20,
      slowGate: () => {
        entered.resolve();
        return gate.promise;
      },
    });
    try {
      const slowBase = await listen(slowApp);
      const payload = { key: 'slow', amount: 1 };
      const token = await mintFor(store, `${slowBase}/slow`, payload);
      const first = post(`${slowBase}/slow`, payload, tokenHeader(token.id));
      await entered.promise;
      const second = await post(`${slowBase}/slow`, payload, tokenHeader(token.id));
      expectProblem(second, 409, 'token-in-progress');
      expect(second.headers.get('retry-after')).toBe('1');
      expect(second.json).toMatchObject({ code: 'TOLLGATE_ERR_TOKEN_IN_PROGRESS' });
      gate.resolve();
      expect((await first).headers.get('exactly-once-status')).toBe('processed');
      const third = await post(`${slowBase}/slow`, payload, tokenHeader(token.id));
      expect(third.headers.get('exactly-once-status')).toBe('duplicate');
    } finally {
      gate.resolve();
      await slowApp.close();
    }
  });

  it('answers 500 handler-failed when the handler throws, and leaves the token untouched', async () => {
    const token = await mintFor(store, `${base}/boom`, {});
    const answer = await post(`${base}/boom`, {}, tokenHeader(token.id));
    expectProblem(answer, 500, 'handler-failed');
    expect(answer.json).toMatchObject({ code: 'TOLLGATE_ERR_HANDLER_FAILED' });
    expect(answer.body).not.toMatch(/exploded/);
    expect((await store.getToken(token.id))?.status).toBe('pending');
    expect(await store.readState('boom')).toBeUndefined();
  });

  it('answers 413 body-too-large and 415 unsupported-media-type before the handler runs', async () => {
    const token = await mintFor(store, `${base}/add`, { key: 'big', amount: 1 });
    const big = await post(
      `${base}/add`,
      { key: 'big', amount: 1, pad: 'x'.repeat(10_000) },
      tokenHeader(token.id),
    );
    expectProblem(big, 413, 'body-too-large');
    const xml = await post(`${base}/add`, '<add/>', {
      ...tokenHeader(token.id),
      'content-type': 'application/xml',
    });
    expectProblem(xml, 415, 'unsupported-media-type');
    const broken = await post(`${base}/add`, '{"key":', tokenHeader(token.id));
    expectProblem(broken, 400, 'invalid-payload');
    expect((await store.getToken(token.id))?.status).toBe('pending');
  });

  it('runs an optional route as a plain route without a token, and exactly-once with one', async () => {
    const plain = await post(`${base}/optional`, {});
    expect(plain.json).toEqual({ exactlyOnce: false });
    expect(plain.headers.get('exactly-once-status')).toBeNull();
    const token = await mintFor(store, `${base}/optional`, {});
    const once = await post(`${base}/optional`, {}, tokenHeader(token.id));
    expect(once.json).toEqual({ exactlyOnce: true });
    expect(once.headers.get('exactly-once-status')).toBe('processed');
    const untouched = await post(`${base}/plain`, {}, tokenHeader(token.id));
    expect(untouched.json).toEqual({ tollgate: null });
  });
});

describe.each(STORE_KINDS)('tollgate plugin lifecycle on %s', (kind) => {
  it('reports outcomes to observers and lets a running request finish when fastify closes', async () => {
    const store = await freshStore(kind);
    const events: string[] = [];
    const observer: Observer = {
      processed: (endpoint) => events.push(`processed:${endpoint}`),
      dropped: (endpoint, _id, reason) => events.push(`dropped:${endpoint}:${reason}`),
      rejected: (endpoint, _id, reason) => events.push(`rejected:${endpoint}:${reason}`),
      hopCompleted: (endpoint) => events.push(`completed:${endpoint}`),
    };
    const gate = deferred();
    const entered = deferred();
    const app = Fastify({ logger: false });
    await app.register(tollgatePlugin, { store, endpoint: 'lifecycle', observers: [observer] });
    app.post('/work', { config: { exactlyOnce: true } }, async (request) => {
      entered.resolve();
      await gate.promise;
      tollgateOf(request).put('closing', true);
      return { done: true };
    });
    try {
      const base = await listen(app);
      const token = await mintFor(store, `${base}/work`, {});
      const running = post(`${base}/work`, {}, tokenHeader(token.id));
      await entered.promise;
      const closing = app.close();
      gate.resolve();
      const answer = await running;
      await closing;
      expect(answer.headers.get('exactly-once-status')).toBe('processed');
      expect((await store.readState('closing'))?.value).toBe(true);
      expect(events).toEqual(['processed:lifecycle', 'completed:lifecycle']);
    } finally {
      gate.resolve();
      await app.close();
      await store.close();
    }
  });

  it('refuses to start without a store', async () => {
    const app = Fastify({ logger: false });
    // @ts-expect-error the store is required
    await expect(app.register(tollgatePlugin, {}).ready()).rejects.toMatchObject({
      code: 'TOLLGATE_ERR_CONFIG_INVALID',
    });
  });
});

describe.each(STORE_KINDS)('exactly-once route with an unavailable %s store', (kind) => {
  it('answers 503 store-unavailable with Retry-After and consumes nothing', async () => {
    const store = await freshStore(kind);
    let down = true;
    const flaky: TokenStore = new Proxy(store, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        // An interactive store (PostgreSQL) reads and consumes the token in its own transaction.
        if (property === 'ownData' && target.ownData?.mode === 'interactive') {
          const own = target.ownData;
          const transact: typeof own.transact = async (...args) => {
            if (down) throw new StoreUnavailableError('store is down (test)');
            return own.transact(...args);
          };
          return { mode: 'interactive', transact };
        }
        if (typeof value !== 'function') return value;
        if (down && (property === 'getToken' || property === 'commit')) {
          return async () => {
            throw new StoreUnavailableError('store is down (test)');
          };
        }
        return value.bind(target);
      },
    });
    const app = await buildTestApp({ store: flaky });
    try {
      const base = await listen(app);
      const payload = { key: 'outage', amount: 2 };
      const token = await mintFor(store, `${base}/add`, payload);
      const answer = await post(`${base}/add`, payload, tokenHeader(token.id));
      expectProblem(answer, 503, 'store-unavailable');
      expect(answer.headers.get('retry-after')).toBe('1');
      expect(answer.json).toMatchObject({ code: 'TOLLGATE_ERR_STORE_UNAVAILABLE' });
      expect((await store.getToken(token.id))?.status).toBe('pending');

      down = false;
      const retried = await post(`${base}/add`, payload, tokenHeader(token.id));
      expect(retried.headers.get('exactly-once-status')).toBe('processed');
      expect((await store.readState('outage'))?.value).toBe(2);
    } finally {
      await app.close();
      await store.close();
    }
  });
});

describe.each(STORE_KINDS)('a request whose commit landed but whose answer was lost (%s store)', (kind) => {
  it('answers the retry as processed and sends the emitted signal at once, not as a duplicate', async () => {
    const store = await freshStore(kind);
    // 'lose': the next commit is applied but reported as failed; 'down': nothing gets through; 'up': all works.
    let phase: 'lose' | 'down' | 'up' = 'lose';
    const unavailable = () => new StoreUnavailableError('store is down (test)');
    const flaky: TokenStore = new Proxy(store, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (property === 'ownData' && target.ownData?.mode === 'interactive') {
          const own = target.ownData;
          const transact: typeof own.transact = async (...args) => {
            if (phase === 'down') throw unavailable();
            const result = await own.transact(...args);
            if (phase !== 'lose') return result;
            phase = 'down';
            return { ok: false, failure: { kind: 'transient', cause: unavailable() } };
          };
          return { mode: 'interactive', transact };
        }
        if (typeof value !== 'function') return value;
        if (property === 'commit') {
          return async (request: Parameters<TokenStore['commit']>[0]) => {
            if (phase === 'down') return { ok: false, failure: { kind: 'transient', cause: unavailable() } };
            const result = await target.commit(request);
            if (phase !== 'lose') return result;
            phase = 'down';
            return { ok: false, failure: { kind: 'transient', cause: unavailable() } };
          };
        }
        if (property === 'getToken') {
          return async (id: string) => {
            if (phase === 'down') throw unavailable();
            return target.getToken(id);
          };
        }
        return value.bind(target);
      },
    });
    // The next hop shares the store, as services of one system do: its tokens are minted there.
    const next = await buildTestApp({ store });
    const dispatcher = new Dispatcher({
      store,
      senders: [new HttpSignalSender({ retry: { attempts: 5, baseDelayMs: 10, maxDelayMs: 50 } })],
    });
    const app = await buildTestApp({ store: flaky, dispatcher });
    try {
      const nextUrl = `${await listen(next)}/add`;
      const base = await listen(app);
      const payload = { key: 'lost', amount: 3, next: nextUrl };
      const token = await mintFor(store, `${base}/add`, payload);

      const first = await post(`${base}/add`, payload, tokenHeader(token.id));
      expectProblem(first, 503, 'store-unavailable');
      // It did commit: the token is consumed, the state written once.
      expect((await store.getToken(token.id))?.status).toBe('consumed');
      expect((await store.readState('lost'))?.value).toBe(3);

      phase = 'up';
      const retried = await post(`${base}/add`, payload, tokenHeader(token.id));
      expect(retried.status).toBe(201);
      expect(retried.headers.get('exactly-once-status')).toBe('processed');
      // The emitted signal went out with the retry (no relay runs here), and applied downstream once.
      expect((await store.readState('lost.next'))?.value).toBe(3);
      expect((await store.readState('runs:lost'))?.value).toBe(1);

      const again = await post(`${base}/add`, payload, tokenHeader(token.id));
      expect(again.headers.get('exactly-once-status')).toBe('duplicate');
    } finally {
      await app.close();
      await next.close();
      await store.close();
    }
  });
});
