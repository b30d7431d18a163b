/**
 * npm run demo — an order → payment → shipping conversation through the Tollgate gateway, on the embedded SQLite
 * store and the local RabbitMQ (amqp://guest:guest@127.0.0.1:5672, or TOLLGATE_AMQP_URL).
 *
 *   caller ──HTTP──▶ gateway ingress ──AMQP──▶ orders ──AMQP──▶ payments ──AMQP──▶ gateway egress ──HTTP──▶ shipping
 *
 * Injected faults: every order is posted twice (a retry after a lost answer), one payment message is replayed, one
 * shipping request is replayed by hand, and the payments worker is a child process that SIGKILLs itself right after
 * its third commit (TOLLGATE_CRASH_AT=after-commit), before it could send the shipping signal or ack. It is restarted;
 * the relay sends the stranded shipping signal. Per hop, the demo prints the signals delivered, the duplicates
 * dropped and the state changes applied — which must equal the number of orders.
 *
 * Then two systems that share no store (scripts/two-systems.ts), each on a SQLite file of its own:
 *
 *   A: orders ──AMQP──▶ A's consumer ──HTTP (token issued at B first)──▶ B's route ──AMQP──▶ B's shipments
 *
 * One order is delivered to A twice and one request is re-sent straight to B; the demo prints each side's view of
 * a conversation (its own tokens, where it leaves A and enters B) and of its state.
 *
 * Last, a business process (scripts/processes-demo.ts): the booking flow as a process manager, one booking paid
 * (its payment delivered twice) and one expired by a scheduled timeout that the relay sends when due.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connect } from 'amqplib';
import Fastify from 'fastify';
import { newTokenId } from '../src/core/ids.js';
import type { Observer } from '../src/core/observer.js';
import { loadConfig } from '../src/gateway/config/index.js';
import { createLogger } from '../src/gateway/logging.js';
import { startGateway } from '../src/gateway/runtime.js';
import { SqliteTokenStore } from '../src/stores/sqlite/sqlite-store.js';
import {
  AmqpHeaders,
  amqpDestination,
  createAmqpTollgate,
  deadLetterNames,
  declareConsumerQueue,
} from '../src/transports/amqp/index.js';
import { tollgateOf, tollgatePlugin } from '../src/transports/http/index.js';
import { processesDemo } from './processes-demo.js';
import { counter, twoSystemsDemo, waitFor } from './two-systems.js';

const AMQP_URL = process.env.TOLLGATE_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const ORDERS = 5;
const WORKER_FLAG = '--payments-worker';

interface Names {
  exchange: string;
  orders: string;
  payments: string;
  shippingOut: string;
  /** System A's orders and system B's shipments, in the two-systems part. */
  aOrders: string;
  bShipments: string;
  /** The booking process's queue, in the processes part. */
  bookings: string;
}

/** A type alias, not an interface, so it is assignable to JsonValue. */
type Order = { orderId: string; amount: number };

/** Counts of one hop, as the receiving endpoint saw them. */
interface HopCount {
  delivered: number;
  dropped: number;
}

function namesFor(suffix: string): Names {
  return {
    exchange: `demo.shop.${suffix}`,
    orders: `demo.orders.${suffix}`,
    payments: `demo.payments.${suffix}`,
    shippingOut: `demo.shipping-out.${suffix}`,
    aOrders: `demo.a-orders.${suffix}`,
    bShipments: `demo.b-shipments.${suffix}`,
    bookings: `demo.bookings.${suffix}`,
  };
}

/** The payments endpoint, in its own process so it can crash for real. */
async function paymentsWorker(dbFile: string, names: Names): Promise<void> {
  const store = new SqliteTokenStore({ filename: dbFile });
  const report: Observer = {
    processed: () => console.log(JSON.stringify({ event: 'processed' })),
    dropped: () => console.log(JSON.stringify({ event: 'dropped' })),
  };
  const amqp = await createAmqpTollgate({ url: AMQP_URL, store, relay: false, observers: [report] });
  await amqp.consume<Order>(
    names.payments,
    async (ctx) => {
      const key = `payments/${ctx.payload.orderId}`;
      if ((await ctx.get(key)) === undefined) ctx.put(key, { charged: ctx.payload.amount });
      ctx.put('applied:payments', ((await ctx.get<number>('applied:payments')) ?? 0) + 1);
      ctx.emit(amqpDestination(names.exchange, 'shipping.requested'), { orderId: ctx.payload.orderId });
    },
    { endpoint: 'payments', declare: false, concurrency: 1 },
  );
  console.log(JSON.stringify({ event: 'ready' }));
  process.on('SIGTERM', () => {
    void amqp.close().finally(() => process.exit(0));
  });
}

class Worker {
  readonly counts: HopCount = { delivered: 0, dropped: 0 };
  process: ChildProcess | undefined;
  crashed = false;

  constructor(
    private readonly dbFile: string,
    private readonly names: Names,
  ) {}

  async start(env: Record<string, string>): Promise<void> {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        WORKER_FLAG,
        this.dbFile,
        JSON.stringify(this.names),
      ],
      { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    this.process = child;
    child.on('exit', (_code, signal) => {
      if (signal === 'SIGKILL') this.crashed = true;
    });
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`payments worker exited (${code}) before it was ready`)));
      let buffer = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('utf8');
        const lines = buffer.split('\n');
        buffer = lines.pop() ?? '';
        for (const line of lines) {
          const event = (JSON.parse(line) as { event: string }).event;
          if (event === 'ready') resolve();
          if (event === 'processed') this.counts.delivered += 1;
          if (event === 'dropped') {
            this.counts.delivered += 1;
            this.counts.dropped += 1;
          }
        }
      });
    });
  }

  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

async function demo(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-demo-'));
  const dbFile = join(dir, 'demo.db');
  const names = namesFor(
    newTokenId()
      .replace(/[^A-Za-z0-9]/g, '')
      .slice(0, 8),
  );
  const store = new SqliteTokenStore({ filename: dbFile });
  const model = await connect(AMQP_URL);
  const setup = await model.createChannel();
  await declareConsumerQueue(setup, names.orders, {
    bindings: [{ exchange: names.exchange, routingKey: 'order.placed' }],
  });
  await declareConsumerQueue(setup, names.payments, {
    bindings: [{ exchange: names.exchange, routingKey: 'payment.requested' }],
  });
  const cleanup: Array<() => Promise<unknown>> = [];

  try {
    // Shipping: an exactly-once HTTP endpoint (the HTTP transport's plugin), reached through the gateway's egress.
    const shippingHop: HopCount = { delivered: 0, dropped: 0 };
    const shipping = Fastify();
    await shipping.register(tollgatePlugin, { store, endpoint: 'shipping' });
    shipping.addHook('onSend', async (_request, reply, payload) => {
      shippingHop.delivered += 1;
      if (reply.getHeader('exactly-once-status') !== 'processed') shippingHop.dropped += 1;
      return payload;
    });
    shipping.post('/ship', { config: { exactlyOnce: true } }, async (request, reply) => {
      const work = tollgateOf<{ orderId: string }>(request);
      work.put(`shipments/${work.payload.orderId}`, { carrier: 'demo-post' });
      work.put('applied:shipping', ((await work.get<number>('applied:shipping')) ?? 0) + 1);
      // Exactly-once routes return their body (the plugin commits, keeps the answer for replay, then sends it).
      reply.code(201);
      return { shipped: work.payload.orderId };
    });
    const shippingUrl = await shipping.listen({ host: '127.0.0.1', port: 0 });
    cleanup.push(() => shipping.close());

    // The gateway, configured exactly as an operator would (env-style settings through loadConfig).
    const config = loadConfig({
      TOLLGATE_PORT: '0',
      TOLLGATE_SQLITE_PATH: dbFile,
      TOLLGATE_AMQP_URL: AMQP_URL,
      TOLLGATE_LOG_LEVEL: 'silent',
      TOLLGATE_RELAY_DELAY_MS: '500',
      TOLLGATE_RELAY_INTERVAL_MS: '200',
      TOLLGATE_BRIDGES: JSON.stringify({
        ingress: [{ route: 'orders', exchange: names.exchange, routingKey: 'order.placed' }],
        egress: [
          {
            queue: names.shippingOut,
            url: `${shippingUrl}/ship`,
            method: 'POST',
            bindings: [{ exchange: names.exchange, routingKey: 'shipping.requested' }],
          },
        ],
      }),
    });
    const gateway = await startGateway(config, createLogger(process.env.DEMO_LOG_LEVEL ?? 'silent'));
    cleanup.push(() => gateway.stop());

    // Orders: an AMQP endpoint in this process.
    const ordersTollgate = await createAmqpTollgate({ url: AMQP_URL, store, relay: false });
    cleanup.push(() => ordersTollgate.close());
    const orders = await ordersTollgate.consume<Order>(
      names.orders,
      async (ctx) => {
        ctx.put(`orders/${ctx.payload.orderId}`, { status: 'placed', amount: ctx.payload.amount });
        ctx.put('applied:orders', ((await ctx.get<number>('applied:orders')) ?? 0) + 1);
        ctx.emit(amqpDestination(names.exchange, 'payment.requested'), ctx.payload);
      },
      { endpoint: 'orders', declare: false },
    );

    // Payments: a child process that kills itself (SIGKILL) right after its 3rd commit.
    const worker = new Worker(dbFile, names);
    await worker.start({ TOLLGATE_CRASH_AT: 'after-commit', TOLLGATE_CRASH_AFTER: '3' });
    cleanup.push(() => worker.stop());

    console.log(
      `Tollgate demo: ${ORDERS} orders through ${gateway.url} (SQLite ${dbFile}, RabbitMQ ${names.exchange})`,
    );
    let ingressAccepted = 0;
    let ingressRefused = 0;
    const conversations: string[] = [];
    for (let i = 1; i <= ORDERS; i++) {
      const order: Order = { orderId: `order-${i}`, amount: 1000 * i };
      const minted = await fetch(`${gateway.url}/v1/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: `demo-${names.orders.slice(-8)}-${i}`, payload: order }),
      });
      const token = (await minted.json()) as { id: string; conversationId: string };
      conversations.push(token.conversationId);
      // The caller posts twice at once (a retry racing a slow first attempt). Depending on timing, the gateway
      // refuses the second (token already consumed: 409) or both reach the orders queue and the consumer drops one.
      const post = () =>
        fetch(`${gateway.url}/v1/signals/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'exactly-once-token': token.id },
          body: JSON.stringify(order),
        });
      for (const res of await Promise.all([post(), post()])) {
        if (res.status === 202) ingressAccepted += 1;
        else ingressRefused += 1;
      }
    }

    await waitFor('the payments worker to crash', async () => worker.crashed);
    console.log(
      '  payments worker was SIGKILLed right after a commit (before sending on and acking); restarting it',
    );
    const firstLife = { ...worker.counts };
    const restarted = new Worker(dbFile, names);
    await restarted.start({});
    cleanup.push(() => restarted.stop());

    await waitFor(
      'every order to be shipped',
      async () => (await counter(store, 'applied:shipping')) === ORDERS,
    );

    // More duplicates, from outside: a replayed payment message and a replayed shipping request.
    const graph = (await (await fetch(`${gateway.url}/v1/conversations/${conversations[0]}`)).json()) as {
      nodes: Array<{ id: string; mintedBy: string; status: string; parentId?: string }>;
      edges: Array<{ from: string; to: string }>;
    };
    const payment = graph.nodes.find((n) => n.mintedBy === 'orders');
    const shipment = graph.nodes.find((n) => n.mintedBy === 'payments');
    if (payment) {
      setup.publish(
        names.exchange,
        'payment.requested',
        Buffer.from(JSON.stringify({ orderId: 'order-1', amount: 1000 })),
        {
          headers: { [AmqpHeaders.token]: payment.id },
          persistent: true,
        },
      );
    }
    if (shipment) {
      await fetch(`${shippingUrl}/ship`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'exactly-once-token': shipment.id },
        body: JSON.stringify({ orderId: 'order-1' }),
      });
    }
    await waitFor(
      'the replayed payment to be dropped',
      async () => restarted.counts.dropped + firstLife.dropped >= 1,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));

    const payments: HopCount = {
      delivered: firstLife.delivered + restarted.counts.delivered,
      dropped: firstLife.dropped + restarted.counts.dropped,
    };
    const rows = [
      {
        hop: 'caller → gateway → orders (HTTP in, AMQP)',
        sent: ingressAccepted + ingressRefused,
        dropped: ingressRefused + orders.stats.dropped,
        key: 'orders',
      },
      {
        hop: 'orders → payments (AMQP)',
        sent: payments.delivered,
        dropped: payments.dropped,
        key: 'payments',
      },
      {
        hop: 'payments → gateway → shipping (AMQP, HTTP out)',
        sent: shippingHop.delivered,
        dropped: shippingHop.dropped,
        key: 'shipping',
      },
    ];
    console.log('');
    console.table(
      await Promise.all(
        rows.map(async (row) => ({
          hop: row.hop,
          'signals sent': row.sent,
          'duplicates dropped': row.dropped,
          'state changes applied': await counter(store, `applied:${row.key}`),
        })),
      ),
    );
    console.log(
      `ingress: ${ingressAccepted + ingressRefused} posts (${ORDERS} orders × 2): ${ingressAccepted} published, ` +
        `${ingressRefused} refused at the gateway; the orders consumer dropped ${orders.stats.dropped}`,
    );
    console.log(
      'payments: the delivery cut short by the crash is not counted as sent; its redelivery and one replayed ' +
        'message are the duplicates dropped. shipping: one request re-sent by hand, answered from the replay store.',
    );
    console.log(
      `conversation of order-1: ${graph.nodes.length} tokens, edges ${graph.edges.map((e) => `${e.from.slice(0, 6)}→${e.to.slice(0, 6)}`).join(', ')}`,
    );
    const applied = await Promise.all(
      ['orders', 'payments', 'shipping'].map((hop) => counter(store, `applied:${hop}`)),
    );
    const ok = applied.every((n) => n === ORDERS);
    console.log(
      ok
        ? `each of the ${ORDERS} orders was applied exactly once at every hop`
        : `MISMATCH: ${applied.join(', ')}`,
    );

    const separate = await twoSystemsDemo({
      amqpUrl: AMQP_URL,
      channel: setup,
      dir,
      queue: names.aOrders,
      shipments: names.bShipments,
    });
    const booked = await processesDemo({ amqpUrl: AMQP_URL, dir, queue: names.bookings });
    process.exitCode = ok && separate && booked ? 0 : 1;
  } finally {
    for (const close of cleanup.reverse()) await close().catch(() => undefined);
    const queues = [
      names.orders,
      names.payments,
      names.shippingOut,
      names.aOrders,
      names.bShipments,
      names.bookings,
    ];
    for (const queue of queues) {
      await setup.deleteQueue(queue).catch(() => undefined);
      await setup.deleteQueue(deadLetterNames(queue).queue).catch(() => undefined);
      await setup.deleteExchange(deadLetterNames(queue).exchange).catch(() => undefined);
    }
    await setup.deleteExchange(names.exchange).catch(() => undefined);
    await model.close().catch(() => undefined);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const flag = process.argv.indexOf(WORKER_FLAG);
  if (flag >= 0)
    await paymentsWorker(process.argv[flag + 1] as string, JSON.parse(process.argv[flag + 2] as string));
  else await demo();
}
