import { afterEach, describe, expect, it } from 'vitest';
import type { CrashPoint } from '../../src/core/crash.js';
import type { TokenStore } from '../../src/core/store.js';
import type { TokenRecord } from '../../src/core/token.js';
import { openStore } from '../../src/stores/open.js';
import { createAmqpTollgate } from '../../src/transports/amqp/tollgate.js';
import { deadLetterNames, declareConsumerQueue } from '../../src/transports/amqp/topology.js';
import { stopLeftovers } from '../support/leftovers.js';
import { freshStoreConfig, STORE_KINDS, type StoreKind } from '../support/stores.js';
import { appliedKey, deliveredKey, deliverShipment } from './fixtures/scenario.js';
import {
  AMQP_URL,
  BrokerProbe,
  type RunningWorker,
  startWorker,
  stateNumber,
  uniqueName,
  type WorkerStats,
  waitFor,
} from './support.js';

const CRASH_POINTS: readonly CrashPoint[] = ['before-commit', 'after-commit', 'after-dispatch', 'before-ack'];
const COUNT = 12;

async function readyOrDead(worker: RunningWorker): Promise<void> {
  await Promise.race([
    worker.ready,
    worker.exited.then((exit) => {
      throw new Error(`worker exited (${JSON.stringify(exit)}) before it was ready:\n${worker.output()}`);
    }),
  ]);
}

async function allTokens(store: TokenStore, conversationIds: readonly string[]): Promise<TokenRecord[]> {
  const tokens: TokenRecord[] = [];
  for (const id of conversationIds) tokens.push(...(await store.listConversation(id)).items);
  return tokens;
}

/**
 * What both crash suites run on, one per test: a fresh store, an orders and a shipments queue, an edge (no relay of
 * its own) that publishes the orders and, once a survivor runs, consumes the shipments, and the workers started on
 * them. Registers the afterEach that kills the workers left running and cleans up.
 */
function crashRig(kind: StoreKind) {
  const workers: RunningWorker[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  afterEach(() =>
    stopLeftovers(
      workers.splice(0).map((worker) => ({ process: worker.child, exited: worker.exited })),
      cleanups,
    ),
  );

  return async function open() {
    const storeConfig = freshStoreConfig(kind);
    const store: TokenStore = await openStore(storeConfig);
    const probe = await BrokerProbe.open();
    const orders = uniqueName('orders');
    const shipments = uniqueName('shipments');
    const edge = await createAmqpTollgate({
      url: AMQP_URL,
      store,
      name: 'tg-test-crash-edge',
      relay: false,
    });
    cleanups.push(async () => {
      await edge.close();
      await store.close();
      await probe.cleanUp([orders, shipments]);
      await probe.close();
    });
    const spec = { storeConfig, queue: orders, downstreamQueue: shipments, relayDelayMs: 500 };

    /** A worker consuming the orders; with `crash`, it is SIGKILLed at that point. */
    const start = (crash?: { crashAt: CrashPoint; crashAfter: number }): RunningWorker => {
      const worker = startWorker({ ...spec, ...crash });
      workers.push(worker);
      return worker;
    };

    /** Publishes COUNT orders from the edge; answers their conversations. */
    const publishOrders = async (): Promise<string[]> => {
      const conversations: string[] = [];
      for (let n = 0; n < COUNT; n++) {
        const id = await edge.publisher.publish({ exchange: '', routingKey: orders }, { n });
        conversations.push((await store.getToken(id))?.conversationId ?? '');
      }
      return conversations;
    };

    /**
     * After the crash: a fresh worker takes over and the edge consumes the shipments, until every order is applied
     * once, every shipment delivered once and no token is in flight. Stops the survivor; answers its stats.
     */
    const recover = async (): Promise<WorkerStats | undefined> => {
      const survivor = start();
      await readyOrDead(survivor);
      const shipmentConsumer = await edge.consume(shipments, deliverShipment);
      const allDelivered = async () => {
        for (let n = 0; n < COUNT; n++) if ((await stateNumber(store, deliveredKey(n))) === 0) return false;
        return (await store.inFlightStats()).count === 0;
      };
      await waitFor('every shipment delivered and no token in flight', allDelivered, {
        timeoutMs: 45_000,
        describe: async () => ({
          inFlight: await store.inFlightStats(),
          output: survivor.output().slice(-2000),
        }),
      });
      for (let n = 0; n < COUNT; n++) {
        expect(await stateNumber(store, appliedKey(n)), `order ${n} applied`).toBe(1);
        expect(await stateNumber(store, deliveredKey(n)), `shipment ${n} delivered`).toBe(1);
      }
      expect(shipmentConsumer.stats.processed).toBe(COUNT);
      expect(await probe.messageCount(deadLetterNames(orders).queue)).toBe(0);

      survivor.child.kill('SIGTERM');
      expect((await survivor.exited).code).toBe(0);
      const stats = survivor.stats();
      expect(stats, survivor.output()).toBeDefined();
      expect(stats?.orders.deadLettered).toBe(0);
      return stats;
    };

    return { store, probe, orders, shipments, start, publishOrders, recover };
  };
}

/**
 * An order consumer process is SIGKILLed at each protocol step (the third time it reaches it, so other messages
 * are in flight), then a fresh one takes over. Shipments are consumed only after the crash, by the test process,
 * so the trace each crash leaves can be checked before it is cleaned up. In the end every order must be applied
 * once and its shipment delivered once, by redelivery or by the relay.
 */
describe.each(STORE_KINDS)('AMQP consumer killed mid-hop (%s store)', (kind) => {
  const openRig = crashRig(kind);

  it.each(CRASH_POINTS)(
    'killed at %s: every order applied once, every shipment delivered once',
    async (crashAt) => {
      const { store, probe, orders, shipments, start, publishOrders, recover } = await openRig();
      // Declared now, consumed only after the crash: shipments sent before it wait in the queue.
      await declareConsumerQueue(probe.channel, shipments, {});

      const doomed = start({ crashAt, crashAfter: 3 });
      await readyOrDead(doomed);
      const conversations = await publishOrders();
      const exit = await doomed.exited;
      expect(exit.signal, doomed.output()).toBe('SIGKILL');

      // The trace of the crash, before anyone repairs it.
      const tokens = await allTokens(store, conversations);
      const roots = tokens.filter((token) => token.parentId === undefined);
      const emitted = tokens.filter((token) => token.parentId !== undefined);
      const consumedOrders = roots.filter((token) => token.status === 'consumed').length;
      const pendingShipments = emitted.filter((token) => token.status === 'pending').length;
      const dispatchedShipments = emitted.filter((token) => token.status === 'dispatched').length;
      switch (crashAt) {
        case 'before-commit':
          expect(consumedOrders).toBeLessThan(COUNT);
          break;
        case 'after-commit':
          expect(pendingShipments).toBeGreaterThan(0); // minted with the commit, never sent
          break;
        case 'after-dispatch':
          // Sent and confirmed, never marked: more shipments wait in the queue than tokens say were dispatched.
          await waitFor(
            'confirmed shipments to be countable',
            async () => (await probe.messageCount(shipments)) > dispatchedShipments,
          );
          expect(pendingShipments).toBeGreaterThan(0);
          break;
        case 'before-ack':
          // Consumed, yet its message is back in the queue: the broker never got the ack.
          await waitFor(
            'an unacked order back in the queue',
            async () => consumedOrders + (await probe.messageCount(orders)) > COUNT,
          );
          break;
      }

      const stats = await recover();
      if (crashAt === 'after-commit') expect(stats?.relay?.dispatched).toBeGreaterThan(0);
      if (crashAt === 'after-commit' || crashAt === 'before-ack')
        expect(stats?.orders.dropped).toBeGreaterThan(0);
    },
  );
});

const BATCH_CRASH_POINTS: readonly CrashPoint[] = [
  'after-group-commit',
  'after-some-published',
  'before-multiple-ack',
];

/**
 * The same order consumer killed inside a batch: the orders are all in the queue before it subscribes, so its
 * prefetch window (4) arrives at once and runs as one batch. It is killed after the batch's group commit (nothing
 * sent or acked), once the broker has confirmed part of the batch's shipments (the orders acked, no shipment
 * marked), and just before the one ack that settles the batch. A fresh process takes over; every order is
 * applied once and every shipment delivered once.
 */
describe.each(STORE_KINDS)('AMQP consumer killed inside a batch (%s store)', (kind) => {
  const openRig = crashRig(kind);

  it.each(BATCH_CRASH_POINTS)(
    'killed at %s: every order applied once, every shipment delivered once',
    async (crashAt) => {
      const { store, probe, orders, shipments, start, publishOrders, recover } = await openRig();
      await declareConsumerQueue(probe.channel, orders, {});
      await declareConsumerQueue(probe.channel, shipments, {});
      const conversations = await publishOrders();
      await waitFor('every order in the queue', async () => (await probe.messageCount(orders)) === COUNT);

      const doomed = start({ crashAt, crashAfter: 1 });
      const exit = await doomed.exited;
      expect(exit.signal, doomed.output()).toBe('SIGKILL');

      // The trace of the crash, before anyone repairs it.
      const tokens = await allTokens(store, conversations);
      const consumedOrders = tokens.filter((t) => t.parentId === undefined && t.status === 'consumed').length;
      const emitted = tokens.filter((t) => t.parentId !== undefined);
      const pendingShipments = emitted.filter((t) => t.status === 'pending').length;
      expect(consumedOrders, 'a batch of several hops committed').toBeGreaterThan(1);
      // The crashing batch's shipments were never marked: the marks come after confirms the process never heard.
      expect(pendingShipments).toBeGreaterThan(1);
      const unacked = async () => consumedOrders + (await probe.messageCount(orders)) > COUNT;
      switch (crashAt) {
        case 'after-group-commit':
          // Committed, nothing of it handed to the broker, nothing acked: the orders come back.
          await waitFor('the batch back in the queue', unacked);
          expect(await probe.messageCount(shipments)).toBeLessThan(consumedOrders);
          break;
        case 'after-some-published':
          // The broker has confirmed part of the batch's shipments; their tokens are still pending.
          await waitFor(
            'a confirmed shipment in its queue',
            async () => (await probe.messageCount(shipments)) > 0,
          );
          break;
        case 'before-multiple-ack':
          await waitFor('the batch back in the queue', unacked);
          break;
      }

      const stats = await recover();
      if (crashAt !== 'after-some-published') {
        // The batch's shipments never left: the relay sent them, and the redelivered orders were dropped.
        expect(stats?.relay?.dispatched).toBeGreaterThan(0);
        expect(stats?.orders.dropped).toBeGreaterThan(0);
      }
    },
  );
});
