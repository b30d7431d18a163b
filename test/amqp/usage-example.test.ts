import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { SqliteTokenStore } from '../../src/stores/sqlite/sqlite-store.js';
import { createAmqpTollgate, queueDestination } from '../../src/transports/amqp/index.js';
import { AMQP_URL, BrokerProbe, uniqueName, waitFor } from './support.js';

const orders = uniqueName('orders');
const shipments = uniqueName('shipments');

afterEach(async () => {
  const probe = await BrokerProbe.open();
  await probe.cleanUp([orders, shipments]);
  await probe.close();
});

// The usage example given for the README, run as it is written (queue names made unique).
it('runs the README usage example', async () => {
  const filename = join(mkdtempSync(join(tmpdir(), 'tollgate-example-')), 'tollgate.db');

  // --- example ---
  const store = new SqliteTokenStore({ filename });
  const tollgate = await createAmqpTollgate({
    url: AMQP_URL,
    store,
    relay: { delayMs: 10_000 }, // re-publishes tokens still pending 10 s after their commit
  });

  // State writes, the consumption of the incoming token and the minting of the shipment's token
  // commit in one transaction; the shipment is published after the commit, then the order is acked.
  await tollgate.consume<{ orderId: string; amount: number }>(
    orders,
    async (ctx) => {
      const revenue = (await ctx.get<number>('revenue')) ?? 0;
      ctx.put('revenue', revenue + ctx.payload.amount);
      ctx.emit(queueDestination(shipments), { orderId: ctx.payload.orderId });
    },
    { concurrency: 8, attempts: { attempts: 5, baseDelayMs: 100, maxDelayMs: 5_000 } },
  );

  // The receiving side of the shipments; declaring its queue also makes the orders' emits routable.
  await tollgate.consume<{ orderId: string }>(shipments, async (ctx) => {
    ctx.put(`shipment/${ctx.payload.orderId}`, 'requested');
  });

  // At the edge: mints a root token, then publishes. Call it once per logical message.
  const tokenId = await tollgate.publisher.publish(
    { exchange: '', routingKey: orders },
    { orderId: 'A-1', amount: 42 },
  );
  // --- end of example ---

  await waitFor('the order consumed', async () => (await store.getToken(tokenId))?.status === 'consumed');
  expect((await store.readState('revenue'))?.value).toBe(42);
  await waitFor(
    'the shipment handled',
    async () => (await store.readState('shipment/A-1'))?.value === 'requested',
  );

  await tollgate.close(); // consumers finish in-flight messages; the store stays open
  await store.close();
});
