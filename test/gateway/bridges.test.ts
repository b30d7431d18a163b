import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type Channel, type ChannelModel, connect, type MessageProperties } from 'amqplib';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { newTokenId } from '../../src/core/ids.js';
import { fanOut } from '../../src/core/observer.js';
import type { TokenStore } from '../../src/core/store.js';
import { buildGateway } from '../../src/gateway/app.js';
import { EgressBridge } from '../../src/gateway/bridges/egress.js';
import type { EgressRoute } from '../../src/gateway/config/index.js';
import { createLogger } from '../../src/gateway/logging.js';
import { MetricsObserver } from '../../src/gateway/metrics.js';
import {
  AmqpHeaders,
  type AmqpTollgate,
  amqpDestination,
  createAmqpTollgate,
  deadLetterNames,
  declareConsumerQueue,
} from '../../src/transports/amqp/index.js';
import { AMQP_URL } from '../support/rabbitmq.js';
import { LogCapture, metricValue, sqliteStore } from './support.js';

const run = promisify(execFile);

function unique(prefix: string): string {
  return `tg-gw.${prefix}.${newTokenId()
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, 10)}`;
}

async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let model: ChannelModel;
let probe: Channel;
const queues: string[] = [];
const exchanges: string[] = [];

beforeAll(async () => {
  model = await connect(AMQP_URL);
  probe = await model.createChannel();
});
afterAll(async () => {
  for (const queue of queues) await probe.deleteQueue(queue).catch(() => undefined);
  for (const exchange of exchanges) await probe.deleteExchange(exchange).catch(() => undefined);
  await model.close();
});

function trackQueue(queue: string): string {
  queues.push(queue, deadLetterNames(queue).queue);
  exchanges.push(deadLetterNames(queue).exchange);
  return queue;
}

describe('end to end: API mint → curl ingress twice → Tollgate AMQP consumer applies once', () => {
  let store: TokenStore;
  let amqp: AmqpTollgate;
  let gateway: FastifyInstance;
  let registry: Registry;
  let url: string;
  const exchange = unique('shop');
  const ordersQueue = trackQueue(unique('orders'));
  const paymentsQueue = trackQueue(unique('payments'));

  beforeAll(async () => {
    exchanges.push(exchange);
    store = sqliteStore();
    registry = new Registry();
    const metrics = new MetricsObserver(registry, store);
    const logger = createLogger('warn', new LogCapture());
    amqp = await createAmqpTollgate({ url: AMQP_URL, store, logger, observers: [metrics], relay: false });
    // The queues exist before the first signal, as in any deployment (otherwise the publish is unroutable).
    const setup = await model.createChannel();
    await declareConsumerQueue(setup, ordersQueue, { bindings: [{ exchange, routingKey: 'order.placed' }] });
    await declareConsumerQueue(setup, paymentsQueue, {
      bindings: [{ exchange, routingKey: 'payment.requested' }],
    });
    await setup.close();
    gateway = buildGateway({
      store,
      publisher: amqp.publisher,
      registry,
      logger,
      metrics,
      config: {
        apiKeys: { read: [], mint: [], admin: [] },
        bridges: { ingress: [{ route: 'orders', exchange, routingKey: 'order.placed' }], egress: [] },
        bodyLimitBytes: 64 * 1024,
        defaultTokenTtlMs: 600_000,
      },
    });
    url = await gateway.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await gateway.close();
    await amqp.close();
    await store.close();
  });

  it('applies the order exactly once and shows it consumed in the API and the graph', async () => {
    const order = { orderId: 'o-1001', amount: 4200 };
    const minted = await fetch(`${url}/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ payload: order }),
    });
    expect(minted.status).toBe(201);
    const token = (await minted.json()) as { id: string; conversationId: string };

    // The outside caller posts twice (a retry after a lost answer, say) with curl.
    const curl = () =>
      run('curl', [
        '-s',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        '-X',
        'POST',
        `${url}/v1/signals/orders`,
        '-H',
        'content-type: application/json',
        '-H',
        `Exactly-Once-Token: ${token.id}`,
        '--data',
        JSON.stringify(order),
      ]);
    expect((await curl()).stdout).toBe('202');
    expect((await curl()).stdout).toBe('202');

    // Both copies are in the queue; the consumer starts now and must apply exactly one.
    const consumer = await amqp.consume<typeof order>(
      ordersQueue,
      async (ctx) => {
        const count = (await ctx.get<number>(`orders/${ctx.payload.orderId}`)) ?? 0;
        ctx.put(`orders/${ctx.payload.orderId}`, count + 1);
        ctx.emit(amqpDestination(exchange, 'payment.requested'), {
          orderId: ctx.payload.orderId,
          amount: ctx.payload.amount,
        });
        return 'ok';
      },
      { endpoint: 'orders', declare: false },
    );
    await waitFor('both copies handled', () => consumer.stats.processed + consumer.stats.dropped === 2);
    await consumer.stop();
    expect(consumer.stats).toMatchObject({ processed: 1, dropped: 1 });
    // The handler may run for both copies (they race the cheap check); only one commit wins.
    expect((await store.readState('orders/o-1001'))?.value).toBe(1);

    const shown = (await (await fetch(`${url}/v1/tokens/${token.id}`)).json()) as Record<string, unknown>;
    expect(shown).toMatchObject({ id: token.id, status: 'consumed', consumedBy: 'orders' });

    const graph = (await (await fetch(`${url}/v1/conversations/${token.conversationId}`)).json()) as {
      nodes: Array<{ id: string; status: string; parentId?: string; mintedBy: string }>;
      edges: Array<{ from: string; to: string }>;
    };
    expect(graph.nodes).toHaveLength(2);
    const [root, payment] = graph.nodes;
    expect(root).toMatchObject({ id: token.id, status: 'consumed', mintedBy: 'gateway' });
    expect(payment).toMatchObject({ parentId: token.id, status: 'dispatched', mintedBy: 'orders' });
    expect(graph.edges).toEqual([{ from: token.id, to: payment?.id }]);
    expect((await probe.checkQueue(paymentsQueue)).messageCount).toBe(1);

    // Metrics moved: gateway issue + emitted payment, one consumed, one duplicate dropped, two ingress hops.
    expect(await metricValue(registry, 'tollgate_tokens_minted_total')).toBe(2);
    expect(await metricValue(registry, 'tollgate_tokens_consumed_total', { endpoint: 'orders' })).toBe(1);
    expect(await metricValue(registry, 'tollgate_duplicates_dropped_total', { reason: 'consumed' })).toBe(1);
    expect(await registry.metrics()).toContain(
      'tollgate_hop_duration_seconds_count{endpoint="ingress:orders"} 2',
    );
    // Only the payment token is still in flight (dispatched, waiting for its consumer).
    expect(await metricValue(registry, 'tollgate_tokens_in_flight')).toBe(1);

    // A third post after consumption is refused at the gateway and never reaches the broker.
    const late = await curlStatus(url, token.id, order);
    expect(late).toBe('409');
    expect((await probe.checkQueue(ordersQueue)).messageCount).toBe(0);
  });

  it('puts the token and conversation in the message headers and answers 202 only once confirmed', async () => {
    const payload = { orderId: 'o-2', amount: 1 };
    const token = (await (
      await fetch(`${url}/v1/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ payload }),
      })
    ).json()) as { id: string; conversationId: string };
    expect(await curlStatus(url, token.id, payload)).toBe('202');
    // Confirmed before the answer: the message is in the queue by now.
    const message = await probe.get(ordersQueue, { noAck: true });
    expect(message).not.toBe(false);
    if (message === false) return;
    expect(message.properties.headers?.[AmqpHeaders.token]).toBe(token.id);
    expect(message.properties.headers?.[AmqpHeaders.conversation]).toBe(token.conversationId);
    expect(JSON.parse(message.content.toString())).toEqual(payload);
  });

  it('answers 503 when the route is unroutable (no queue bound): nothing is silently lost', async () => {
    const lonely = unique('lonely');
    exchanges.push(lonely);
    await probe.assertExchange(lonely, 'topic', { durable: true });
    const other = buildGateway({
      store,
      publisher: amqp.publisher,
      registry: new Registry(),
      logger: createLogger('silent'),
      config: {
        apiKeys: { read: [], mint: [], admin: [] },
        bridges: { ingress: [{ route: 'lonely', exchange: lonely, routingKey: 'nobody' }], egress: [] },
        bodyLimitBytes: 1024 * 1024,
        defaultTokenTtlMs: 600_000,
      },
    });
    try {
      const token = (await other.inject({ method: 'POST', url: '/v1/tokens', payload: {} })).json();
      const res = await other.inject({
        method: 'POST',
        url: '/v1/signals/lonely',
        headers: { 'exactly-once-token': token.id },
        payload: { a: 1 },
      });
      expect(res.statusCode).toBe(503);
      expect(res.json().type).toBe('/problems/broker-unavailable');
      expect(res.headers['retry-after']).toBeDefined();
    } finally {
      await other.close();
    }
  });
});

async function curlStatus(url: string, token: string, body: unknown): Promise<string> {
  const { stdout } = await run('curl', [
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-X',
    'POST',
    `${url}/v1/signals/orders`,
    '-H',
    'content-type: application/json',
    '-H',
    `Exactly-Once-Token: ${token}`,
    '--data',
    JSON.stringify(body),
  ]);
  return stdout;
}

describe('AMQP → HTTP egress', () => {
  let amqp: AmqpTollgate;
  let store: TokenStore;
  let peer: FastifyInstance;
  let peerUrl: string;
  const received: Array<{ token: string | undefined; conversation: string | undefined; body: unknown }> = [];
  /** What the peer answers next, per token id (default 200). */
  const script = new Map<string, Array<{ status: number; problem?: string }>>();

  beforeAll(async () => {
    store = sqliteStore();
    amqp = await createAmqpTollgate({ url: AMQP_URL, store, relay: false });
    peer = Fastify();
    peer.post('/pay', async (request, reply) => {
      const token = request.headers['exactly-once-token'] as string | undefined;
      received.push({
        token,
        conversation: request.headers['exactly-once-conversation'] as string | undefined,
        body: request.body,
      });
      const next = token ? script.get(token)?.shift() : undefined;
      if (!next) return reply.code(200).send({ ok: true });
      if (next.problem) {
        return reply
          .code(next.status)
          .type('application/problem+json')
          .send({
            type: `https://docs.example.com/tollgate/problems/${next.problem}`,
            title: next.problem,
            status: next.status,
          });
      }
      return reply.code(next.status).send({});
    });
    peerUrl = await peer.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await peer.close();
    await amqp.close();
    await store.close();
  });

  async function startBridge(queue: string) {
    const registry = new Registry();
    const metrics = new MetricsObserver(registry, store);
    const route: EgressRoute = {
      queue,
      url: `${peerUrl}/pay`,
      method: 'POST',
      bindings: [],
      attempts: 3,
      timeoutMs: 2_000,
    };
    const bridge = await EgressBridge.start(
      {
        connection: amqp.connection,
        logger: createLogger('silent'),
        observer: fanOut([metrics]),
        prefetch: 4,
      },
      route,
    );
    return { bridge, registry };
  }

  function send(queue: string, body: unknown, headers: Record<string, string>) {
    probe.sendToQueue(queue, Buffer.from(JSON.stringify(body)), { persistent: true, headers });
  }

  it('delivers with the token header, retries 5xx with backoff, treats "already consumed" as delivered', async () => {
    const queue = trackQueue(unique('egress-ok'));
    const { bridge, registry } = await startBridge(queue);
    try {
      const issued = (await store.issue({
        id: newTokenId(),
        conversationId: 'conv-egress-1',
        mintedBy: 'test',
        status: 'issued',
        mintedAt: Date.now(),
        attempts: 0,
      })) as { created: true; token: { id: string } };
      const flaky = newTokenId();
      const consumed = newTokenId();
      script.set(flaky, [{ status: 503 }, { status: 500 }]);
      script.set(consumed, [{ status: 409, problem: 'token-consumed' }]);
      send(
        queue,
        { pay: 1 },
        { [AmqpHeaders.token]: issued.token.id, [AmqpHeaders.conversation]: 'conv-egress-1' },
      );
      send(queue, { pay: 2 }, { [AmqpHeaders.token]: flaky });
      send(queue, { pay: 3 }, { [AmqpHeaders.token]: consumed });
      await waitFor('three deliveries', () => bridge.stats.delivered === 3);
      expect(bridge.stats).toEqual({ delivered: 3, deadLettered: 0, requeued: 0 });
      const first = received.find((r) => r.token === issued.token.id);
      expect(first).toEqual({ token: issued.token.id, conversation: 'conv-egress-1', body: { pay: 1 } });
      expect(received.filter((r) => r.token === flaky)).toHaveLength(3);
      // The bridge never consumes: the token is untouched.
      expect((await store.getToken(issued.token.id))?.status).toBe('issued');
      expect(await registry.metrics()).toContain(
        `tollgate_hop_duration_seconds_count{endpoint="egress:${queue}"} 3`,
      );
      expect((await probe.checkQueue(queue)).messageCount).toBe(0);
    } finally {
      await bridge.stop();
    }
  });

  it('dead-letters permanent refusals and messages without a token, with the reason', async () => {
    const queue = trackQueue(unique('egress-dl'));
    const { bridge, registry } = await startBridge(queue);
    try {
      const refused = newTokenId();
      script.set(refused, [{ status: 422, problem: 'fingerprint-mismatch' }]);
      const before = received.length;
      send(queue, { pay: 4 }, { [AmqpHeaders.token]: refused });
      send(queue, { pay: 5 }, {});
      await waitFor('two dead letters', () => bridge.stats.deadLettered === 2);
      // The token-less message never reached the peer; the refused one went once (no retry of a 4xx).
      expect(received.length - before).toBe(1);
      const dead = deadLetterNames(queue).queue;
      await waitFor('dead letters parked', async () => (await probe.checkQueue(dead)).messageCount === 2);
      const reasons: Array<unknown> = [];
      for (let i = 0; i < 2; i++) {
        const message = await probe.get(dead, { noAck: true });
        if (message !== false) reasons.push(message.properties.headers?.[AmqpHeaders.errorCode]);
      }
      expect(reasons.sort()).toEqual([ErrorCodes.DISPATCH_FAILED, ErrorCodes.TOKEN_HEADER_MISSING].sort());
      expect(
        await metricValue(registry, 'tollgate_dead_lettered_total', { reason: ErrorCodes.DISPATCH_FAILED }),
      ).toBe(1);
      expect(
        await metricValue(registry, 'tollgate_dead_lettered_total', {
          reason: ErrorCodes.TOKEN_HEADER_MISSING,
        }),
      ).toBe(1);
      expect((await probe.checkQueue(queue)).messageCount).toBe(0);
    } finally {
      await bridge.stop();
    }
  });

  it("keeps the message's id, content type and the attempts made on its dead letters", async () => {
    const queue = trackQueue(unique('egress-dl-props'));
    const { bridge } = await startBridge(queue);
    try {
      const refused = newTokenId();
      script.set(refused, [{ status: 422, problem: 'fingerprint-mismatch' }]);
      const properties = { persistent: true, contentType: 'application/json', correlationId: 'conv-props' };
      probe.sendToQueue(queue, Buffer.from(JSON.stringify({ pay: 9 })), {
        ...properties,
        messageId: 'msg-refused',
        headers: { [AmqpHeaders.token]: refused },
      });
      probe.sendToQueue(queue, Buffer.from(JSON.stringify({ pay: 10 })), {
        ...properties,
        messageId: 'msg-tokenless',
        headers: {},
      });
      await waitFor('two dead letters', () => bridge.stats.deadLettered === 2);
      const dead = deadLetterNames(queue).queue;
      await waitFor('dead letters parked', async () => (await probe.checkQueue(dead)).messageCount === 2);
      const parked = new Map<unknown, MessageProperties>();
      for (let i = 0; i < 2; i++) {
        const message = await probe.get(dead, { noAck: true });
        if (message !== false) parked.set(message.properties.messageId, message.properties);
      }
      // Refused by the peer on its first try (a 4xx is not retried): one attempt.
      expect(parked.get('msg-refused')).toMatchObject({
        contentType: 'application/json',
        correlationId: 'conv-props',
      });
      expect(parked.get('msg-refused')?.headers).toMatchObject({
        [AmqpHeaders.token]: refused,
        [AmqpHeaders.attempts]: 1,
        [AmqpHeaders.errorCode]: ErrorCodes.DISPATCH_FAILED,
        [AmqpHeaders.endpoint]: `egress:${queue}`,
        [AmqpHeaders.queue]: queue,
      });
      // Never sent: no attempt.
      expect(parked.get('msg-tokenless')).toMatchObject({ contentType: 'application/json' });
      expect(parked.get('msg-tokenless')?.headers).toMatchObject({
        [AmqpHeaders.attempts]: 0,
        [AmqpHeaders.errorCode]: ErrorCodes.TOKEN_HEADER_MISSING,
      });
    } finally {
      await bridge.stop();
    }
  });

  it('subscribes again when the broker cancels it (queue deleted) while the connection stays up', async () => {
    const queue = trackQueue(unique('egress-cancel'));
    const { bridge } = await startBridge(queue);
    try {
      const first = newTokenId();
      send(queue, { pay: 7 }, { [AmqpHeaders.token]: first });
      await waitFor('the first delivery', () => bridge.stats.delivered === 1);
      const connectionBefore = amqp.connection.current;
      await probe.deleteQueue(queue);
      // The bridge re-declares the queue on the same connection and consumes it again.
      await waitFor('a new consumer on the re-declared queue', async () => {
        // A check of a missing queue closes the channel that asked: ask on a throwaway one.
        const asker = await model.createChannel();
        asker.on('error', () => undefined);
        const state = await asker.checkQueue(queue).catch(() => undefined);
        if (state !== undefined) await asker.close();
        return state?.consumerCount === 1;
      });
      expect(amqp.connection.current).toBe(connectionBefore);
      const second = newTokenId();
      send(queue, { pay: 8 }, { [AmqpHeaders.token]: second, [AmqpHeaders.conversation]: 'conv-cancel' });
      await waitFor('the second delivery', () => bridge.stats.delivered === 2);
      expect(received.filter((r) => r.token === second)).toEqual([
        { token: second, conversation: 'conv-cancel', body: { pay: 8 } },
      ]);
    } finally {
      await bridge.stop();
    }
  });

  it('requeues when the peer stays unavailable, so nothing is lost', async () => {
    const queue = trackQueue(unique('egress-rq'));
    const { bridge } = await startBridge(queue);
    const down = newTokenId();
    script.set(down, [{ status: 503 }, { status: 503 }, { status: 503 }]);
    send(queue, { pay: 6 }, { [AmqpHeaders.token]: down });
    await waitFor('requeue then delivery', () => bridge.stats.requeued === 1 && bridge.stats.delivered === 1);
    await bridge.stop();
    expect(received.filter((r) => r.token === down)).toHaveLength(4);
  });
});
