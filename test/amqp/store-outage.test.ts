import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../soak/fault-proxy.js';
import type { TokenStore } from '../../src/core/store.js';
import { openStore, type StoreConfig } from '../../src/stores/open.js';
import { type AmqpTollgate, createAmqpTollgate } from '../../src/transports/amqp/tollgate.js';
import { deadLetterNames, declareConsumerQueue } from '../../src/transports/amqp/topology.js';
import { freshStoreConfig } from '../support/stores.js';
import { deliveredKey, deliverShipment, stderrLogger } from './fixtures/scenario.js';
import { AMQP_URL, BrokerProbe, stateNumber, uniqueName, waitFor } from './support.js';

/**
 * A store outage longer than the core's own store retries, made real: the consumer reaches DynamoDB Local
 * through a TCP proxy that resets every connection for a while.
 */
describe('AMQP consumer through a store outage (DynamoDB Local behind a resetting proxy)', () => {
  let proxy: FaultProxy;
  let store: TokenStore;
  let tollgate: AmqpTollgate | undefined;
  let broker: BrokerProbe;
  const queues: string[] = [];

  beforeEach(async () => {
    const direct = freshStoreConfig('dynamodb') as Extract<StoreConfig, { kind: 'dynamodb' }>;
    const target = new URL(direct.endpoint ?? '');
    proxy = await FaultProxy.start({
      name: 'dynamodb',
      targetHost: target.hostname,
      targetPort: Number(target.port),
    });
    store = await openStore({ ...direct, endpoint: `http://127.0.0.1:${proxy.port}` });
    broker = await BrokerProbe.open();
  });

  afterEach(async () => {
    await tollgate?.close();
    tollgate = undefined;
    await store.close();
    await proxy.close();
    await broker.cleanUp(queues.splice(0));
    await broker.close();
  });

  async function startOutage(outageHoldMs: number) {
    const queue = uniqueName('outage');
    tollgate = await createAmqpTollgate({ url: AMQP_URL, store, relay: false, logger: stderrLogger() });
    queues.push(queue);
    await declareConsumerQueue(broker.channel, queue, {});
    for (let n = 0; n < 4; n++) await tollgate.publisher.publish({ exchange: '', routingKey: queue }, { n });
    proxy.setMode({ kind: 'reset' });
    const consumer = await tollgate.consume(queue, deliverShipment, {
      concurrency: 4,
      outageHoldMs,
      attempts: { attempts: 5, baseDelayMs: 100, maxDelayMs: 500 },
      // Few store retries inside a run, so that a few seconds of outage mean many failed runs.
      storeRetry: {
        versionConflict: { attempts: 8, baseDelayMs: 5, maxDelayMs: 200 },
        transient: { attempts: 2, baseDelayMs: 20, maxDelayMs: 50 },
      },
    });
    const applied = () => Promise.all([0, 1, 2, 3].map((n) => stateNumber(store, deliveredKey(n))));
    const state = async () => ({
      stats: consumer.stats,
      ready: await broker.messageCount(queue),
      dead: await broker.messageCount(deadLetterNames(queue).queue),
    });
    return { queue, consumer, applied, state };
  }

  it('holds its deliveries and re-runs them: nothing goes back to the broker, each applied once', async () => {
    const { consumer, applied, state } = await startOutage(60_000);
    // Far longer than the store retries of one run, far shorter than the hold budget.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    expect(consumer.stats.processed).toBe(0);
    expect(consumer.stats.retried).toBeGreaterThanOrEqual(4);
    proxy.setMode({ kind: 'pass' });
    await waitFor('all four applied', () => consumer.stats.processed === 4, { describe: state });
    expect(consumer.stats.requeued).toBe(0);
    expect(consumer.stats.deadLettered).toBe(0);
    expect(await applied()).toEqual([1, 1, 1, 1]);
    expect(await state()).toMatchObject({ ready: 0, dead: 0 });
  });

  it('without the hold, requeues so often that the broker dead-letters healthy messages (why the hold exists)', async () => {
    const { consumer, applied, state } = await startOutage(0);
    // The quorum queue's delivery limit (20) is spent within seconds; RabbitMQ then parks each message itself.
    await waitFor('the broker to dead-letter all four', async () => (await state()).dead === 4, {
      describe: state,
    });
    proxy.setMode({ kind: 'pass' });
    expect(consumer.stats.requeued).toBeGreaterThanOrEqual(4 * 20);
    expect(consumer.stats.processed).toBe(0);
    expect(await applied()).toEqual([0, 0, 0, 0]);
  });
});
