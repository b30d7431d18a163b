import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, isTollgateError } from '../../src/core/errors.js';
import { pendingToken } from '../../src/core/mint.js';
import type { TokenStore } from '../../src/core/store.js';
import { amqpDestination } from '../../src/transports/amqp/destination.js';
import { type AmqpTollgate, createAmqpTollgate } from '../../src/transports/amqp/tollgate.js';
import { freshStore, STORE_KINDS } from '../support/stores.js';
import { applyOrder, type OrderPayload } from './fixtures/scenario.js';
import { AMQP_URL, BrokerProbe, uniqueName, waitFor } from './support.js';

const run = promisify(execFile);

/** What the broker itself says about a queue (its arguments come as [name, type, value] triples). */
async function queueInfo(
  name: string,
): Promise<{ type: string; arguments: Record<string, unknown> } | undefined> {
  const { stdout } = await run('rabbitmqctl', [
    '--quiet',
    'list_queues',
    'name',
    'type',
    'arguments',
    '--formatter',
    'json',
  ]);
  const queues = JSON.parse(stdout) as Array<{
    name: string;
    type: string;
    arguments: Array<[string, string, unknown]>;
  }>;
  const queue = queues.find((candidate) => candidate.name === name);
  if (!queue) return undefined;
  return {
    type: queue.type,
    arguments: Object.fromEntries(queue.arguments.map(([key, , value]) => [key, value])),
  };
}

describe.each(STORE_KINDS)('AMQP topology and channel errors (%s store)', (kind) => {
  let store: TokenStore;
  let probe: BrokerProbe;
  let tollgate: AmqpTollgate;
  let orders: string;
  let exchange: string;

  beforeEach(async () => {
    store = await freshStore(kind);
    probe = await BrokerProbe.open();
    orders = uniqueName('orders');
    exchange = uniqueName('exchange');
    tollgate = await createAmqpTollgate({ url: AMQP_URL, store, name: 'tg-test-topology', relay: false });
  });

  afterEach(async () => {
    await tollgate.close();
    await store.close();
    await probe.cleanUp([orders], [exchange]);
    await probe.close();
  });

  it('declares a quorum queue with a delivery limit, its dead-letter exchange and queue, and the bindings', async () => {
    const consumer = await tollgate.consume(orders, applyOrder('nowhere'), {
      deliveryLimit: 7,
      bindings: [{ exchange, routingKey: 'order.*' }],
    });
    const info = await queueInfo(orders);
    expect(info?.type).toBe('quorum');
    expect(info?.arguments).toMatchObject({
      'x-delivery-limit': 7,
      'x-dead-letter-exchange': `${orders}.dlx`,
    });
    expect((await queueInfo(`${orders}.dead`))?.type).toBe('quorum');

    const token = pendingToken(
      { destination: amqpDestination(exchange, 'order.placed'), payload: { n: 1 } },
      { mintedBy: 'test', now: Date.now() },
    );
    await store.mint([token]);
    await tollgate.publisher.send(token);
    await waitFor('the message routed through the binding', () => consumer.stats.received === 1);
  });

  it('rejects consume() clearly when the queue exists with other arguments, and keeps working', async () => {
    await probe.channel.assertQueue(orders, { durable: true }); // a classic queue without dead-lettering
    const failure = await tollgate.consume(orders, applyOrder('nowhere')).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(Error);
    // With declare: false the library uses the queue as it is.
    let runs = 0;
    await tollgate.consume<OrderPayload>(
      orders,
      () => {
        runs += 1;
      },
      { declare: false },
    );
    await tollgate.publisher.publish({ exchange: '', routingKey: orders }, { n: 1 });
    await waitFor('the message handled', () => runs === 1);
  });

  it('subscribes again, re-declaring the queue, when the broker cancels the consumer on a live connection', async () => {
    const consumer = await tollgate.consume(orders, applyOrder('nowhere'));
    const connectionBefore = tollgate.connection.current;
    await probe.channel.deleteQueue(orders);
    await waitFor('a second subscription', () => consumer.stats.subscriptions === 2);
    expect(tollgate.connection.current).toBe(connectionBefore);
    await tollgate.publisher.publish({ exchange: '', routingKey: orders }, { n: 3 });
    await waitFor('the message handled on the new subscription', () => consumer.stats.processed === 1);
  });

  it('a publish to a missing exchange fails as not dispatched, and the publisher recovers its channel', async () => {
    const lost = pendingToken(
      { destination: amqpDestination(exchange, 'x'), payload: { n: 1 } },
      { mintedBy: 'test', now: Date.now() },
    );
    await store.mint([lost]);
    const failure = await tollgate.publisher.send(lost).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(isTollgateError(failure) && failure.code).toBe(ErrorCodes.DISPATCH_FAILED);

    await tollgate.consume(orders, applyOrder('nowhere'));
    const id = await tollgate.publisher.publish({ exchange: '', routingKey: orders }, { n: 2 });
    // Delivered on the re-opened channel and applied. (One read right after publish could see `pending` on
    // PostgreSQL: the consumer's open transaction holds the row, and the dispatched mark skips locked rows.)
    await waitFor('the message applied', async () => (await store.getToken(id))?.status === 'consumed');
  });
});
