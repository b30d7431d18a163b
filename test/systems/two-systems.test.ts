import { afterEach, describe, expect, it } from 'vitest';
import { appliedKey, B_ROUTE, type Order, shippedKey } from '../../scripts/two-systems.js';
import type { CrashPoint } from '../../src/core/crash.js';
import { newTokenId } from '../../src/core/ids.js';
import type { TokenStore } from '../../src/core/store.js';
import type { TokenRecord, TokenStatus } from '../../src/core/token.js';
import { openStore } from '../../src/stores/open.js';
import { type AmqpTollgate, createAmqpTollgate, deadLetterNames } from '../../src/transports/amqp/index.js';
import { messageForToken } from '../../src/transports/amqp/message.js';
import {
  AMQP_URL,
  BrokerProbe,
  stateNumber,
  tokensWithStatus,
  uniqueName,
  waitFor,
} from '../amqp/support.js';
import { post, stablePort, tokenHeader } from '../http/support.js';
import { stopLeftovers } from '../support/leftovers.js';
import { freshStoreConfig } from '../support/stores.js';
import { type RunningSystem, type SystemASpec, type SystemBSpec, startSystem } from './support.js';

const COUNT = 8;
/** The crashing process dies the third time it reaches its crash point, so other orders are in flight. */
const CRASH_AFTER = 3;
const RELAY_DELAY_MS = 500;

/** One order as each side knows it: A's root token, the HTTP token A sent to B (the same id in both stores). */
interface Sent {
  orderId: string;
  root: TokenRecord;
  hop?: TokenRecord;
}

/**
 * Two systems that share no store, each its own process: A on SQLite consumes orders and sends each to B's
 * exactly-once route over HTTP (the token issued at B first); B on PostgreSQL applies it and books a shipment on
 * its own queue. One of them is SIGKILLed at a step of the hop and restarted, duplicates are thrown at both, and
 * in the end every order is applied once on each side and nothing is left pending in either store.
 */
describe('two systems, two stores: A (SQLite) → HTTP → B (PostgreSQL) → AMQP → B', () => {
  const systems: RunningSystem[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  afterEach(() => stopLeftovers(systems, cleanups));

  it.each([
    ['a', 'after-issue', 'issued'],
    ['a', 'after-dispatch', 'consumed'],
    ['b', 'before-respond', 'consumed'],
  ] as const)(
    'system %s killed %s: every order applied once in A and in B, shipped once, nothing pending',
    async (victim, crashAt: CrashPoint, atBWhenKilled: TokenStatus) => {
      const aConfig = freshStoreConfig('sqlite');
      const aStore = await openStore(aConfig); // A's process and the test share the SQLite file
      const bConfig = freshStoreConfig('postgres');
      const bStore = await openStore(bConfig); // creates B's schema before B's process opens it
      const probe = await BrokerProbe.open();
      const queue = uniqueName('a-orders');
      const shipments = uniqueName('b-shipments');
      let edge: AmqpTollgate | undefined;
      cleanups.push(async () => {
        await edge?.close();
        await probe.cleanUp([queue, shipments]);
        await probe.close();
        await aStore.close();
        await bStore.close();
      });

      const key = `b-key-${newTokenId()}`;
      const port = await stablePort();
      const bSpec: SystemBSpec = {
        system: 'b',
        store: bConfig,
        amqpUrl: AMQP_URL,
        relayDelayMs: RELAY_DELAY_MS,
        shipments,
        port,
        key,
      };
      const aSpec: SystemASpec = {
        system: 'a',
        store: aConfig,
        amqpUrl: AMQP_URL,
        relayDelayMs: RELAY_DELAY_MS,
        queue,
        receiver: `http://127.0.0.1:${port}`,
        key,
      };
      const crash = { at: crashAt, after: CRASH_AFTER };
      const start = async (spec: SystemASpec | SystemBSpec, crashing: boolean) => {
        const system = await startSystem(spec, crashing ? crash : undefined);
        systems.push(system);
        return system;
      };
      let b = await start(bSpec, victim === 'b');
      let a = await start(aSpec, victim === 'a');

      // Orders enter A as an edge would publish them: a token minted in A's store, the message on A's queue.
      edge = await createAmqpTollgate({
        url: AMQP_URL,
        store: aStore,
        name: 'tg-test-systems',
        relay: false,
      });
      const sent: Sent[] = [];
      for (let n = 0; n < COUNT; n++) {
        const orderId = `order-${n}`;
        const id = await edge.publisher.publish({ exchange: '', routingKey: queue }, { orderId });
        sent.push({ orderId, root: (await aStore.getToken(id))! });
      }
      // A duplicate delivery: the same message with the same token, published again (built from the payload
      // sent, since a consumed token no longer keeps it).
      const publishAgain = ({ root, orderId }: Sent) => {
        const copy = messageForToken({ ...root, payload: { orderId } }, '', queue);
        probe.channel.publish(copy.exchange, copy.routingKey, copy.body, copy.properties);
      };
      publishAgain(sent[0]!);

      const doomed = victim === 'a' ? a : b;
      const exit = await Promise.race([
        doomed.exited,
        new Promise((resolve) => setTimeout(() => resolve('still running after 20 s'), 20_000)),
      ]);
      expect(exit, doomed.output()).toMatchObject({ signal: 'SIGKILL' });

      // The trace of the crash, before anything repairs it: a token A still holds pending is issued at B but
      // never sent (after-issue), or already consumed at B (after-dispatch, before-respond).
      await findHops(aStore, sent);
      const stranded = await atBWhilePendingInA(aStore, bStore, sent);
      expect(stranded, doomed.output()).toContain(atBWhenKilled);

      // The victim comes back; B on the same port, so A's retries and relay reach it.
      if (victim === 'a') a = await start(aSpec, false);
      else b = await start(bSpec, false);
      publishAgain(sent[1]!);
      await duplicateRequests(bStore, port, sent);

      const settled = async () => {
        for (const { orderId } of sent)
          if ((await stateNumber(bStore, shippedKey(orderId))) === 0) return false;
        // A's HTTP tokens end dispatched (B consumed them in its own store); B's end consumed.
        if ((await tokensWithStatus(aStore, 'pending')) > 0) return false;
        return (await bStore.inFlightStats()).count === 0;
      };
      await waitFor('every order shipped in B and no token left pending in A or B', settled, {
        timeoutMs: 30_000,
        describe: async () => ({
          pendingInA: await tokensWithStatus(aStore, 'pending'),
          inFlightInB: await bStore.inFlightStats(),
          a: a.output().slice(-1500),
          b: b.output().slice(-1500),
        }),
      });

      // Late duplicates once everything settled: a delivery into A, and every used token sent straight to B.
      publishAgain(sent[2]!);
      await findHops(aStore, sent);
      const replays = await duplicateRequests(bStore, port, sent);
      expect(replays).toBe(COUNT);
      await waitFor('A to take the late duplicate', async () => (await probe.messageCount(queue)) === 0);
      for (const system of [a, b]) {
        system.process.kill('SIGTERM');
        expect((await system.exited).code, system.output()).toBe(0);
      }
      expect(a.stats()?.dropped, a.output()).toBeGreaterThanOrEqual(1);

      for (const { orderId, root, hop } of sent) {
        expect(await stateNumber(aStore, appliedKey(orderId)), `${orderId} applied in A`).toBe(1);
        expect(await stateNumber(bStore, appliedKey(orderId)), `${orderId} applied in B`).toBe(1);
        expect(await stateNumber(bStore, shippedKey(orderId)), `${orderId} shipped in B`).toBe(1);
        expect((await aStore.getToken(root.id))?.status).toBe('consumed');
        expect(hop?.status, `${orderId}'s hop in A`).toBe('dispatched');
        // The conversation enters B with A's conversation id and parent.
        const atB = await bStore.getToken(hop!.id);
        expect(atB).toMatchObject({
          status: 'consumed',
          conversationId: root.conversationId,
          parentId: root.id,
        });
        const inB = (await bStore.listConversation(root.conversationId)).items;
        expect(inB.map((token) => token.status)).toEqual(['consumed', 'consumed']);
      }
      expect(await tokensWithStatus(aStore, 'pending')).toBe(0);
      expect((await bStore.inFlightStats()).count).toBe(0);
      expect(await probe.messageCount(deadLetterNames(queue).queue)).toBe(0);
      expect(await probe.messageCount(deadLetterNames(shipments).queue)).toBe(0);
    },
  );
});

/** Fills in (and refreshes) each order's HTTP token from A's store: the token A's handler emitted. */
async function findHops(aStore: TokenStore, sent: Sent[]): Promise<void> {
  for (const order of sent) {
    const tokens = (await aStore.listConversation(order.root.conversationId)).items;
    order.hop = tokens.find((token) => token.parentId === order.root.id) ?? order.hop;
  }
}

/** For each HTTP token A still holds pending (not known sent), its status in B's store. */
async function atBWhilePendingInA(
  aStore: TokenStore,
  bStore: TokenStore,
  sent: readonly Sent[],
): Promise<Array<TokenStatus | 'absent'>> {
  const statuses: Array<TokenStatus | 'absent'> = [];
  for (const { hop } of sent) {
    if (!hop || (await aStore.getToken(hop.id))?.status !== 'pending') continue;
    statuses.push((await bStore.getToken(hop.id))?.status ?? 'absent');
  }
  return statuses;
}

/**
 * Sends every HTTP token B already consumed straight to B's route again, twice at once, as a client retrying
 * would: each copy gets B's kept answer, marked a duplicate. Returns how many tokens were replayed.
 */
async function duplicateRequests(bStore: TokenStore, port: number, sent: readonly Sent[]): Promise<number> {
  let replayed = 0;
  for (const { orderId, hop } of sent) {
    if (!hop || (await bStore.getToken(hop.id))?.status !== 'consumed') continue;
    const body: Order = { orderId };
    const copy = () => post(`http://127.0.0.1:${port}${B_ROUTE}`, body, tokenHeader(hop.id));
    for (const answer of await Promise.all([copy(), copy()])) {
      expect(answer.status, answer.body).toBe(201);
      expect(answer.headers.get('exactly-once-status')).toBe('duplicate');
      expect(answer.json).toEqual({ orderId, accepted: true });
    }
    replayed += 1;
  }
  return replayed;
}
