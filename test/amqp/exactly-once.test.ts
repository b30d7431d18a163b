import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pendingToken } from '../../src/core/mint.js';
import type { TokenStore } from '../../src/core/store.js';
import type { TokenRecord } from '../../src/core/token.js';
import { openStore, type StoreConfig } from '../../src/stores/open.js';
import type { AmqpConsumer } from '../../src/transports/amqp/consumer.js';
import { queueDestination } from '../../src/transports/amqp/destination.js';
import { type AmqpTollgate, createAmqpTollgate } from '../../src/transports/amqp/tollgate.js';
import { deadLetterNames } from '../../src/transports/amqp/topology.js';
import { freshStoreConfig, STORE_KINDS } from '../support/stores.js';
import {
  appliedKey,
  applyOrder,
  deliveredKey,
  deliverShipment,
  type OrderPayload,
  stderrLogger,
} from './fixtures/scenario.js';
import { AMQP_URL, BrokerProbe, stateNumber, uniqueName, waitFor } from './support.js';

describe.each(STORE_KINDS)('AMQP hop, exactly once (%s store)', (kind) => {
  let config: StoreConfig;
  let probe: BrokerProbe;
  let orders: string;
  let shipments: string;
  const stores: TokenStore[] = [];
  const tollgates: AmqpTollgate[] = [];

  async function openTollgate(name: string): Promise<{ store: TokenStore; tollgate: AmqpTollgate }> {
    const store = await openStore(config);
    stores.push(store);
    const tollgate = await createAmqpTollgate({
      url: AMQP_URL,
      store,
      name,
      relay: false,
      logger: stderrLogger(),
    });
    tollgates.push(tollgate);
    return { store, tollgate };
  }

  /** Root tokens minted the way `publish` mints them, kept whole so the test can send copies of their message. */
  async function mintOrders(store: TokenStore, count: number): Promise<TokenRecord[]> {
    const tokens = Array.from({ length: count }, (_, n) =>
      pendingToken(
        { destination: queueDestination(orders), payload: { n } },
        { mintedBy: 'test', now: Date.now() },
      ),
    );
    await store.mint(tokens);
    return tokens;
  }

  async function expectEachOnce(store: TokenStore, count: number): Promise<void> {
    for (let n = 0; n < count; n++) {
      expect(await stateNumber(store, appliedKey(n)), `order ${n} applied`).toBe(1);
      expect(await stateNumber(store, deliveredKey(n)), `shipment ${n} delivered`).toBe(1);
    }
  }

  beforeEach(async () => {
    config = freshStoreConfig(kind);
    probe = await BrokerProbe.open();
    orders = uniqueName('orders');
    shipments = uniqueName('shipments');
  });

  afterEach(async () => {
    for (const tollgate of tollgates.splice(0)) await tollgate.close();
    for (const store of stores.splice(0)) await store.close();
    await probe.cleanUp([orders, shipments]);
    await probe.close();
  });

  it('publish() mints a root token, publishes it with the token header and marks it dispatched', async () => {
    const { store, tollgate } = await openTollgate('tg-test-edge');
    await tollgate.consume(orders, applyOrder(shipments)).then((consumer) => consumer.stop());
    const id = await tollgate.publisher.publish(
      { exchange: '', routingKey: orders },
      { n: 1 },
      { headers: { 'x-trace': 'abc' } },
    );
    const token = await store.getToken(id);
    expect(token?.status).toBe('dispatched');
    await waitFor('the message in the queue', async () => (await probe.messageCount(orders)) === 1);
    const [message] = await probe.drain(orders);
    expect(JSON.parse(message?.content.toString() ?? '')).toEqual({ n: 1 });
    expect(message?.properties.headers?.['exactly-once-token']).toBe(id);
    expect(message?.properties.headers?.['conversation-id']).toBe(token?.conversationId);
    expect(message?.properties.headers?.['x-trace']).toBe('abc');
    expect(message?.properties.messageId).toBe(id);
    expect(message?.properties.correlationId).toBe(token?.conversationId);
    expect(message?.properties.contentType).toBe('application/json');
    expect(message?.properties.deliveryMode).toBe(2);
  });

  it('applies each message published three times once, and delivers its emitted message once', async () => {
    const count = 20;
    const { store, tollgate } = await openTollgate('tg-test-triplicates');
    const orderConsumer = await tollgate.consume(orders, applyOrder(shipments));
    const shipmentConsumer = await tollgate.consume(shipments, deliverShipment);
    const tokens = await mintOrders(store, count);
    for (let copy = 0; copy < 3; copy++) {
      await Promise.all(tokens.map((token) => tollgate.publisher.send(token)));
    }

    await waitFor(
      'every copy handled and every shipment delivered',
      async () =>
        orderConsumer.stats.processed + orderConsumer.stats.dropped === 3 * count &&
        shipmentConsumer.stats.processed === count &&
        (await store.inFlightStats()).count === 0,
      { describe: () => [orderConsumer.stats, shipmentConsumer.stats] },
    );
    await expectEachOnce(store, count);
    expect(orderConsumer.stats).toMatchObject({ processed: count, dropped: 2 * count, deadLettered: 0 });
    // Each emitted signal was sent once: every copy that reached the shipments queue was a first.
    expect(shipmentConsumer.stats).toMatchObject({ received: count, processed: count, dropped: 0 });
    expect(await probe.messageCount(deadLetterNames(orders).queue)).toBe(0);
  });

  it('four competing consumers with interleaved duplicates apply every message exactly once', async () => {
    const count = 40;
    const { store, tollgate: edge } = await openTollgate('tg-test-competing-edge');
    const competitors: AmqpConsumer<OrderPayload, void>[] = [];
    for (let i = 0; i < 4; i++) {
      const { tollgate } = await openTollgate(`tg-test-competing-${i}`);
      competitors.push(await tollgate.consume(orders, applyOrder(shipments), { concurrency: 4 }));
    }
    const shipmentConsumer = await edge.consume(shipments, deliverShipment);
    const tokens = await mintOrders(store, count);
    // Three copies of each, interleaved: copy k of token i goes out in round k, rounds in different orders.
    const rounds = [
      tokens,
      [...tokens].reverse(),
      tokens.filter((_, i) => i % 2 === 0).concat(tokens.filter((_, i) => i % 2 === 1)),
    ];
    await Promise.all(rounds.flatMap((round) => round.map((token) => edge.publisher.send(token))));

    const total = (field: 'processed' | 'dropped' | 'received') =>
      competitors.reduce((sum, consumer) => sum + consumer.stats[field], 0);
    await waitFor(
      'every copy handled and every shipment delivered',
      async () =>
        total('processed') + total('dropped') === 3 * count &&
        shipmentConsumer.stats.processed === count &&
        (await store.inFlightStats()).count === 0,
      { describe: () => [competitors.map((c) => c.stats), shipmentConsumer.stats] },
    );
    await expectEachOnce(store, count);
    expect(total('processed')).toBe(count);
    expect(total('dropped')).toBe(2 * count);
    expect(competitors.filter((consumer) => consumer.stats.received > 0).length).toBeGreaterThan(1);
    expect(shipmentConsumer.stats.dropped).toBe(0);
  });
});
