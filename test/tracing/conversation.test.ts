import { context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/core/dispatcher.js';
import type { JsonValue } from '../../src/core/fingerprint.js';
import { pendingToken } from '../../src/core/mint.js';
import { Relay } from '../../src/core/relay.js';
import type { TokenStore } from '../../src/core/store.js';
import type { TokenRecord } from '../../src/core/token.js';
import { SpanNames, TraceAttributes } from '../../src/core/tracing.js';
import { openStore } from '../../src/stores/open.js';
import { queueDestination } from '../../src/transports/amqp/destination.js';
import { type AmqpTollgate, createAmqpTollgate } from '../../src/transports/amqp/tollgate.js';
import {
  HttpEdgeClient,
  HttpSignalSender,
  tollgateOf,
  tollgatePlugin,
} from '../../src/transports/http/index.js';
import { AMQP_URL, BrokerProbe, uniqueName, waitFor } from '../amqp/support.js';
import { freshStoreConfig } from '../support/stores.js';

const QUICK = { attempts: 5, baseDelayMs: 10, maxDelayMs: 50 };
const exporter = new InMemorySpanExporter();

/**
 * Three hops of one conversation in one process, each with its own transport:
 * client → HTTP /orders (emits to an AMQP queue) → AMQP consumer "billing" (emits HTTP) → HTTP /shipments.
 */
describe('OpenTelemetry tracing of a conversation', () => {
  let store: TokenStore;
  let amqp: AmqpTollgate;
  let app: FastifyInstance;
  let probe: BrokerProbe;
  let queue: string;
  let ordersUrl: string;
  let client: Dispatcher;

  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(
      new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
    );
  });

  afterAll(() => {
    trace.disable();
    context.disable();
  });

  beforeEach(async () => {
    exporter.reset();
    store = await openStore(freshStoreConfig('sqlite'));
    probe = await BrokerProbe.open();
    queue = uniqueName('traced-billing');
    const http = new HttpSignalSender({ retry: QUICK });
    amqp = await createAmqpTollgate({
      url: AMQP_URL,
      store,
      name: 'tg-test-tracing',
      relay: false,
      senders: [http],
    });
    app = Fastify({ logger: false });
    await app.register(tollgatePlugin, { store, dispatcher: amqp.publisher.dispatcher });
    app.post('/orders', { config: { exactlyOnce: { endpoint: 'orders' } } }, async (request) => {
      const work = tollgateOf<{ order: number }>(request);
      work.put(`order:${work.payload.order}`, 'placed');
      work.emit(queueDestination(queue), { order: work.payload.order });
      return { placed: true };
    });
    app.post('/shipments', { config: { exactlyOnce: { endpoint: 'shipping' } } }, async (request) => {
      const work = tollgateOf<{ order: number }>(request);
      work.put(`shipment:${work.payload.order}`, 'shipped');
      return { shipped: true };
    });
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    ordersUrl = `${base}/orders`;
    await amqp.consume<{ order: number }>(
      queue,
      async (work) => {
        work.put(`bill:${work.payload.order}`, 'billed');
        work.emit(
          { medium: 'http', method: 'POST', url: `${base}/shipments` },
          { order: work.payload.order },
        );
      },
      { endpoint: 'billing' },
    );
    client = new Dispatcher({ store, senders: [new HttpSignalSender({ retry: QUICK })] });
  });

  afterEach(async () => {
    await app.close();
    await amqp.close();
    await probe.cleanUp([queue]);
    await probe.close();
    await store.close();
  });

  /** A root token sent by an outside client inside its own span, as an application's edge would send it. */
  async function sendOrder(
    order: number,
    url = ordersUrl,
  ): Promise<{ token: TokenRecord; clientSpan: Span }> {
    const payload: JsonValue = { order };
    const token = pendingToken(
      { destination: { medium: 'http', method: 'POST', url }, payload },
      { mintedBy: 'test-client', now: Date.now() },
    );
    await store.mint([token]);
    const clientSpan = trace.getTracer('test').startSpan('client');
    await context.with(trace.setSpan(context.active(), clientSpan), () => client.dispatch([token], 'edge'));
    clientSpan.end();
    return { token, clientSpan };
  }

  function spans(name: string): ReadableSpan[] {
    return exporter.getFinishedSpans().filter((span) => span.name === name);
  }

  function parentOf(span: ReadableSpan): string | undefined {
    return span.parentSpanContext?.spanId;
  }

  function childrenOf(parent: ReadableSpan, name: string): ReadableSpan[] {
    return spans(name).filter((span) => parentOf(span) === parent.spanContext().spanId);
  }

  it('records the three hops as one trace: receive → handler, commit, dispatch → the next receive', async () => {
    const { token, clientSpan } = await sendOrder(1);
    await waitFor('the third hop', async () => (await store.readState('shipment:1')) !== undefined);
    await waitFor(
      'every span ended',
      () => spans(SpanNames.receive).length === 3 && spans(SpanNames.dispatch).length === 3,
    );

    const traceId = clientSpan.spanContext().traceId;
    expect(new Set(exporter.getFinishedSpans().map((span) => span.spanContext().traceId))).toEqual(
      new Set([traceId]),
    );

    // The chain of hops: client → dispatch → receive (orders) → dispatch → receive (billing) → dispatch → receive.
    const [edge] = spans(SpanNames.dispatch).filter(
      (span) => parentOf(span) === clientSpan.spanContext().spanId,
    );
    expect(edge).toBeDefined();
    let sending = edge!;
    const hops: ReadableSpan[] = [];
    for (const endpoint of ['orders', 'billing', 'shipping']) {
      const [receive] = childrenOf(sending, SpanNames.receive);
      expect(receive, `receive span of ${endpoint}`).toBeDefined();
      expect(receive!.attributes[TraceAttributes.endpoint]).toBe(endpoint);
      hops.push(receive!);
      expect(childrenOf(receive!, SpanNames.handler)).toHaveLength(1);
      expect(childrenOf(receive!, SpanNames.commit)).toHaveLength(1);
      const dispatched = childrenOf(receive!, SpanNames.dispatch);
      expect(dispatched).toHaveLength(endpoint === 'shipping' ? 0 : 1);
      if (dispatched[0]) sending = dispatched[0];
    }

    const [orders, billing, shipping] = hops as [ReadableSpan, ReadableSpan, ReadableSpan];
    for (const [receive, medium, kind] of [
      [orders, 'http', SpanKind.SERVER],
      [billing, 'amqp', SpanKind.CONSUMER],
      [shipping, 'http', SpanKind.SERVER],
    ] as const) {
      expect(receive.kind).toBe(kind);
      expect(receive.attributes).toMatchObject({
        [TraceAttributes.medium]: medium,
        [TraceAttributes.outcome]: 'processed',
        [TraceAttributes.conversationId]: token.conversationId,
      });
      expect(receive.attributes[TraceAttributes.tokenId]).toEqual(expect.any(String));
      const [handler] = childrenOf(receive, SpanNames.handler);
      const [commit] = childrenOf(receive, SpanNames.commit);
      expect(handler!.attributes).toMatchObject({
        [TraceAttributes.tokenId]: receive.attributes[TraceAttributes.tokenId],
        [TraceAttributes.endpoint]: receive.attributes[TraceAttributes.endpoint],
        [TraceAttributes.conversationId]: token.conversationId,
        [TraceAttributes.attempt]: 1,
      });
      expect(commit!.attributes[TraceAttributes.outcome]).toBe('committed');
    }
    expect(orders.attributes[TraceAttributes.tokenId]).toBe(token.id);
    expect(billing.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'messaging.destination.subscription.name': queue,
      'messaging.message.conversation_id': token.conversationId,
    });

    const amqpSend = childrenOf(orders, SpanNames.dispatch)[0]!;
    expect(amqpSend.kind).toBe(SpanKind.PRODUCER);
    expect(amqpSend.attributes).toMatchObject({
      [TraceAttributes.medium]: 'amqp',
      [TraceAttributes.outcome]: 'dispatched',
      [TraceAttributes.via]: 'hop',
      [TraceAttributes.tokenId]: billing.attributes[TraceAttributes.tokenId],
      [TraceAttributes.parentTokenId]: token.id,
      'messaging.system': 'rabbitmq',
      'messaging.rabbitmq.destination.routing_key': queue,
    });
    expect(childrenOf(billing, SpanNames.dispatch)[0]!.kind).toBe(SpanKind.CLIENT);
  });

  it('keeps the trace on the pending token: a relay re-send continues it, and a copy is a duplicate in it', async () => {
    // A system that leaves its emitted signals to the relay.
    const quiet = Fastify({ logger: false });
    await quiet.register(tollgatePlugin, { store, endpoint: 'orders-later' });
    quiet.post('/later', { config: { exactlyOnce: true } }, async (request) => {
      tollgateOf(request).emit(queueDestination(queue), { order: 2 });
      return { placed: true };
    });
    const url = `${await quiet.listen({ host: '127.0.0.1', port: 0 })}/later`;
    try {
      const { token, clientSpan } = await sendOrder(2, url);
      await waitFor('the first hop', () => spans(SpanNames.receive).length === 1);
      const [orders] = spans(SpanNames.receive);
      const emitted = (await store.listConversation(token.conversationId)).items.find(
        (t) => t.parentId === token.id,
      );
      // Stamped at the commit with the receiving hop's span, for whichever process sends the signal.
      expect(emitted).toMatchObject({
        status: 'pending',
        headers: { traceparent: `00-${orders!.spanContext().traceId}-${orders!.spanContext().spanId}-01` },
      });

      await new Relay({ store, dispatcher: amqp.publisher.dispatcher, delayMs: 0 }).runOnce();
      await waitFor('the third hop', async () => (await store.readState('shipment:2')) !== undefined);
      await waitFor('every span ended', () => spans(SpanNames.receive).length === 3);
      const relayed = spans(SpanNames.dispatch).find(
        (span) => span.attributes[TraceAttributes.via] === 'relay',
      );
      expect(parentOf(relayed!)).toBe(orders!.spanContext().spanId);
      const [billing] = childrenOf(relayed!, SpanNames.receive);
      expect(billing!.attributes[TraceAttributes.outcome]).toBe('processed');

      exporter.reset();
      await amqp.publisher.dispatcher.dispatch([emitted!], 'relay');
      await waitFor('the copy to be dropped', () => spans(SpanNames.receive).length === 1);
      const [copy] = spans(SpanNames.receive);
      const [resent] = spans(SpanNames.dispatch);
      expect(copy!.attributes[TraceAttributes.outcome]).toBe('duplicate');
      expect(copy!.status.code).not.toBe(SpanStatusCode.ERROR);
      expect(parentOf(copy!)).toBe(resent!.spanContext().spanId);
      expect(parentOf(resent!)).toBe(orders!.spanContext().spanId);
      expect(copy!.spanContext().traceId).toBe(clientSpan.spanContext().traceId);
      expect(spans(SpanNames.handler)).toHaveLength(0);
    } finally {
      await quiet.close();
    }
  });

  it('traces a request sent by the edge client as a dispatch span that the receiving hop continues', async () => {
    const edge = new HttpEdgeClient({ store, sender: new HttpSignalSender({ retry: QUICK }) });
    try {
      const clientSpan = trace.getTracer('test').startSpan('client');
      const delivery = await context.with(trace.setSpan(context.active(), clientSpan), () =>
        edge.send({ method: 'POST', url: ordersUrl }, { order: 4 }),
      );
      clientSpan.end();
      expect(delivery.statusCode).toBe(200);
      expect(delivery.outcome).toBe('processed');
      await waitFor('the orders hop', () => spans(SpanNames.receive).length >= 1);
      const [send] = spans(SpanNames.dispatch).filter(
        (span) => parentOf(span) === clientSpan.spanContext().spanId,
      );
      expect(send!.attributes).toMatchObject({
        [TraceAttributes.via]: 'edge',
        [TraceAttributes.medium]: 'http',
        [TraceAttributes.outcome]: 'dispatched',
      });
      const [orders] = childrenOf(send!, SpanNames.receive);
      expect(orders!.attributes[TraceAttributes.endpoint]).toBe('orders');
      expect(orders!.spanContext().traceId).toBe(clientSpan.spanContext().traceId);
    } finally {
      edge.close();
    }
  });

  it('marks a failing handler run as an error on its handler and receive spans', async () => {
    const failing = Fastify({ logger: false });
    await failing.register(tollgatePlugin, { store, endpoint: 'failing' });
    failing.post('/fail', { config: { exactlyOnce: true } }, async () => {
      throw new Error('handler broke');
    });
    const url = `${await failing.listen({ host: '127.0.0.1', port: 0 })}/fail`;
    try {
      const token = pendingToken(
        { destination: { medium: 'http', method: 'POST', url }, payload: { order: 3 } },
        { mintedBy: 'test-client', now: Date.now() },
      );
      await store.mint([token]);
      const report = await new Dispatcher({
        store,
        senders: [new HttpSignalSender({ retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } })],
      }).dispatch([token], 'edge');
      expect(report.failed).toHaveLength(1);
      await waitFor('the spans', () => spans(SpanNames.receive).length === 1);
      const [receive] = spans(SpanNames.receive);
      const [handler] = spans(SpanNames.handler);
      const [send] = spans(SpanNames.dispatch);
      expect(receive!.status.code).toBe(SpanStatusCode.ERROR);
      expect(receive!.attributes[TraceAttributes.outcome]).toBe('error');
      expect(handler!.status.code).toBe(SpanStatusCode.ERROR);
      expect(handler!.events.map((event) => event.name)).toContain('exception');
      expect(send!.status.code).toBe(SpanStatusCode.ERROR);
      expect(send!.attributes[TraceAttributes.outcome]).toBe('failed');
      expect(spans(SpanNames.commit)).toHaveLength(0);
    } finally {
      await failing.close();
    }
  });
});
