import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fingerprint } from '../../src/core/fingerprint.js';
import { pendingToken } from '../../src/core/mint.js';
import { scheduledToken } from '../../src/core/scheduling.js';
import type { TokenStore } from '../../src/core/store.js';
import type { TokenRecord } from '../../src/core/token.js';
import { DEFAULT_PROBLEM_BASE } from '../../src/transports/http/index.js';
import { metricValue, type TestGateway, testGateway } from './support.js';

let gw: TestGateway;
/** The ids the gateway handed to its relay to send now. */
let redispatched: string[] = [];

beforeEach(async () => {
  redispatched = [];
  gw = await testGateway({
    relay: {
      redispatch: async (id) => {
        redispatched.push(id);
      },
    },
  });
});
afterEach(async () => {
  await gw.close();
});

async function post(url: string, payload?: unknown) {
  return gw.app.inject({
    method: 'POST',
    url,
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
}
async function get(url: string) {
  return gw.app.inject({ method: 'GET', url });
}
function expectProblem(
  res: { statusCode: number; headers: Record<string, unknown>; json(): unknown },
  status: number,
  kind: string,
) {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.json()).toMatchObject({ type: DEFAULT_PROBLEM_BASE + kind, status });
}

async function consume(
  store: TokenStore,
  id: string,
  payload: unknown,
  children: TokenRecord[] = [],
): Promise<void> {
  const result = await store.commit({
    consume: { tokenId: id, fingerprint: fingerprint(payload), consumedBy: 'test-endpoint' },
    writes: [],
    mints: children,
    now: Date.now(),
  });
  expect(result).toEqual({ ok: true });
}

describe('POST /v1/tokens', () => {
  it('issues a fresh token with a random id, a new conversation and the default expiry', async () => {
    const before = Date.now();
    const res = await post('/v1/tokens', {});
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body.id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(body).toMatchObject({ status: 'issued', mintedBy: 'gateway', attempts: 0 });
    expect(body.conversationId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(body.fingerprint).toBeUndefined();
    expect(Date.parse(body.expiresAt) - before).toBeGreaterThanOrEqual(60 * 60 * 1000 - 5);
    expect(res.headers.location).toBe(`/v1/tokens/${body.id}`);
    expect((await gw.store.getToken(body.id))?.status).toBe('issued');
    expect(await metricValue(gw.registry, 'tollgate_tokens_minted_total')).toBe(1);
  });

  it('is idempotent for a caller-chosen id and the same fingerprint; 409 for another fingerprint', async () => {
    const payload = { order: 42, items: ['a', 'b'] };
    const first = await post('/v1/tokens', {
      id: 'order-42-place',
      payload,
      conversationId: 'conv-order-42',
    });
    expect(first.statusCode).toBe(201);
    expect(first.json().fingerprint).toBe(fingerprint(payload));
    expect(first.json().conversationId).toBe('conv-order-42');

    // Same payload in another key order, then the same fingerprint given directly: the same token, 200.
    const again = await post('/v1/tokens', {
      id: 'order-42-place',
      payload: { items: ['a', 'b'], order: 42 },
    });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(first.json());
    const byFingerprint = await post('/v1/tokens', {
      id: 'order-42-place',
      fingerprint: fingerprint(payload),
    });
    expect(byFingerprint.statusCode).toBe(200);

    const other = await post('/v1/tokens', { id: 'order-42-place', payload: { order: 43 } });
    expectProblem(other, 409, 'token-exists');
    expect(other.json().tokenId).toBe('order-42-place');
    expect(await metricValue(gw.registry, 'tollgate_tokens_minted_total')).toBe(1);
  });

  it("records the caller's conversation and parent token (another system's) on the issued token", async () => {
    const res = await post('/v1/tokens', {
      id: 'partner-ship-1',
      payload: { order: 1 },
      conversationId: 'partner-conv-1',
      parentId: 'partner-order-1',
    });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ conversationId: 'partner-conv-1', parentId: 'partner-order-1' });
    expect(await gw.store.getToken('partner-ship-1')).toMatchObject({ parentId: 'partner-order-1' });
  });

  it('says so when the caller-chosen id was already consumed', async () => {
    const payload = { n: 1 };
    await post('/v1/tokens', { id: 'consumed-token-1', payload });
    await consume(gw.store, 'consumed-token-1', payload);
    const res = await post('/v1/tokens', { id: 'consumed-token-1', payload });
    expectProblem(res, 409, 'token-consumed');
    expect(res.json().detail).toMatch(/consumed/);
  });

  it('takes a destination and an explicit expiry', async () => {
    const expiresAt = new Date(Date.now() + 120_000).toISOString();
    const destination = { medium: 'http', method: 'POST', url: 'https://pay.example/v1/charge' };
    const res = await post('/v1/tokens', { destination, expiresAt });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ destination, expiresAt });
    const inMs = await post('/v1/tokens', {
      expiresInMs: 5000,
      destination: { medium: 'amqp', exchange: 'x', routingKey: 'y' },
    });
    expect(inMs.statusCode).toBe(201);
  });

  it.each([
    ['a malformed id', { id: 'bad id!' }],
    ['a too short id', { id: 'short' }],
    ['a non-hex fingerprint', { fingerprint: 'Z'.repeat(64) }],
    ['fingerprint and payload together', { fingerprint: 'a'.repeat(64), payload: 1 }],
    ['expiresInMs as a string (no coercion)', { expiresInMs: '5000' }],
    ['expiresInMs below a second', { expiresInMs: 10 }],
    [
      'expiresInMs and expiresAt together',
      { expiresInMs: 5000, expiresAt: new Date(Date.now() + 9e6).toISOString() },
    ],
    ['an expiry in the past', { expiresAt: '2001-01-01T00:00:00Z' }],
    ['a non-date expiry', { expiresAt: 'tomorrow' }],
    ['an unknown field', { id: 'abcdefgh', colour: 'red' }],
    ['an unknown destination medium', { destination: { medium: 'smtp', to: 'x' } }],
    ['a non-http destination url', { destination: { medium: 'http', method: 'POST', url: 'ftp://files/x' } }],
    ['a lower-case method', { destination: { medium: 'http', method: 'post', url: 'http://x/y' } }],
    ['a body that is not an object', [1, 2]],
    ['a number id', { id: 12345678 }],
    ['a malformed parentId', { parentId: 'no/slash' }],
    [
      'an issuer credential that is not a reference',
      {
        destination: {
          medium: 'http',
          method: 'POST',
          url: 'http://x/y',
          issuer: { url: 'http://x/t', credential: 'a b' },
        },
      },
    ],
  ])('refuses %s with a 400 validation problem', async (_what, body) => {
    expectProblem(await post('/v1/tokens', body), 400, 'validation');
  });

  it('refuses bad JSON, empty JSON bodies, other media types and huge bodies', async () => {
    const bad = await gw.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      payload: '{"id":',
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(bad, 400, 'invalid-payload');
    const empty = await gw.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(empty, 400, 'invalid-payload');
    const text = await gw.app.inject({
      method: 'POST',
      url: '/v1/tokens',
      payload: 'hi',
      headers: { 'content-type': 'text/plain' },
    });
    expectProblem(text, 415, 'unsupported-media-type');
    const huge = await post('/v1/tokens', { payload: 'x'.repeat(200 * 1024) });
    expectProblem(huge, 413, 'body-too-large');
  });
});

describe('GET /v1/tokens/:id', () => {
  it('shows status, times, conversation, parent, destination, attempts and consumer', async () => {
    const payload = { order: 7 };
    const root = (await post('/v1/tokens', { id: 'root-token-7', payload })).json();
    const child = pendingToken(
      {
        destination: { medium: 'amqp', exchange: 'shop', routingKey: 'payment.requested' },
        payload: { card: 'SECRET-CARD-7' },
      },
      { mintedBy: 'orders', conversationId: root.conversationId, parentId: root.id, now: Date.now() },
    );
    await consume(gw.store, root.id, payload, [child]);

    const consumed = await get(`/v1/tokens/${root.id}`);
    expect(consumed.statusCode).toBe(200);
    expect(consumed.json()).toMatchObject({ id: root.id, status: 'consumed', consumedBy: 'test-endpoint' });
    expect(Date.parse(consumed.json().consumedAt)).toBeGreaterThan(0);

    const shown = (await get(`/v1/tokens/${child.id}`)).json();
    expect(shown).toEqual({
      id: child.id,
      status: 'pending',
      conversationId: root.conversationId,
      parentId: root.id,
      mintedBy: 'orders',
      destination: child.destination,
      fingerprint: child.fingerprint,
      mintedAt: new Date(child.mintedAt).toISOString(),
      attempts: 0,
    });
    // Payloads never leave through the inspection API.
    expect(JSON.stringify(shown)).not.toContain('SECRET-CARD');
  });

  it('answers 404 for an unknown id and 400 for a malformed one', async () => {
    expectProblem(await get('/v1/tokens/unknown-token-id'), 404, 'token-not-found');
    expectProblem(await get('/v1/tokens/no'), 400, 'validation');
    expectProblem(await get('/v1/tokens/has%20space%20inside'), 400, 'validation');
    expectProblem(await get(`/v1/tokens/${'x'.repeat(129)}`), 400, 'validation');
    expectProblem(await get(`/v1/tokens/${'x'.repeat(300)}`), 414, 'uri-too-long');
    expectProblem(await get(`/v1/tokens/${'x'.repeat(128)}`), 404, 'token-not-found');
  });
});

describe('GET /v1/tokens (listing)', () => {
  it('pages through a status oldest first', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await post('/v1/tokens', { id: `list-token-${i}` })).json().id);
      await new Promise((r) => setTimeout(r, 2));
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const res = await get(`/v1/tokens?status=issued&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode).toBe(200);
      const page = res.json();
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((t: { id: string }) => t.id));
      cursor = page.cursor;
    } while (cursor);
    expect(seen).toEqual(ids);
    expect((await get('/v1/tokens?status=consumed')).json()).toEqual({ items: [] });
  });

  it('filters by age (ms or ISO instant) and by conversation and status together', async () => {
    const old = (await post('/v1/tokens', { conversationId: 'conv-filter-1' })).json();
    await new Promise((r) => setTimeout(r, 60));
    const young = (await post('/v1/tokens', { conversationId: 'conv-filter-1' })).json();
    const olderThan50 = (await get('/v1/tokens?status=issued&olderThan=50')).json();
    expect(olderThan50.items.map((t: { id: string }) => t.id)).toEqual([old.id]);
    const iso = encodeURIComponent(young.mintedAt);
    expect((await get(`/v1/tokens?status=issued&olderThan=${iso}`)).json().items).toHaveLength(1);
    await consume(gw.store, young.id, null);
    const both = (await get('/v1/tokens?conversation=conv-filter-1&status=consumed')).json();
    expect(both.items.map((t: { id: string }) => t.id)).toEqual([young.id]);
    expect((await get('/v1/tokens?conversation=conv-filter-1')).json().items).toHaveLength(2);
  });

  it.each([
    ['no status nor conversation', ''],
    ['an unknown status', '?status=lost'],
    ['limit 0', '?status=issued&limit=0'],
    ['limit above 1000', '?status=issued&limit=1001'],
    ['a non-numeric limit', '?status=issued&limit=ten'],
    ['a cursor this store never gave', '?status=issued&cursor=bm9wZQ'],
    ['a cursor with bad characters', '?status=issued&cursor=%24%24'],
    ['a malformed olderThan', '?status=issued&olderThan=yesterday'],
    ['an impossible ISO olderThan', '?status=issued&olderThan=2020-13-45T99:99:99Z'],
    ['a malformed conversation', '?conversation=a%20b'],
    ['dueBefore without status=scheduled', '?status=pending&dueBefore=1700000000000'],
    ['a malformed dueBefore', '?status=scheduled&dueBefore=tomorrow'],
    ['an unknown parameter', '?status=issued&sort=desc'],
  ])('refuses %s with 400', async (_what, query) => {
    expectProblem(await get(`/v1/tokens${query}`), 400, 'validation');
  });
});

describe('GET /v1/tokens (scheduled)', () => {
  it('shows dueAt and lists what is due soon, earliest first (dueBefore in ms or ISO)', async () => {
    const destination = { medium: 'amqp', exchange: 'payments', routingKey: 'timed-out' } as const;
    const base = Date.parse('2030-01-01T00:00:00.000Z');
    const tokens = [30, 10, 20].map((minutes) =>
      scheduledToken(
        { destination, payload: { minutes } },
        { mintedBy: 'payments', now: Date.now() },
        base + minutes * 60_000,
      ),
    );
    await gw.store.mint(tokens);
    const [in30, in10, in20] = tokens.map((t) => t.id);
    const view = (await get(`/v1/tokens/${in10}`)).json();
    expect(view).toMatchObject({ status: 'scheduled', dueAt: '2030-01-01T00:10:00.000Z' });
    const all = (await get('/v1/tokens?status=scheduled')).json();
    expect(all.items.map((t: { id: string }) => t.id)).toEqual([in10, in20, in30]);
    const soon = (await get(`/v1/tokens?status=scheduled&dueBefore=${base + 25 * 60_000}`)).json();
    expect(soon.items.map((t: { id: string }) => t.id)).toEqual([in10, in20]);
    const iso = encodeURIComponent('2030-01-01T00:15:00Z');
    expect((await get(`/v1/tokens?status=scheduled&dueBefore=${iso}`)).json().items).toHaveLength(1);
    const page = (await get('/v1/tokens?status=scheduled&limit=2')).json();
    const next = (await get(`/v1/tokens?status=scheduled&limit=2&cursor=${page.cursor}`)).json();
    expect(next.items.map((t: { id: string }) => t.id)).toEqual([in30]);
  });
});

describe('GET /v1/conversations/:id', () => {
  it('returns tokens as nodes and parent → child edges', async () => {
    const payload = { order: 1 };
    const root = (
      await post('/v1/tokens', { id: 'graph-root-1', payload, conversationId: 'conv-graph-1' })
    ).json();
    // Distinct mint instants: listings are ordered by mintedAt, then id.
    const context = { conversationId: 'conv-graph-1', now: Date.parse(root.mintedAt) + 1 };
    const pay = pendingToken(
      { destination: { medium: 'amqp', exchange: 'shop', routingKey: 'pay' }, payload: { p: 1 } },
      { ...context, mintedBy: 'orders', parentId: root.id },
    );
    await consume(gw.store, root.id, payload, [pay]);
    const ship = pendingToken(
      { destination: { medium: 'amqp', exchange: 'shop', routingKey: 'ship' }, payload: { s: 1 } },
      { ...context, mintedBy: 'payments', parentId: pay.id, now: context.now + 1 },
    );
    await consume(gw.store, pay.id, { p: 1 }, [ship]);

    const res = await get('/v1/conversations/conv-graph-1');
    expect(res.statusCode).toBe(200);
    const graph = res.json();
    expect(graph.id).toBe('conv-graph-1');
    expect(graph.truncated).toBe(false);
    expect(graph.nodes.map((n: { id: string; status: string }) => [n.id, n.status])).toEqual([
      [root.id, 'consumed'],
      [pay.id, 'consumed'],
      [ship.id, 'pending'],
    ]);
    expect(graph.edges).toEqual([
      { from: root.id, to: pay.id },
      { from: pay.id, to: ship.id },
    ]);
  });

  it('marks where a conversation enters from another system and where it leaves for one', async () => {
    // Another system issued this token here, naming its own token as the parent.
    const payload = { order: 2 };
    const entry = (
      await post('/v1/tokens', {
        id: 'graph-entry-1',
        payload,
        conversationId: 'conv-graph-2',
        parentId: 'billing-order-2',
      })
    ).json();
    const context = { conversationId: 'conv-graph-2', now: Date.parse(entry.mintedAt) + 1 };
    const issuer = { url: 'http://shipping.example:8080/v1/tokens', credential: 'shipping' };
    const ship = pendingToken(
      {
        destination: { medium: 'http', method: 'POST', url: 'http://shipping.example:8080/ship', issuer },
        payload: { s: 2 },
      },
      { ...context, mintedBy: 'orders', parentId: entry.id },
    );
    const audit = pendingToken(
      { destination: { medium: 'amqp', exchange: 'shop', routingKey: 'audit' }, payload: { a: 2 } },
      { ...context, mintedBy: 'orders', parentId: entry.id, now: context.now + 1 },
    );
    await consume(gw.store, entry.id, payload, [ship, audit]);

    const res = await get('/v1/conversations/conv-graph-2');
    expect(res.statusCode).toBe(200);
    const nodes = res.json().nodes as Array<Record<string, unknown>>;
    expect(nodes.map((n) => [n.id, n.entersFrom, n.leavesTo])).toEqual([
      [entry.id, 'billing-order-2', undefined],
      [ship.id, undefined, 'http://shipping.example:8080'],
      [audit.id, undefined, undefined],
    ]);
    expect(nodes[1]?.destination).toMatchObject({ issuer });
    expect(res.json().edges).toEqual([
      { from: 'billing-order-2', to: entry.id },
      { from: entry.id, to: ship.id },
      { from: entry.id, to: audit.id },
    ]);
  });

  it('answers 404 for an unknown conversation and 400 for a malformed id', async () => {
    expectProblem(await get('/v1/conversations/nobody-talks-here'), 404, 'conversation-not-found');
    expectProblem(await get('/v1/conversations/x'), 400, 'validation');
  });
});

describe('POST /v1/tokens/:id/redispatch', () => {
  it('hands a pending token to the relay to send now', async () => {
    const token = pendingToken(
      { destination: { medium: 'amqp', exchange: 'shop', routingKey: 'x' }, payload: 1 },
      { mintedBy: 'orders', now: Date.now() },
    );
    await gw.store.mint([token]);
    const res = await post(`/v1/tokens/${token.id}/redispatch`);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ id: token.id, status: 'pending', relayTriggered: true });
    expect(redispatched).toEqual([token.id]);
  });

  it('without a relay, releases the lease of a pending token for the relays of other processes', async () => {
    const alone = await testGateway({ relay: null });
    try {
      const token = pendingToken(
        { destination: { medium: 'amqp', exchange: 'shop', routingKey: 'x' }, payload: 1 },
        { mintedBy: 'orders', now: Date.now() - 60_000 },
      );
      await alone.store.mint([token]);
      const [claimed] = await alone.store.claimPending({
        mintedBefore: Date.now(),
        now: Date.now(),
        leaseMs: 600_000,
        limit: 10,
      });
      expect(claimed?.id).toBe(token.id);
      const res = await alone.app.inject({ method: 'POST', url: `/v1/tokens/${token.id}/redispatch` });
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({ id: token.id, status: 'pending', relayTriggered: false });
      // The lease is gone: a relay can claim it again at once.
      const again = await alone.store.claimPending({
        mintedBefore: Date.now(),
        now: Date.now(),
        leaseMs: 1000,
        limit: 10,
      });
      expect(again.map((t) => t.id)).toEqual([token.id]);
    } finally {
      await alone.close();
    }
  });

  it('refuses tokens that are not pending (409), unknown (404) and malformed (400)', async () => {
    const issued = (await post('/v1/tokens', {})).json();
    expectProblem(await post(`/v1/tokens/${issued.id}/redispatch`), 409, 'token-not-pending');
    expectProblem(await post('/v1/tokens/not-there-at-all/redispatch'), 404, 'token-not-found');
    expectProblem(await post('/v1/tokens/bad!/redispatch'), 400, 'validation');
    expect(redispatched).toEqual([]);
  });
});

describe('DELETE /v1/tokens/:id', () => {
  it('revokes a live token, then refuses a second revoke; refuses consumed tokens', async () => {
    const issued = (await post('/v1/tokens', {})).json();
    const res = await gw.app.inject({ method: 'DELETE', url: `/v1/tokens/${issued.id}` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: issued.id, status: 'revoked' });
    expectProblem(
      await gw.app.inject({ method: 'DELETE', url: `/v1/tokens/${issued.id}` }),
      409,
      'token-revoked',
    );

    const used = (await post('/v1/tokens', { payload: 5 })).json();
    await consume(gw.store, used.id, 5);
    const refused = await gw.app.inject({ method: 'DELETE', url: `/v1/tokens/${used.id}` });
    expectProblem(refused, 409, 'token-consumed');
    expect((await gw.store.getToken(used.id))?.status).toBe('consumed');
  });

  it('answers 404 for an unknown token and 400 for a malformed id', async () => {
    expectProblem(
      await gw.app.inject({ method: 'DELETE', url: '/v1/tokens/never-issued-1' }),
      404,
      'token-not-found',
    );
    expectProblem(await gw.app.inject({ method: 'DELETE', url: '/v1/tokens/%00%00' }), 400, 'validation');
  });
});

describe('problems and documents', () => {
  it('answers unknown routes with a not-found problem', async () => {
    expectProblem(await get('/v2/anything'), 404, 'not-found');
  });

  it.each([
    ['DELETE', '/v1/tokens', 'GET, HEAD, POST'],
    ['PUT', '/v1/tokens/some-token-id', 'DELETE, GET, HEAD'],
    ['GET', '/v1/tokens/some-token-id/redispatch', 'POST'],
    ['GET', '/v1/signals/orders', 'POST'],
    ['POST', '/metrics', 'GET, HEAD'],
    ['DELETE', '/v1/openapi.json?x=1', 'GET, HEAD'],
  ])('answers %s %s with 405 and Allow: %s', async (method, url, allow) => {
    const res = await gw.app.inject({ method: method as 'GET', url });
    expectProblem(res, 405, 'method-not-allowed');
    expect(res.headers.allow).toBe(allow);
  });

  it('keeps 404 for paths no route has, whatever the method', async () => {
    const res = await gw.app.inject({ method: 'DELETE', url: '/v1/tokens/a/b/c' });
    expectProblem(res, 404, 'not-found');
    expect(res.headers.allow).toBeUndefined();
  });

  it('serves an OpenAPI document generated from the route schemas', async () => {
    const res = await get('/v1/openapi.json');
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toBe('3.1.0');
    const operations = Object.entries(
      doc.paths as Record<string, Record<string, { operationId: string }>>,
    ).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => `${method} ${path} ${op.operationId}`),
    );
    expect(operations.sort()).toEqual(
      [
        'post /v1/tokens issueToken',
        'get /v1/tokens listTokens',
        'get /v1/tokens/{id} getToken',
        'delete /v1/tokens/{id} revokeToken',
        'post /v1/tokens/{id}/redispatch redispatchToken',
        'get /v1/conversations/{id} getConversation',
        'get /v1/processes/{name}/{id} getProcess',
        'post /v1/signals/{route} postSignal',
        'get /health/live live',
        'get /health/ready ready',
        'get /metrics metrics',
        'get /v1/overview getOverview',
        'get /problems/{kind} problemPage',
      ].sort(),
    );
    const issue = doc.paths['/v1/tokens'].post;
    expect(issue.requestBody.content['application/json'].schema.properties.fingerprint.pattern).toBe(
      '^[0-9a-f]{64}$',
    );
    expect(issue.responses['409'].content['application/problem+json'].schema.required).toContain('type');
    expect(issue.requestBody.content['application/json'].schema.properties.parentId.pattern).toBe(
      '^[A-Za-z0-9_-]{8,128}$',
    );
    const node =
      doc.paths['/v1/conversations/{id}'].get.responses['200'].content['application/json'].schema.properties
        .nodes.items;
    expect(Object.keys(node.properties)).toEqual(expect.arrayContaining(['entersFrom', 'leavesTo']));
    const list = doc.paths['/v1/tokens'].get;
    expect(list.parameters.map((p: { name: string }) => p.name)).toEqual([
      'status',
      'conversation',
      'olderThan',
      'dueBefore',
      'limit',
      'cursor',
    ]);
  });
});
