import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, isTollgateError } from '../../src/core/errors.js';
import { pendingToken } from '../../src/core/mint.js';
import type { TokenStore } from '../../src/core/store.js';
import { AmqpConnection } from '../../src/transports/amqp/connection.js';
import { queueDestination } from '../../src/transports/amqp/destination.js';
import { type AmqpTollgate, createAmqpTollgate } from '../../src/transports/amqp/tollgate.js';
import { freshStore, STORE_KINDS } from '../support/stores.js';
import { appliedKey, applyOrder, deliveredKey, deliverShipment, stderrLogger } from './fixtures/scenario.js';
import { AMQP_URL, stateNumber, uniqueName, waitFor } from './support.js';

const run = promisify(execFile);
const rabbitmqctl = (...args: string[]) => run('rabbitmqctl', ['--quiet', ...args]);

/**
 * Each test gets its own vhost, so `rabbitmqctl close_all_connections` drops this test's connections and nobody
 * else's (other test files run against the same broker at the same time).
 */
describe.each(STORE_KINDS)('AMQP connection recovery (%s store)', (kind) => {
  let vhost: string;
  let url: string;
  let store: TokenStore;
  let tollgate: AmqpTollgate | undefined;

  beforeEach(async () => {
    vhost = uniqueName('vhost');
    await rabbitmqctl('add_vhost', vhost);
    await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
    url = `${AMQP_URL}/${encodeURIComponent(vhost)}`;
    store = await freshStore(kind);
  });

  afterEach(async () => {
    await tollgate?.close();
    tollgate = undefined;
    await store.close();
    await rabbitmqctl('delete_vhost', vhost);
  });

  /**
   * `close_all_connections` closes the connections the broker has registered so far; one opened a moment ago
   * may not be registered yet, so the command is repeated until the effect is seen.
   */
  async function dropAllConnectionsUntil(what: string, seen: () => boolean): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await rabbitmqctl('close_all_connections', '--vhost', vhost, 'test');
      try {
        await waitFor(what, seen, { timeoutMs: 3_000 });
        return;
      } catch (error) {
        if (attempt >= 5) throw error;
      }
    }
  }

  it('recovers consumers and publisher when the broker drops the connection mid-stream: nothing lost or doubled', async () => {
    const count = 60;
    const orders = uniqueName('orders');
    const shipments = uniqueName('shipments');
    tollgate = await createAmqpTollgate({
      url,
      store,
      name: 'tg-test-recovery',
      reconnect: { baseDelayMs: 100, maxDelayMs: 1_000 },
      relay: { delayMs: 1_000, intervalMs: 200 },
      logger: stderrLogger(),
    });
    const orderConsumer = await tollgate.consume(orders, applyOrder(shipments), { concurrency: 4 });
    const shipmentConsumer = await tollgate.consume(shipments, deliverShipment, { concurrency: 4 });
    const published: Promise<string>[] = [];
    for (let n = 0; n < count; n++) {
      if (n === count / 3) {
        await waitFor('some orders processed', () => orderConsumer.stats.processed > 0);
        await dropAllConnectionsUntil(
          'the connection to drop and come back',
          () => (tollgate?.connection.connections ?? 0) >= 2,
        );
      }
      published.push(tollgate.publisher.publish({ exchange: '', routingKey: orders }, { n }));
      if (n % 5 === 0) await Promise.all(published);
    }
    await Promise.all(published);

    // Also wait for the order handlers themselves: the relay may deliver a shipment while the order handler that
    // emitted it still waits for its own send to be confirmed across the reconnect, and counts itself after that.
    await waitFor(
      'every order applied and shipped',
      async () =>
        (await store.inFlightStats()).count === 0 &&
        orderConsumer.stats.processed >= count &&
        shipmentConsumer.stats.processed >= count,
      { describe: () => [orderConsumer.stats, shipmentConsumer.stats, tollgate?.relay?.stats] },
    );
    for (let n = 0; n < count; n++) {
      expect(await stateNumber(store, appliedKey(n)), `order ${n}`).toBe(1);
      expect(await stateNumber(store, deliveredKey(n)), `shipment ${n}`).toBe(1);
    }
    expect(tollgate.connection.connections).toBeGreaterThanOrEqual(2);
    expect(orderConsumer.stats.subscriptions).toBeGreaterThanOrEqual(2);
    expect(shipmentConsumer.stats.subscriptions).toBeGreaterThanOrEqual(2);
    expect(orderConsumer.stats.processed).toBe(count);
    expect(shipmentConsumer.stats.processed).toBe(count);
  });

  it('fails a send clearly when the broker stays away, leaving the token pending for the relay', async () => {
    tollgate = await createAmqpTollgate({
      url,
      store,
      name: 'tg-test-outage',
      reconnect: { baseDelayMs: 60_000, maxDelayMs: 60_000 },
      publisher: { outageTimeoutMs: 300 },
      relay: false,
    });
    await dropAllConnectionsUntil(
      'the connection to be seen lost',
      () => tollgate?.connection.current === undefined,
    );

    const token = pendingToken(
      { destination: queueDestination('nowhere'), payload: { n: 1 } },
      { mintedBy: 'test', now: Date.now() },
    );
    const started = Date.now();
    const failure = await tollgate.publisher.send(token).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isTollgateError(failure) && failure.code).toBe(ErrorCodes.DISPATCH_FAILED);
    expect(Date.now() - started).toBeLessThan(5_000);

    const id = await tollgate.publisher.publish({ exchange: '', routingKey: 'nowhere' }, { n: 2 });
    expect((await store.getToken(id))?.status).toBe('pending');
  });
});

describe('AMQP first connection', () => {
  it('gives up after initialConnectTimeoutMs when nothing answers, with a clear error', async () => {
    const started = Date.now();
    const failure = await AmqpConnection.open({
      url: 'amqp://guest:guest@127.0.0.1:1',
      initialConnectTimeoutMs: 500,
      reconnect: { baseDelayMs: 20, maxDelayMs: 100 },
    }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isTollgateError(failure) && failure.code).toBe(ErrorCodes.DISPATCH_FAILED);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
