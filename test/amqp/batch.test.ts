import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { pendingToken } from '../../src/core/mint.js';
import type { Observer } from '../../src/core/observer.js';
import type { Handler } from '../../src/core/processor.js';
import type { TokenStore } from '../../src/core/store.js';
import type { TokenRecord } from '../../src/core/token.js';
import { queueDestination } from '../../src/transports/amqp/destination.js';
import { messageForToken } from '../../src/transports/amqp/message.js';
import { type AmqpTollgate, createAmqpTollgate } from '../../src/transports/amqp/tollgate.js';
import { deadLetterNames, declareConsumerQueue } from '../../src/transports/amqp/topology.js';
import { freshStore, STORE_KINDS } from '../support/stores.js';
import { appliedKey, stderrLogger } from './fixtures/scenario.js';
import { AMQP_URL, BrokerProbe, stateNumber, uniqueName, waitFor } from './support.js';

type Order = {
  n: number;
  poison?: boolean;
  /** Every such order also adds one to a total they all read and write: their commits conflict. */
  shared?: boolean;
};

const SHARED_TOTAL = 'shared-total';

/**
 * One prefetch window holding a poison message, two copies of one signal, two orders that contend for one state
 * key, a body that is not JSON and healthy orders, all in the queue before the consumer subscribes, so that they
 * arrive together and run as one batch (or a few). Each fares as it would alone; none drags a neighbour with it.
 */
describe.each(STORE_KINDS)('AMQP batch pipeline on the real broker (%s store)', (kind) => {
  let store: TokenStore;
  let probe: BrokerProbe;
  let tollgate: AmqpTollgate;
  let orders: string;
  let shipments: string;
  const retries: string[] = [];
  const observer: Observer = { commitRetried: (_endpoint, reason) => retries.push(reason) };

  beforeEach(async () => {
    store = await freshStore(kind);
    probe = await BrokerProbe.open();
    orders = uniqueName('orders');
    shipments = uniqueName('shipments');
    retries.length = 0;
    tollgate = await createAmqpTollgate({
      url: AMQP_URL,
      store,
      name: 'tg-test-batch',
      observers: [observer],
      relay: false,
      logger: stderrLogger(),
    });
    await declareConsumerQueue(probe.channel, orders, {});
    await declareConsumerQueue(probe.channel, shipments, {});
  });

  afterEach(async () => {
    await tollgate.close();
    await store.close();
    await probe.cleanUp([orders, shipments]);
    await probe.close();
  });

  const applyOrder: Handler<Order, void> = async (ctx) => {
    if (ctx.payload.poison) throw new Error('this order breaks the handler every time');
    const applied = (await ctx.get<number>(appliedKey(ctx.payload.n))) ?? 0;
    ctx.put(appliedKey(ctx.payload.n), applied + 1);
    if (ctx.payload.shared) {
      const total = (await ctx.get<number>(SHARED_TOTAL)) ?? 0;
      ctx.put(SHARED_TOTAL, total + 1);
    }
    ctx.emit(queueDestination(shipments), { n: ctx.payload.n });
  };

  async function minted(payload: Order): Promise<TokenRecord> {
    const token = pendingToken(
      { destination: queueDestination(orders), payload },
      { mintedBy: 'test', now: Date.now() },
    );
    await store.mint([token]);
    return token;
  }

  /** Puts the token's message in the queue as the publisher would, without marking anything. */
  function enqueue(token: TokenRecord, body?: Buffer): void {
    const message = messageForToken(token, '', orders);
    probe.channel.sendToQueue(orders, body ?? message.body, message.properties);
  }

  it('lets a poison message, a duplicate and a version conflict in one batch fare alone', async () => {
    const healthy = await Promise.all([1, 2, 3, 4].map((n) => minted({ n })));
    const poison = await minted({ n: 5, poison: true });
    const duplicated = await minted({ n: 6 });
    const contending = await Promise.all([7, 8].map((n) => minted({ n, shared: true })));
    const garbled = await minted({ n: 9 });
    for (const token of [healthy[0], poison, duplicated, contending[0], healthy[1]])
      enqueue(token as TokenRecord);
    enqueue(duplicated);
    for (const token of [contending[1], healthy[2], healthy[3]]) enqueue(token as TokenRecord);
    enqueue(garbled, Buffer.from('{ not json'));
    const deliveries = 10;
    await waitFor(
      'the whole window in the queue',
      async () => (await probe.messageCount(orders)) === deliveries,
    );

    // The handlers start once the whole window has arrived, so that the contending orders both read the total
    // before either commits, however the broker split the window into batches.
    let open: () => void = () => undefined;
    const arrived = new Promise<void>((resolve) => {
      open = resolve;
    });
    const consumer = await tollgate.consume<Order>(
      orders,
      async (ctx) => {
        await arrived;
        await applyOrder(ctx);
      },
      { concurrency: 16, attempts: { attempts: 3, baseDelayMs: 20, maxDelayMs: 50 } },
    );
    await waitFor('the window delivered', () => consumer.stats.received === deliveries);
    open();
    await waitFor(
      'every delivery settled',
      () => consumer.stats.processed + consumer.stats.dropped + consumer.stats.deadLettered === deliveries,
      { describe: () => consumer.stats },
    );

    // The healthy orders, one copy of the duplicated one and both contending ones: applied once each.
    for (const n of [1, 2, 3, 4, 6, 7, 8])
      expect(await stateNumber(store, appliedKey(n)), `order ${n}`).toBe(1);
    expect(consumer.stats.processed).toBe(7);
    // The second copy found its token consumed by the first and was dropped without running the handler.
    expect(consumer.stats.dropped).toBe(1);
    // Both contending orders counted: the one whose version check failed ran again on fresh state.
    expect(await stateNumber(store, SHARED_TOTAL)).toBe(2);
    // On SQLite both read the total before either committed, so one commit must have conflicted. DynamoDB's
    // batch read may answer the two at different times (seen in CI), and PostgreSQL runs each hop on a pooled
    // connection, which may put them one after the other: there the total above is what shows both applied once.
    if (kind === 'sqlite') expect(retries).toContain('version-conflict');

    // The poison message ran its attempts and was parked; the garbled body at once. Neither token was touched.
    const dead = await probe.drain(deadLetterNames(orders).queue);
    const codes = dead.map((message) => message.properties.headers?.['x-tollgate-error-code']).sort();
    expect(codes).toEqual([ErrorCodes.HANDLER_FAILED, ErrorCodes.INVALID_PAYLOAD].sort());
    expect(consumer.stats.retried).toBe(2);
    expect((await store.getToken(poison.id))?.status).toBe('pending');
    expect((await store.getToken(garbled.id))?.status).toBe('pending');
    expect(await stateNumber(store, appliedKey(5))).toBe(0);

    // One shipment per applied order, none for the others.
    await waitFor('the shipments confirmed', async () => (await probe.messageCount(shipments)) === 7);
    const shipped = (await probe.drain(shipments)).map((m) => (JSON.parse(m.content.toString()) as Order).n);
    expect(shipped.sort()).toEqual([1, 2, 3, 4, 6, 7, 8]);
    // The window came as a batch or a few, not a delivery at a time; nothing is left unacked.
    expect(consumer.stats.batches).toBeLessThan(deliveries / 2);
    expect(await probe.messageCount(orders)).toBe(0);
  });
});
