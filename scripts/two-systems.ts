/**
 * Two systems that share no store, as `npm run demo` shows them and test/systems kills them:
 *
 *   A (orders, its own store) ──AMQP──▶ A's consumer ──HTTP, token issued at B──▶ B's route ──AMQP──▶ B's consumer
 *
 * - System A consumes orders from a queue. Its handler records the order and emits an HTTP signal to B's route.
 *   The destination names B's issuing endpoint and a credential reference (`'b'`). A's sender resolves the
 *   reference, issues the token at B, then sends it.
 * - System B embeds the fastify plugin with its issuing route. Its exactly-once route records the order and emits
 *   a shipment on one of its own queues. B's consumer books the shipment.
 *
 * Each handler also counts its runs per order (`applied/<order>`, `shipped/<order>`) in its own system's state,
 * so a double application shows as 2. `twoSystemsDemo` is the part of `npm run demo` that runs them.
 */
import { join } from 'node:path';
import type { Channel } from 'amqplib';
import Fastify, { type FastifyInstance } from 'fastify';
import { newTokenId } from '../src/core/ids.js';
import type { Logger } from '../src/core/observer.js';
import type { TokenStore } from '../src/core/store.js';
import type { Destination, TokenRecord } from '../src/core/token.js';
import type { HandlerContext } from '../src/core/unit-of-work.js';
import { conversationGraph } from '../src/gateway/graph.js';
import { SqliteTokenStore } from '../src/stores/sqlite/sqlite-store.js';
import {
  type AmqpConsumer,
  type AmqpRelayOptions,
  type AmqpTollgate,
  createAmqpTollgate,
  queueDestination,
} from '../src/transports/amqp/index.js';
import { messageForToken } from '../src/transports/amqp/message.js';
import {
  type HttpSenderOptions,
  HttpSignalSender,
  tollgateOf,
  tollgatePlugin,
} from '../src/transports/http/index.js';

/** A type alias, not an interface, so it is assignable to JsonValue. */
export type Order = { orderId: string };

/** The credential reference A's destinations name; only A's resolver knows the secret behind it. */
export const B_CREDENTIAL = 'b';
/** B's exactly-once route for orders. */
export const B_ROUTE = '/orders';

export const appliedKey = (orderId: string) => `applied/${orderId}`;
export const shippedKey = (orderId: string) => `shipped/${orderId}`;

/** Counts a handler's run for one order in its own system's state: exactly once leaves it at 1. */
async function countRun(work: Pick<HandlerContext, 'get' | 'put'>, key: string): Promise<void> {
  work.put(key, ((await work.get<number>(key)) ?? 0) + 1);
}

/** Where A sends an order: B's route, with the token issued first at B's issuing endpoint. */
export function orderToB(receiver: string): Destination {
  return {
    medium: 'http',
    method: 'POST',
    url: `${receiver}${B_ROUTE}`,
    issuer: { url: `${receiver}/v1/tokens`, credential: B_CREDENTIAL },
  };
}

export interface SystemAOptions {
  store: TokenStore;
  amqpUrl: string;
  /** The queue A consumes orders from. */
  queue: string;
  /** B's base URL. */
  receiver: string;
  /** A's resolver of credential references: the secret it gives for `'b'` is one of B's API keys. */
  credentials: (ref: string) => string | undefined;
  sender?: Omit<HttpSenderOptions, 'credentials'>;
  relay?: AmqpRelayOptions | false;
  logger?: Logger;
}

export interface SystemA {
  tollgate: AmqpTollgate;
  orders: AmqpConsumer<Order, void>;
  close(): Promise<void>;
}

export async function startSystemA(options: SystemAOptions): Promise<SystemA> {
  const sender = new HttpSignalSender({ ...options.sender, credentials: options.credentials });
  const tollgate = await createAmqpTollgate({
    url: options.amqpUrl,
    store: options.store,
    name: 'system-a',
    senders: [sender],
    ...(options.relay !== undefined ? { relay: options.relay } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const orders = await tollgate.consume<Order, void>(
    options.queue,
    async (ctx) => {
      const { orderId } = ctx.payload;
      ctx.put(`orders/${orderId}`, { status: 'sent to shipping' });
      await countRun(ctx, appliedKey(orderId));
      ctx.emit(orderToB(options.receiver), { orderId });
    },
    { endpoint: 'orders', concurrency: 4 },
  );
  return {
    tollgate,
    orders,
    async close() {
      await tollgate.close();
      sender.close();
    },
  };
}

export interface SystemBOptions {
  store: TokenStore;
  amqpUrl: string;
  /** B's own queue of shipments. */
  shipments: string;
  /** The API keys B's issuing route accepts. */
  keys: readonly string[];
  /** Default 0 (any free port). */
  port?: number;
  relay?: AmqpRelayOptions | false;
  logger?: Logger;
}

export interface SystemB {
  app: FastifyInstance;
  /** The base URL B listens on. */
  url: string;
  tollgate: AmqpTollgate;
  shipments: AmqpConsumer<Order, void>;
  close(): Promise<void>;
}

export async function startSystemB(options: SystemBOptions): Promise<SystemB> {
  const tollgate = await createAmqpTollgate({
    url: options.amqpUrl,
    store: options.store,
    name: 'system-b',
    ...(options.relay !== undefined ? { relay: options.relay } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const shipments = await tollgate.consume<Order, void>(
    options.shipments,
    async (ctx) => {
      const { orderId } = ctx.payload;
      ctx.put(`shipments/${orderId}`, { carrier: 'demo-post' });
      await countRun(ctx, shippedKey(orderId));
    },
    { endpoint: 'shipments' },
  );

  const app = Fastify({ logger: false });
  await app.register(tollgatePlugin, {
    store: options.store,
    endpoint: 'shipping',
    dispatcher: tollgate.publisher.dispatcher,
    issuing: { keys: options.keys },
    ...(options.logger ? { logger: options.logger } : {}),
  });
  app.post(B_ROUTE, { config: { exactlyOnce: true } }, async (request, reply) => {
    const work = tollgateOf<Order>(request);
    const { orderId } = work.payload;
    work.put(`orders/${orderId}`, { status: 'to ship' });
    await countRun(work, appliedKey(orderId));
    work.emit(queueDestination(options.shipments), { orderId });
    reply.code(201);
    return { orderId, accepted: true };
  });
  let url: string;
  try {
    url = await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  } catch (error) {
    await tollgate.close();
    throw error;
  }
  return {
    app,
    url,
    tollgate,
    shipments,
    async close() {
      await app.close();
      await tollgate.close();
    },
  };
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`demo timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function counter(store: TokenStore, key: string): Promise<number> {
  const value = (await store.readState(key))?.value;
  return typeof value === 'number' ? value : 0;
}

const DEMO_ORDERS = 3;
const short = (id: string) => id.slice(0, 8);

export interface TwoSystemsDemoOptions {
  amqpUrl: string;
  /** A channel of the demo's, to deliver one order twice. */
  channel: Channel;
  /** Where the two SQLite files go. */
  dir: string;
  /** A's order queue and B's shipment queue; the caller deletes them afterwards. */
  queue: string;
  shipments: string;
}

/**
 * Runs A and B in this process, each on a SQLite file of its own, sends a few orders (one delivered twice, one
 * request re-sent straight to B) and prints each side's view: the conversation as its own store and inspection
 * API know it, and its state. Returns whether every order was applied exactly once on each side.
 */
export async function twoSystemsDemo(options: TwoSystemsDemoOptions): Promise<boolean> {
  const { amqpUrl, queue, shipments } = options;
  const files = { a: join(options.dir, 'system-a.db'), b: join(options.dir, 'system-b.db') };
  const stores = {
    a: new SqliteTokenStore({ filename: files.a }),
    b: new SqliteTokenStore({ filename: files.b }),
  };
  const key = `demo-${newTokenId()}`;
  const relay = { delayMs: 1_000, intervalMs: 500 };
  const closing: Array<() => Promise<void>> = [];
  try {
    const b = await startSystemB({ store: stores.b, amqpUrl, shipments, keys: [key], relay });
    closing.push(() => b.close());
    const a = await startSystemA({
      store: stores.a,
      amqpUrl,
      queue,
      receiver: b.url,
      credentials: (ref) => (ref === B_CREDENTIAL ? key : undefined),
      relay,
    });
    closing.push(() => a.close());
    console.log('');
    console.log(`Two systems, two stores: A (orders) on ${files.a}, B (shipping, ${b.url}) on ${files.b}.`);
    console.log(
      `A's consumer sends each order to B over HTTP, issuing its token at B's /v1/tokens first; B's ${B_ROUTE} ` +
        'route books a shipment on its own queue.',
    );

    const orders: Order[] = [];
    const roots: TokenRecord[] = [];
    for (let i = 1; i <= DEMO_ORDERS; i++) {
      orders.push({ orderId: `order-${i}` });
      const id = await a.tollgate.publisher.publish({ exchange: '', routingKey: queue }, orders[i - 1]!);
      roots.push((await stores.a.getToken(id))!);
    }
    const first = roots[0]!;
    // order-1 delivered twice: the same message, with the same token, published again.
    const copy = messageForToken({ ...first, payload: orders[0]! }, '', queue);
    options.channel.publish(copy.exchange, copy.routingKey, copy.body, copy.properties);
    await waitFor('every order shipped in B', async () => {
      for (const { orderId } of orders)
        if ((await counter(stores.b, shippedKey(orderId))) === 0) return false;
      return a.orders.stats.dropped >= 1;
    });

    // order-1's request sent straight to B again, with the token A used: B answers from its replay store.
    const hop = (await stores.a.listConversation(first.conversationId)).items.find(
      (token) => token.parentId === first.id,
    );
    const again = await fetch(`${b.url}${B_ROUTE}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'exactly-once-token': hop?.id ?? '' },
      body: JSON.stringify({ orderId: 'order-1' }),
    });
    const replayed = again.headers.get('exactly-once-status');
    console.log(
      `  order-1 was delivered to A twice (A dropped ${a.orders.stats.dropped}); its request, re-sent straight ` +
        `to B: ${again.status} ${replayed}`,
    );

    for (const side of ['a', 'b'] as const) {
      const graph = await conversationGraph(stores[side], first.conversationId);
      console.log(
        `${side.toUpperCase()}'s view of order-1's conversation ${short(first.conversationId)}…, in its own store:`,
      );
      console.table(
        (graph?.nodes ?? []).map((node) => ({
          token: short(node.id),
          status: node.status,
          'minted by': node.mintedBy,
          'consumed by': node.consumedBy ?? '',
          parent: node.parentId === undefined ? '' : short(node.parentId),
          'enters from': node.entersFrom === undefined ? '' : `A's ${short(node.entersFrom)}`,
          'leaves to': node.leavesTo ?? '',
        })),
      );
    }

    const rows = await Promise.all(
      orders.map(async ({ orderId }) => ({
        order: orderId,
        'applied in A': await counter(stores.a, appliedKey(orderId)),
        'applied in B': await counter(stores.b, appliedKey(orderId)),
        'shipped in B': await counter(stores.b, shippedKey(orderId)),
      })),
    );
    console.log('State changes, each side counting in its own store:');
    console.table(rows);
    const ok =
      replayed === 'duplicate' &&
      rows.every(
        (row) => row['applied in A'] === 1 && row['applied in B'] === 1 && row['shipped in B'] === 1,
      );
    console.log(
      ok
        ? `each of the ${DEMO_ORDERS} orders was applied exactly once in A and in B, and shipped once in B`
        : `MISMATCH between the two systems: ${JSON.stringify(rows)}`,
    );
    return ok;
  } finally {
    for (const close of closing.reverse()) await close().catch(() => undefined);
    await stores.a.close();
    await stores.b.close();
  }
}
