import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/core/dispatcher.js';
import type { TokenStore } from '../../src/core/store.js';
import {
  createHttpRelay,
  HttpDispatchError,
  HttpEdgeClient,
  HttpSignalSender,
  problemType,
} from '../../src/transports/http/index.js';
import { freshStore, STORE_KINDS } from '../support/stores.js';
import { buildTestApp } from './fixtures/app.js';
import { listen, stablePort } from './support.js';

const QUICK = { attempts: 5, baseDelayMs: 10, maxDelayMs: 50 };

describe.each(STORE_KINDS)('HTTP client on %s', (kind) => {
  let store: TokenStore;
  let app: FastifyInstance;
  let base: string;
  let client: HttpEdgeClient;

  beforeEach(async () => {
    store = await freshStore(kind);
    app = await buildTestApp({ store });
    base = await listen(app);
    client = new HttpEdgeClient({ store, sender: new HttpSignalSender({ retry: QUICK }) });
  });

  afterEach(async () => {
    client.close();
    await app.close();
    await store.close();
  });

  it('mints, then sends: processed once, then replayed for the same token', async () => {
    const delivery = await client.send({ method: 'POST', url: `${base}/add` }, { key: 'edge', amount: 4 });
    expect(delivery).toMatchObject({ outcome: 'processed', statusCode: 201, attempts: 1 });
    expect(JSON.parse(delivery.body)).toEqual({ key: 'edge', total: 4 });
    const token = await store.getToken(delivery.tokenId);
    expect(token).toMatchObject({ status: 'consumed', mintedBy: 'http-edge' });

    const tokenBeforeSend = {
      ...token!,
      payload: { key: 'edge', amount: 4 },
      destination: token!.destination!,
    };
    const again = await client.sender.deliver(tokenBeforeSend);
    expect(again.outcome).toBe('duplicate');
    expect(again.body).toBe(delivery.body);
    expect((await store.readState('edge'))?.value).toBe(4);
  });

  it('treats an unknown token (consumed and purged, or minted elsewhere) as delivered and marks it', async () => {
    const otherStore = await freshStore(kind);
    const token = await new HttpEdgeClient({ store: otherStore }).mint(
      { method: 'POST', url: `${base}/add` },
      { key: 'elsewhere', amount: 1 },
    );
    try {
      const dispatcher = new Dispatcher({
        store: otherStore,
        senders: [new HttpSignalSender({ retry: QUICK })],
      });
      const report = await dispatcher.dispatch([token], 'edge');
      expect(report).toEqual({ dispatched: [token.id], failed: [] });
      expect((await otherStore.getToken(token.id))?.status).toBe('dispatched');
    } finally {
      await otherStore.close();
    }
  });

  it('rejects a refused signal with a typed error carrying status and problem type; the token stays pending', async () => {
    const token = await client.mint({ method: 'POST', url: `${base}/add` }, { key: 'refused', amount: 1 });
    const tampered = { ...token, payload: { key: 'refused', amount: 999 } };
    const error = await client.deliver(tampered).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpDispatchError);
    expect(error).toMatchObject({
      code: 'TOLLGATE_ERR_DISPATCH_FAILED',
      status: 422,
      problemType: problemType('fingerprint-mismatch'),
      retriable: false,
    });
    expect((await store.getToken(token.id))?.status).toBe('pending');

    await store.revoke(token.id, Date.now());
    const revoked = await client.deliver(token).catch((e: unknown) => e);
    expect(revoked).toMatchObject({
      status: 409,
      problemType: problemType('token-revoked'),
      retriable: false,
    });
  });

  it('re-sends tokens left pending through the HTTP relay', async () => {
    const token = await client.mint({ method: 'POST', url: `${base}/add` }, { key: 'relayed', amount: 2 });
    const { relay } = createHttpRelay({ store, delayMs: 0, sender: new HttpSignalSender({ retry: QUICK }) });
    const pass = await relay.runOnce();
    expect(pass).toMatchObject({ claimed: 1, dispatched: 1, failed: 0 });
    expect((await store.getToken(token.id))?.status).toBe('consumed');
    expect((await store.readState('relayed'))?.value).toBe(2);
    expect((await relay.runOnce()).claimed).toBe(0);
    await relay.stop();
  });
});

describe('HTTP sender retries', () => {
  let stub: FastifyInstance | undefined;
  afterEach(async () => {
    await stub?.close();
    stub = undefined;
  });

  /** A peer that answers the n-th request with `answers[n]` (the last one repeats). */
  async function scriptedPeer(
    answers: Array<(reply: import('fastify').FastifyReply) => unknown>,
    port = 0,
  ): Promise<{ url: string; seen: Array<Record<string, string | string[] | undefined>> }> {
    const seen: Array<Record<string, string | string[] | undefined>> = [];
    stub = Fastify();
    stub.post('/signal', async (request, reply) => {
      seen.push(request.headers);
      const answer = answers[Math.min(seen.length - 1, answers.length - 1)]!;
      return answer(reply);
    });
    const address = await stub.listen({ host: '127.0.0.1', port });
    return { url: `${address}/signal`, seen };
  }

  const processed = (reply: import('fastify').FastifyReply) =>
    reply.header('exactly-once-status', 'processed').send({ ok: true });
  const unavailable = (seconds: string) => (reply: import('fastify').FastifyReply) =>
    reply
      .code(503)
      .header('retry-after', seconds)
      .type('application/problem+json')
      .send(JSON.stringify({ type: problemType('store-unavailable'), status: 503 }));

  function tokenFor(url: string) {
    return {
      id: 'token-for-retry-tests',
      conversationId: 'conversation-1',
      mintedBy: 'test',
      status: 'pending' as const,
      mintedAt: Date.now(),
      attempts: 0,
      destination: { medium: 'http' as const, method: 'POST', url },
      payload: { n: 1 },
      headers: {
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        'content-type': 'text/evil',
      },
    };
  }

  it('retries 503 answers with the same token, honouring Retry-After', async () => {
    const peer = await scriptedPeer([unavailable('1'), processed]);
    const started = Date.now();
    const delivery = await new HttpSignalSender({ retry: QUICK }).deliver(tokenFor(peer.url));
    expect(delivery).toMatchObject({ outcome: 'processed', attempts: 2 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(peer.seen.map((h) => h['exactly-once-token'])).toEqual([
      'token-for-retry-tests',
      'token-for-retry-tests',
    ]);
    expect(peer.seen[0]).toMatchObject({
      'exactly-once-conversation': 'conversation-1',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      'content-type': 'application/json',
    });
  });

  it('caps a long Retry-After and gives up after its attempts with a retriable error', async () => {
    const peer = await scriptedPeer([unavailable('3600')]);
    const started = Date.now();
    const error = await new HttpSignalSender({
      retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
      maxRetryAfterMs: 100,
    })
      .deliver(tokenFor(peer.url))
      .catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(peer.seen).toHaveLength(3);
    expect(error).toBeInstanceOf(HttpDispatchError);
    expect(error).toMatchObject({
      status: 503,
      retriable: true,
      problemType: problemType('store-unavailable'),
    });
  });

  it('retries network errors until the peer comes up', async () => {
    const port = await stablePort();
    const sending = new HttpSignalSender({
      retry: { attempts: 8, baseDelayMs: 100, maxDelayMs: 400 },
    }).deliver(tokenFor(`http://127.0.0.1:${port}/signal`));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await scriptedPeer([processed], port);
    const delivery = await sending;
    expect(delivery.outcome).toBe('processed');
    expect(delivery.attempts).toBeGreaterThan(1);
  });

  it('times an attempt out and retries it', async () => {
    const peer = await scriptedPeer([
      async (reply) => {
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        return reply.code(500).send();
      },
      processed,
    ]);
    const started = Date.now();
    const delivery = await new HttpSignalSender({ retry: QUICK, timeoutMs: 200 }).deliver(tokenFor(peer.url));
    expect(delivery).toMatchObject({ outcome: 'processed', attempts: 2 });
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('close() cuts a request in flight short: it rejects at once as retriable, the token left to the relay', async () => {
    const peer = await scriptedPeer([
      async (reply) => {
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        return reply.code(200).send();
      },
    ]);
    const sender = new HttpSignalSender({ retry: QUICK, timeoutMs: 10_000 });
    const started = Date.now();
    const sending = sender.deliver(tokenFor(peer.url)).catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 200));
    sender.close();
    const error = await sending;
    expect(error).toBeInstanceOf(HttpDispatchError);
    expect(error).toMatchObject({ retriable: true });
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('refuses to send a token whose headers exceed the limit, without a request', async () => {
    const peer = await scriptedPeer([processed]);
    const token = { ...tokenFor(peer.url), headers: { 'x-huge': 'x'.repeat(10_000) } };
    const error = await new HttpSignalSender({ retry: QUICK }).deliver(token).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HttpDispatchError);
    expect(error).toMatchObject({ retriable: false });
    expect(peer.seen).toHaveLength(0);
  });

  it('treats 400 as permanent without retrying', async () => {
    const peer = await scriptedPeer([
      (reply) =>
        reply
          .code(400)
          .type('application/problem+json')
          .send(JSON.stringify({ type: problemType('token-malformed'), status: 400 })),
    ]);
    const error = await new HttpSignalSender({ retry: QUICK })
      .deliver(tokenFor(peer.url))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      status: 400,
      problemType: problemType('token-malformed'),
      retriable: false,
    });
    expect(peer.seen).toHaveLength(1);
  });
});
