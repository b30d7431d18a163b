import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { pendingToken } from '../../src/core/mint.js';
import type { TokenStore } from '../../src/core/store.js';
import { queueDestination } from '../../src/transports/amqp/destination.js';
import { type AmqpTollgate, createAmqpTollgate } from '../../src/transports/amqp/tollgate.js';
import { deadLetterNames } from '../../src/transports/amqp/topology.js';
import { freshStore, STORE_KINDS } from '../support/stores.js';
import { appliedKey, applyOrder, deliveredKey, deliverShipment, stderrLogger } from './fixtures/scenario.js';
import { AMQP_URL, BrokerProbe, stateNumber, uniqueName, waitFor } from './support.js';

const run = promisify(execFile);

/** Debian's amqp-tools: an independent AMQP client that knows nothing of Tollgate. */
async function amqpPublish(queue: string, body: string, headers: Record<string, string>): Promise<void> {
  const args = ['-u', AMQP_URL, '-e', '', '-r', queue, '-p', '-C', 'application/json', '-b', body];
  for (const [name, value] of Object.entries(headers)) args.push('-H', `${name}: ${value}`);
  await run('amqp-publish', args);
}

describe.each(STORE_KINDS)('AMQP interop with amqp-publish (%s store)', (kind) => {
  let store: TokenStore;
  let probe: BrokerProbe;
  let tollgate: AmqpTollgate;
  let orders: string;
  let shipments: string;

  beforeEach(async () => {
    store = await freshStore(kind);
    probe = await BrokerProbe.open();
    orders = uniqueName('orders');
    shipments = uniqueName('shipments');
    tollgate = await createAmqpTollgate({
      url: AMQP_URL,
      store,
      name: 'tg-test-interop',
      relay: false,
      logger: stderrLogger(),
    });
  });

  afterEach(async () => {
    await tollgate.close();
    await store.close();
    await probe.cleanUp([orders, shipments]);
    await probe.close();
  });

  it('processes once a message amqp-publish sends twice with a token minted through the library', async () => {
    const orderConsumer = await tollgate.consume(orders, applyOrder(shipments));
    const shipmentConsumer = await tollgate.consume(shipments, deliverShipment);
    const token = pendingToken(
      { destination: queueDestination(orders), payload: { n: 7 } },
      { mintedBy: 'partner', now: Date.now() },
    );
    await store.mint([token]);

    // Key order and spacing differ from ours: the fingerprint is over canonical JSON.
    await amqpPublish(orders, '{ "n": 7 }', { 'exactly-once-token': token.id });
    await amqpPublish(orders, '{ "n": 7 }', { 'exactly-once-token': token.id });

    await waitFor(
      'both copies handled and the shipment delivered',
      () =>
        orderConsumer.stats.processed + orderConsumer.stats.dropped === 2 &&
        shipmentConsumer.stats.processed === 1,
    );
    expect(orderConsumer.stats).toMatchObject({ processed: 1, dropped: 1, deadLettered: 0 });
    expect(await stateNumber(store, appliedKey(7))).toBe(1);
    expect(await stateNumber(store, deliveredKey(7))).toBe(1);
    expect((await store.getToken(token.id))?.status).toBe('consumed');
  });

  it('dead-letters, with its reason, a message amqp-publish sends without a token', async () => {
    const orderConsumer = await tollgate.consume(orders, applyOrder(shipments));
    await amqpPublish(orders, '{"n":8}', {});

    const deadQueue = deadLetterNames(orders).queue;
    await waitFor('the dead letter', async () => (await probe.messageCount(deadQueue)) === 1);
    const [dead] = await probe.drain(deadQueue);
    expect(dead?.properties.headers?.['x-tollgate-error-code']).toBe(ErrorCodes.TOKEN_HEADER_MISSING);
    expect(typeof dead?.properties.headers?.['x-tollgate-reason']).toBe('string');
    expect(JSON.parse(dead?.content.toString() ?? '')).toEqual({ n: 8 });
    expect(orderConsumer.stats).toMatchObject({ processed: 0, deadLettered: 1 });
    expect(await stateNumber(store, appliedKey(8))).toBe(0);
  });
});
