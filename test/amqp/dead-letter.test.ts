import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, isTollgateError } from '../../src/core/errors.js';
import { pendingToken } from '../../src/core/mint.js';
import type { Observer } from '../../src/core/observer.js';
import type { TokenStore } from '../../src/core/store.js';
import { queueDestination } from '../../src/transports/amqp/destination.js';
import { type AmqpTollgate, createAmqpTollgate } from '../../src/transports/amqp/tollgate.js';
import { deadLetterNames } from '../../src/transports/amqp/topology.js';
import { freshStore, STORE_KINDS } from '../support/stores.js';
import { appliedKey, applyOrder, type OrderPayload, stderrLogger } from './fixtures/scenario.js';
import { AMQP_URL, BrokerProbe, stateNumber, uniqueName, waitFor } from './support.js';

describe.each(STORE_KINDS)('AMQP dead-lettering and failed dispatch (%s store)', (kind) => {
  let store: TokenStore;
  let probe: BrokerProbe;
  let tollgate: AmqpTollgate;
  let orders: string;
  let shipments: string;
  const seen = { deadLettered: [] as string[], dispatchFailed: [] as unknown[] };
  const observer: Observer = {
    deadLettered: (_endpoint, _tokenId, reason) => seen.deadLettered.push(reason),
    dispatchFailed: (_token, error) => seen.dispatchFailed.push(error),
  };

  beforeEach(async () => {
    store = await freshStore(kind);
    probe = await BrokerProbe.open();
    orders = uniqueName('orders');
    shipments = uniqueName('shipments');
    seen.deadLettered.length = 0;
    seen.dispatchFailed.length = 0;
    tollgate = await createAmqpTollgate({
      url: AMQP_URL,
      store,
      name: 'tg-test-dead-letter',
      observers: [observer],
      relay: { delayMs: 0, intervalMs: 60_000 },
      logger: stderrLogger(),
    });
  });

  afterEach(async () => {
    await tollgate.close();
    await store.close();
    await probe.cleanUp([orders, shipments]);
    await probe.close();
  });

  async function mintOrder(n: number) {
    const token = pendingToken(
      { destination: queueDestination(orders), payload: { n } },
      { mintedBy: 'test', now: Date.now() },
    );
    await store.mint([token]);
    return token;
  }

  async function deadLetters(count: number) {
    const dead = deadLetterNames(orders).queue;
    await waitFor(`${count} dead letter(s)`, async () => (await probe.messageCount(dead)) >= count);
    const messages = await probe.drain(dead);
    expect(messages).toHaveLength(count);
    return messages;
  }

  it('dead-letters a poison message after the configured attempts, leaving state and token untouched', async () => {
    let runs = 0;
    const consumer = await tollgate.consume<OrderPayload>(
      orders,
      async (ctx) => {
        runs += 1;
        ctx.put(appliedKey(ctx.payload.n), 1);
        throw new Error('the order service is broken');
      },
      { attempts: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 } },
    );
    const token = await mintOrder(1);
    await tollgate.publisher.send(token);

    const [dead] = await deadLetters(1);
    const headers = dead?.properties.headers ?? {};
    expect(runs).toBe(3);
    expect(headers['x-tollgate-error-code']).toBe(ErrorCodes.HANDLER_FAILED);
    expect(headers['x-tollgate-attempts']).toBe(3);
    expect(typeof headers['x-tollgate-reason']).toBe('string');
    expect(headers['x-tollgate-endpoint']).toBe(orders);
    expect(headers['exactly-once-token']).toBe(token.id);
    expect(JSON.parse(dead?.content.toString() ?? '')).toEqual({ n: 1 });
    expect(await stateNumber(store, appliedKey(1))).toBe(0);
    expect((await store.getToken(token.id))?.status).toBe('pending');
    expect(consumer.stats).toMatchObject({ deadLettered: 1, processed: 0, retried: 2 });
    expect(seen.deadLettered).toEqual([ErrorCodes.HANDLER_FAILED]);
    expect(await probe.messageCount(orders)).toBe(0);
  });

  it('dead-letters messages without a token, with a malformed token, a non-JSON body or a foreign payload', async () => {
    let runs = 0;
    const consumer = await tollgate.consume<OrderPayload>(orders, async () => {
      runs += 1;
    });
    const token = await mintOrder(2);
    const send = (body: string, headers: Record<string, string>) =>
      probe.channel.sendToQueue(orders, Buffer.from(body), { headers, persistent: true });
    send('{"n":2}', {});
    send('{"n":2}', { 'exactly-once-token': 'no spaces allowed' });
    send('{"n":2', { 'exactly-once-token': token.id });
    send('{"n":3}', { 'exactly-once-token': token.id });

    const codes = (await deadLetters(4)).map(
      (message) => message.properties.headers?.['x-tollgate-error-code'],
    );
    expect(codes.sort()).toEqual(
      [
        ErrorCodes.TOKEN_HEADER_MISSING,
        ErrorCodes.TOKEN_MALFORMED,
        ErrorCodes.INVALID_PAYLOAD,
        ErrorCodes.FINGERPRINT_MISMATCH,
      ].sort(),
    );
    expect(runs).toBe(0);
    expect(consumer.stats.deadLettered).toBe(4);
    // The token was not spent by a foreign or unreadable copy: the genuine message still goes through.
    expect((await store.getToken(token.id))?.status).toBe('pending');
    await tollgate.publisher.send(token);
    await waitFor('the genuine message processed', () => runs === 1);
    await waitFor('its token consumed', async () => (await store.getToken(token.id))?.status === 'consumed');
  });

  it('an unroutable publish leaves the token pending and counted; the relay sends it once a route exists', async () => {
    const id = await tollgate.publisher.publish({ exchange: '', routingKey: orders }, { n: 4 });
    expect((await store.getToken(id))?.status).toBe('pending');
    expect(seen.dispatchFailed).toHaveLength(1);
    const failure = seen.dispatchFailed[0];
    expect(isTollgateError(failure) && failure.code).toBe(ErrorCodes.DISPATCH_FAILED);
    expect(isTollgateError(failure) && failure.details.unroutable).toBe(true);

    const consumer = await tollgate.consume(orders, applyOrder(shipments));
    const pass = await tollgate.relay?.runOnce();
    expect(pass).toMatchObject({ claimed: 1, dispatched: 1 });
    await waitFor('the relayed message processed', () => consumer.stats.processed === 1);
    expect(await stateNumber(store, appliedKey(4))).toBe(1);
    expect((await store.getToken(id))?.status).toBe('consumed');
  });
});
