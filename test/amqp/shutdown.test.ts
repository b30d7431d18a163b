import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TokenStore } from '../../src/core/store.js';
import { type AmqpTollgate, createAmqpTollgate } from '../../src/transports/amqp/tollgate.js';
import { freshStore, STORE_KINDS } from '../support/stores.js';
import { appliedKey, type OrderPayload } from './fixtures/scenario.js';
import { AMQP_URL, BrokerProbe, stateNumber, uniqueName, waitFor } from './support.js';

describe.each(STORE_KINDS)('AMQP graceful shutdown (%s store)', (kind) => {
  let store: TokenStore;
  let probe: BrokerProbe;
  let tollgate: AmqpTollgate;
  let orders: string;

  beforeEach(async () => {
    store = await freshStore(kind);
    probe = await BrokerProbe.open();
    orders = uniqueName('orders');
    tollgate = await createAmqpTollgate({ url: AMQP_URL, store, name: 'tg-test-shutdown', relay: false });
  });

  afterEach(async () => {
    await tollgate.close();
    await store.close();
    await probe.cleanUp([orders]);
    await probe.close();
  });

  it('lets a handler in flight finish and ack before closing', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = false;
    const consumer = await tollgate.consume<OrderPayload>(orders, async (ctx) => {
      started = true;
      await gate;
      ctx.put(appliedKey(ctx.payload.n), 1);
    });
    const id = await tollgate.publisher.publish({ exchange: '', routingKey: orders }, { n: 1 });
    await waitFor('the handler to start', () => started);

    const closing = tollgate.close();
    setTimeout(release, 100);
    await closing;
    expect(consumer.stats.processed).toBe(1);
    expect(await stateNumber(store, appliedKey(1))).toBe(1);
    expect((await store.getToken(id))?.status).toBe('consumed');
    expect(await probe.messageCount(orders)).toBe(0); // acked, not handed back
  });

  it('gives up on a handler that never ends after the stop timeout; its message goes back to the queue', async () => {
    let started = false;
    await tollgate.consume<OrderPayload>(
      orders,
      async () => {
        started = true;
        await new Promise(() => undefined);
      },
      { stopTimeoutMs: 200 },
    );
    const id = await tollgate.publisher.publish({ exchange: '', routingKey: orders }, { n: 2 });
    await waitFor('the handler to start', () => started);
    const begun = Date.now();
    await tollgate.close();
    expect(Date.now() - begun).toBeLessThan(5_000);
    await waitFor('the message back in the queue', async () => (await probe.messageCount(orders)) === 1);
    // The abandoned hop changed nothing. A store whose hop consumes first (PostgreSQL) holds the token's row
    // while the handler runs: if the publisher came to mark it after that, its mark was skipped, and the token
    // is still pending (for the relay).
    const untouched = store.ownData?.mode === 'interactive' ? ['dispatched', 'pending'] : ['dispatched'];
    expect(untouched).toContain((await store.getToken(id))?.status);
  });
});
