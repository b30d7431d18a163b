import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import type { TokenStore } from '../../src/core/store.js';
import { tollgateOf, tollgatePlugin } from '../../src/transports/http/index.js';
import { freshStore, type StoreKind } from '../support/stores.js';
import { type Answer, expectProblem, fingerprint, listen, post, tokenHeader } from './support.js';

const KEY = 'shipping-key-0123456789abcdef';
const OTHER_KEY = 'second-key-0123456789abcdef';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

interface Shipment {
  order: string;
  items: number;
}

/**
 * A receiving system without the gateway: the plugin with its issuing route, and an exactly-once route that
 * counts how often each shipment was applied.
 */
async function receiver(store: TokenStore, clock: () => number): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  await app.register(tollgatePlugin, {
    store,
    endpoint: 'shipping',
    clock,
    issuing: { keys: [KEY, OTHER_KEY], maxBodyBytes: 2048 },
  });
  app.post('/shipments', { config: { exactlyOnce: true } }, async (request, reply) => {
    const work = tollgateOf<Shipment>(request);
    const key = `shipped:${work.payload.order}`;
    work.put(key, ((await work.get<number>(key)) ?? 0) + 1);
    reply.code(201);
    return { shipped: work.payload.order };
  });
  return app;
}

describe.each<StoreKind>(['sqlite', 'postgres'])('the issuing route of the plugin on %s', (kind) => {
  let store: TokenStore;
  let app: FastifyInstance;
  let base: string;

  beforeEach(async () => {
    store = await freshStore(kind);
    app = await receiver(store, Date.now);
    base = await listen(app);
  });
  afterEach(async () => {
    await app.close();
    await store.close();
  });

  it('issues a token another system then sends its signal with, applied once however often it is sent', async () => {
    const shipment: Shipment = { order: 'o-1', items: 3 };
    const issued = await post(
      `${base}/v1/tokens`,
      { id: 'billing-o-1-ship', fingerprint: fingerprint(shipment) },
      bearer(KEY),
    );
    expect(issued.status).toBe(201);
    expect(issued.headers.get('location')).toBe('/v1/tokens/billing-o-1-ship');
    expect(issued.json).toMatchObject({ id: 'billing-o-1-ship', status: 'issued', mintedBy: 'shipping' });

    const first = await post(`${base}/shipments`, shipment, tokenHeader('billing-o-1-ship'));
    expect(first.status).toBe(201);
    expect(first.headers.get('exactly-once-status')).toBe('processed');
    const again = await post(`${base}/shipments`, shipment, tokenHeader('billing-o-1-ship'));
    expect(again.headers.get('exactly-once-status')).toBe('duplicate');
    expect(again.body).toBe(first.body);

    expect((await store.readState('shipped:o-1'))?.value).toBe(1);
    expect(await store.getToken('billing-o-1-ship')).toMatchObject({
      status: 'consumed',
      consumedBy: 'shipping',
    });
  });
});

describe('the issuing route of the plugin', () => {
  let store: TokenStore;
  let app: FastifyInstance;
  let base: string;
  let now: number;

  beforeEach(async () => {
    now = Date.now();
    store = await freshStore('sqlite');
    app = await receiver(store, () => now);
    base = await listen(app);
  });
  afterEach(async () => {
    await app.close();
    await store.close();
  });

  const issue = (body: unknown, headers: Record<string, string> = bearer(KEY)): Promise<Answer> =>
    post(`${base}/v1/tokens`, body, headers);

  it("records the caller's conversation and parent token on the issued token", async () => {
    const res = await issue({
      id: 'billing-o-2-ship',
      payload: { order: 'o-2', items: 1 },
      conversationId: 'billing-conv-o-2',
      parentId: 'billing-o-2-order',
    });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ conversationId: 'billing-conv-o-2', parentId: 'billing-o-2-order' });
    expect(await store.getToken('billing-o-2-ship')).toMatchObject({
      conversationId: 'billing-conv-o-2',
      parentId: 'billing-o-2-order',
      fingerprint: fingerprint({ order: 'o-2', items: 1 }),
      status: 'issued',
    });
  });

  it('answers a repeated issue with 200 and the same token, and another fingerprint with 409 token-exists', async () => {
    const body = { id: 'billing-o-3-ship', payload: { order: 'o-3', items: 2 }, parentId: 'billing-o-3' };
    const first = await issue(body);
    expect(first.status).toBe(201);
    // A retry of the issue, even with the other key: the same token, not a second one.
    const again = await issue(body, { 'x-api-key': OTHER_KEY });
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);

    const other = await issue({ id: 'billing-o-3-ship', payload: { order: 'o-3', items: 9 } });
    expectProblem(other, 409, 'token-exists');
    expect(other.json).toMatchObject({ code: 'TOLLGATE_ERR_TOKEN_EXISTS', tokenId: 'billing-o-3-ship' });
  });

  it('refuses to issue again a token that was consumed, revoked or expired (409)', async () => {
    const shipment = { order: 'o-4', items: 1 };
    await issue({ id: 'billing-o-4-ship', payload: shipment });
    await post(`${base}/shipments`, shipment, tokenHeader('billing-o-4-ship'));
    const consumed = await issue({ id: 'billing-o-4-ship', payload: shipment });
    expectProblem(consumed, 409, 'token-consumed');
    expect(consumed.json).toMatchObject({ code: 'TOLLGATE_ERR_TOKEN_CONSUMED' });

    await issue({ id: 'billing-o-5-ship', payload: shipment });
    await store.revoke('billing-o-5-ship', now);
    expectProblem(await issue({ id: 'billing-o-5-ship', payload: shipment }), 409, 'token-revoked');

    await issue({ id: 'billing-o-6-ship', payload: shipment, expiresInMs: 1000 });
    now += 2000;
    await store.expireIssued(now);
    expectProblem(await issue({ id: 'billing-o-6-ship', payload: shipment }), 409, 'token-expired');
  });

  it('refuses without a key or with an unknown one (401), before reading the body', async () => {
    const none = await issue({ id: 'billing-o-7-ship' }, {});
    expectProblem(none, 401, 'unauthorized');
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(none.json).toMatchObject({ code: 'TOLLGATE_ERR_UNAUTHORIZED' });
    expectProblem(
      await issue({ id: 'billing-o-7-ship' }, bearer('not-a-key-0123456789')),
      401,
      'unauthorized',
    );
    expectProblem(
      await issue({ id: 'billing-o-7-ship' }, { authorization: `Basic ${KEY}` }),
      401,
      'unauthorized',
    );
    // Unauthenticated and too large: the key check answers first.
    expectProblem(await issue({ payload: 'x'.repeat(4096) }, {}), 401, 'unauthorized');
    expect(await store.getToken('billing-o-7-ship')).toBeUndefined();
  });

  it.each([
    ['a malformed id', { id: 'bad id!' }],
    ['a too short id', { id: 'short' }],
    ['a malformed parentId', { parentId: 'no/slashes' }],
    ['a malformed conversationId', { conversationId: 'x' }],
    ['a non-hex fingerprint', { fingerprint: 'Z'.repeat(64) }],
    ['fingerprint and payload together', { fingerprint: 'a'.repeat(64), payload: 1 }],
    ['expiresInMs as a string (no coercion, whatever the application configured)', { expiresInMs: '5000' }],
    ['an expiry in the past', { expiresAt: '2001-01-01T00:00:00Z' }],
    ['an unknown field (refused, not dropped)', { id: 'abcdefgh', colour: 'red' }],
    ['a non-http destination url', { destination: { medium: 'http', method: 'POST', url: 'ftp://files/x' } }],
    ['a body that is not an object', [1, 2]],
  ])('refuses %s with a 400 validation problem', async (_what, body) => {
    const res = await issue(body);
    expectProblem(res, 400, 'validation');
    expect(res.json).toMatchObject({ code: 'TOLLGATE_ERR_INVALID_ARGUMENT' });
  });

  it('refuses bad JSON (400), other media types (415) and bodies over maxBodyBytes (413)', async () => {
    expectProblem(await issue('{"id":'), 400, 'invalid-payload');
    const text = await issue('id=abcdefgh', { 'content-type': 'text/plain', ...bearer(KEY) });
    expectProblem(text, 415, 'unsupported-media-type');
    const huge = await issue({ payload: 'x'.repeat(4096) });
    expectProblem(huge, 413, 'body-too-large');
    expect(huge.json).toMatchObject({ code: 'TOLLGATE_ERR_BODY_TOO_LARGE' });
  });

  it('lets the receiving route refuse a signal whose payload differs from the issued fingerprint (422)', async () => {
    await issue({ id: 'billing-o-8-ship', payload: { order: 'o-8', items: 1 } });
    const res = await post(`${base}/shipments`, { order: 'o-8', items: 50 }, tokenHeader('billing-o-8-ship'));
    expectProblem(res, 422, 'fingerprint-mismatch');
    expect((await store.getToken('billing-o-8-ship'))?.status).toBe('issued');
  });
});

describe('the issuing option', () => {
  it('is refused without a key, or with an empty one', async () => {
    const store = await freshStore('sqlite');
    try {
      for (const keys of [[], ['']]) {
        const app = Fastify({ logger: false });
        await expect(app.register(tollgatePlugin, { store, issuing: { keys } })).rejects.toBeInstanceOf(
          ConfigError,
        );
        await app.close();
      }
    } finally {
      await store.close();
    }
  });

  it('serves its route on the path it is given, and none without the option', async () => {
    const store = await freshStore('sqlite');
    const app = Fastify({ logger: false });
    await app.register(tollgatePlugin, { store, issuing: { keys: [KEY], path: '/tollgate/tokens' } });
    const plain = Fastify({ logger: false });
    await plain.register(tollgatePlugin, { store });
    try {
      const base = await listen(app);
      const res = await post(`${base}/tollgate/tokens`, { id: 'custom-path-1' }, bearer(KEY));
      expect(res.status).toBe(201);
      expect(res.headers.get('location')).toBe('/tollgate/tokens/custom-path-1');
      expect((await store.getToken('custom-path-1'))?.mintedBy).toBe('issuing');
      const none = await post(`${await listen(plain)}/v1/tokens`, { id: 'custom-path-2' }, bearer(KEY));
      expect(none.status).toBe(404);
    } finally {
      await app.close();
      await plain.close();
      await store.close();
    }
  });
});
