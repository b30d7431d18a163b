import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fingerprint } from '../../src/core/fingerprint.js';
import { newConversationId, newTokenId } from '../../src/core/ids.js';
import { DEFAULT_PROBLEM_BASE } from '../../src/transports/http/index.js';
import { metricValue, RecordingPublisher, type TestGateway, testGateway } from './support.js';

const ROUTE = { route: 'orders', exchange: 'shop', routingKey: 'order.placed' };
let gw: TestGateway;
let publisher: RecordingPublisher;

beforeEach(async () => {
  publisher = new RecordingPublisher();
  gw = await testGateway({ publisher, bridges: { ingress: [ROUTE], egress: [] } });
});
afterEach(async () => {
  await gw.close();
});

async function issue(body: Record<string, unknown> = {}): Promise<{ id: string; conversationId: string }> {
  const res = await gw.app.inject({ method: 'POST', url: '/v1/tokens', payload: body });
  expect(res.statusCode).toBe(201);
  return res.json();
}

function signal(
  token: string | undefined,
  payload: unknown,
  route = 'orders',
  extra: Record<string, string> = {},
) {
  return gw.app.inject({
    method: 'POST',
    url: `/v1/signals/${route}`,
    headers: {
      'content-type': 'application/json',
      ...(token === undefined ? {} : { 'exactly-once-token': token }),
      ...extra,
    },
    payload: JSON.stringify(payload),
  });
}

function expectProblem(res: { statusCode: number; json(): unknown }, status: number, kind: string) {
  expect(res.statusCode).toBe(status);
  expect(res.json()).toMatchObject({ type: DEFAULT_PROBLEM_BASE + kind, status });
}

describe('POST /v1/signals/:route (ingress checks)', () => {
  it('publishes a live token signal to the route exchange with the token, without consuming it', async () => {
    const payload = { order: 1, total: 990 };
    const token = await issue({ payload });
    const res = await signal(token.id, payload);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({
      token: token.id,
      conversationId: token.conversationId,
      route: 'orders',
      exchange: 'shop',
      routingKey: 'order.placed',
    });
    expect(publisher.sent).toHaveLength(1);
    expect(publisher.sent[0]).toMatchObject({
      id: token.id,
      conversationId: token.conversationId,
      destination: { medium: 'amqp', exchange: 'shop', routingKey: 'order.placed' },
      payload,
    });
    expect((await gw.store.getToken(token.id))?.status).toBe('issued');
    // A second post is published again: the consumer, not the gateway, drops the duplicate.
    expect((await signal(token.id, payload)).statusCode).toBe(202);
    expect(publisher.sent).toHaveLength(2);
  });

  it('accepts any payload for a token issued without a fingerprint', async () => {
    const token = await issue();
    expect((await signal(token.id, ['anything', 1])).statusCode).toBe(202);
  });

  it('refuses a missing or malformed token header with 400', async () => {
    expectProblem(await signal(undefined, {}), 400, 'token-missing');
    expectProblem(await signal('bad token!', {}), 400, 'token-malformed');
    expectProblem(await signal('short', {}), 400, 'token-malformed');
    expect(publisher.sent).toHaveLength(0);
  });

  it('answers 409 for unknown, consumed, revoked and expired tokens and counts them as dropped', async () => {
    expectProblem(await signal('never-issued-token', {}), 409, 'token-unknown');

    const consumed = await issue({ payload: 1 });
    await gw.store.commit({
      consume: { tokenId: consumed.id, fingerprint: fingerprint(1), consumedBy: 'x' },
      writes: [],
      mints: [],
      now: Date.now(),
    });
    expectProblem(await signal(consumed.id, 1), 409, 'token-consumed');

    const revoked = await issue();
    await gw.store.revoke(revoked.id, Date.now());
    expectProblem(await signal(revoked.id, 1), 409, 'token-revoked');

    const expiring = await issue({ expiresInMs: 1000 });
    await new Promise((r) => setTimeout(r, 1050));
    expectProblem(await signal(expiring.id, 1), 409, 'token-expired');

    expect(publisher.sent).toHaveLength(0);
    for (const reason of ['unknown', 'consumed', 'revoked', 'expired']) {
      expect(await metricValue(gw.registry, 'tollgate_duplicates_dropped_total', { reason })).toBe(1);
    }
  });

  it('refuses a scheduled token before it is due, as the fastify plugin does: nothing is published', async () => {
    const now = Date.now();
    const scheduled = {
      id: newTokenId(),
      conversationId: newConversationId(),
      mintedBy: 'test',
      status: 'scheduled' as const,
      mintedAt: now,
      dueAt: now + 3_600_000,
      attempts: 0,
      destination: { medium: 'amqp' as const, exchange: 'shop', routingKey: 'order.placed' },
      payload: 1,
    };
    await gw.store.mint([scheduled]);
    const res = await signal(scheduled.id, 1);
    expectProblem(res, 409, 'invalid-transition');
    expect(res.json()).toMatchObject({ code: 'TOLLGATE_ERR_INVALID_TRANSITION', tokenId: scheduled.id });
    expect(publisher.sent).toHaveLength(0);
    expect((await gw.store.getToken(scheduled.id))?.status).toBe('scheduled');
  });

  it('answers 422 when the body does not match the token fingerprint', async () => {
    const token = await issue({ payload: { order: 1 } });
    const res = await signal(token.id, { order: 2 });
    expectProblem(res, 422, 'fingerprint-mismatch');
    expect(publisher.sent).toHaveLength(0);
    expect(await metricValue(gw.registry, 'tollgate_fingerprint_mismatches_total')).toBe(1);
  });

  it('answers 404 for an unconfigured route and 400 for a malformed one', async () => {
    const token = await issue();
    expectProblem(await signal(token.id, {}, 'payments'), 404, 'route-not-found');
    expectProblem(await signal(token.id, {}, 'bad%20route'), 400, 'validation');
  });

  it('refuses bodies that are not JSON, empty or too large', async () => {
    const token = await issue();
    const text = await gw.app.inject({
      method: 'POST',
      url: '/v1/signals/orders',
      headers: { 'content-type': 'text/plain', 'exactly-once-token': token.id },
      payload: 'hello',
    });
    expectProblem(text, 415, 'unsupported-media-type');
    const none = await gw.app.inject({
      method: 'POST',
      url: '/v1/signals/orders',
      headers: { 'exactly-once-token': token.id },
    });
    expectProblem(none, 400, 'validation');
    const bad = await gw.app.inject({
      method: 'POST',
      url: '/v1/signals/orders',
      headers: { 'content-type': 'application/json', 'exactly-once-token': token.id },
      payload: '{"a":',
    });
    expectProblem(bad, 400, 'invalid-payload');
    expectProblem(await signal(token.id, { blob: 'x'.repeat(70 * 1024) }), 413, 'body-too-large');
    expect(publisher.sent).toHaveLength(0);
  });

  it('answers 503 with Retry-After when the broker does not confirm; the token stays usable', async () => {
    const token = await issue({ payload: 5 });
    publisher.fail = true;
    const res = await signal(token.id, 5);
    expectProblem(res, 503, 'broker-unavailable');
    expect(res.headers['retry-after']).toBe('1');
    publisher.fail = false;
    expect((await signal(token.id, 5)).statusCode).toBe(202);
  });

  it('answers 503 when the gateway runs without a broker', async () => {
    const noBroker = await testGateway({ publisher: null, bridges: { ingress: [ROUTE], egress: [] } });
    try {
      const token = (await noBroker.app.inject({ method: 'POST', url: '/v1/tokens', payload: {} })).json();
      const res = await noBroker.app.inject({
        method: 'POST',
        url: '/v1/signals/orders',
        headers: { 'exactly-once-token': token.id },
        payload: {},
      });
      expectProblem(res, 503, 'broker-unavailable');
    } finally {
      await noBroker.close();
    }
  });

  it('logs signal lines with token, conversation and endpoint, and never the payload', async () => {
    const payload = { card: 'SECRET-4111-1111' };
    const token = await issue({ payload });
    await signal(token.id, payload, 'orders', { authorization: 'Bearer not-a-real-key-but-secret' });
    const published = gw.logs.lines.find((l) => l.msg === 'signal published');
    expect(published).toMatchObject({
      token: token.id,
      conversation: token.conversationId,
      endpoint: 'ingress:orders',
    });
    expect(gw.logs.text).not.toContain('SECRET-4111');
    expect(gw.logs.text).not.toContain('not-a-real-key');
    await signal(token.id, { card: 'other' });
    const refused = gw.logs.lines.find((l) => String(l.msg).includes('fingerprint mismatch'));
    expect(refused).toMatchObject({
      token: token.id,
      conversation: token.conversationId,
      endpoint: 'ingress:orders',
    });
  });
});

describe('POST /v1/signals/:route (destination binding)', () => {
  const REFUNDS = { route: 'refunds', exchange: 'shop', routingKey: 'refund.requested' };
  beforeEach(async () => {
    await gw.close();
    publisher = new RecordingPublisher();
    gw = await testGateway({ publisher, bridges: { ingress: [ROUTE, REFUNDS], egress: [] } });
  });

  it.each([
    ['the route exchange and routing key', { medium: 'amqp', exchange: 'shop', routingKey: 'order.placed' }],
    ['a POST to the route', { medium: 'http', method: 'POST', url: 'https://gw.example/v1/signals/orders' }],
    [
      'a POST behind a path prefix',
      { medium: 'http', method: 'POST', url: 'https://x.example/tg/v1/signals/orders' },
    ],
  ])('publishes a token minted for %s', async (_name, destination) => {
    const token = await issue({ destination });
    expect((await signal(token.id, { n: 1 })).statusCode).toBe(202);
    expect(publisher.sent).toHaveLength(1);
  });

  it.each([
    ['another routing key', { medium: 'amqp', exchange: 'shop', routingKey: 'refund.requested' }],
    ['another exchange', { medium: 'amqp', exchange: 'billing', routingKey: 'order.placed' }],
    ['another route', { medium: 'http', method: 'POST', url: 'https://gw.example/v1/signals/refunds' }],
    ['another method', { medium: 'http', method: 'PUT', url: 'https://gw.example/v1/signals/orders' }],
    ['another service', { medium: 'http', method: 'POST', url: 'https://pay.example/v1/charge' }],
  ])(
    'refuses with 422 a token minted for %s, publishes nothing and leaves it usable',
    async (_name, destination) => {
      const token = await issue({ destination });
      const res = await signal(token.id, { n: 1 });
      expectProblem(res, 422, 'destination-mismatch');
      expect(res.json()).toMatchObject({ tokenId: token.id });
      expect(publisher.sent).toHaveLength(0);
      expect((await gw.store.getToken(token.id))?.status).toBe('issued');
    },
  );
});
