import { afterEach, describe, expect, it } from 'vitest';
import type { Handler } from '../../src/core/processor.js';
import type { RelayStats } from '../../src/core/relay.js';
import { scheduledToken } from '../../src/core/scheduling.js';
import type { TokenStore } from '../../src/core/store.js';
import type { TokenRecord } from '../../src/core/token.js';
import { openStore, type StoreConfig } from '../../src/stores/open.js';
import { queueDestination } from '../../src/transports/amqp/destination.js';
import { type AmqpTollgate, createAmqpTollgate } from '../../src/transports/amqp/tollgate.js';
import { deadLetterNames, declareConsumerQueue } from '../../src/transports/amqp/topology.js';
import { deliveredKey, deliverShipment, type OrderPayload } from '../amqp/fixtures/scenario.js';
import {
  AMQP_URL,
  BrokerProbe,
  stateNumber,
  tokensWithStatus,
  uniqueName,
  waitFor,
} from '../amqp/support.js';
import { type Child, runFixture } from '../http/support.js';
import { stopLeftovers } from '../support/leftovers.js';
import { freshStoreConfig, STORE_KINDS } from '../support/stores.js';
import type { RelaySpec } from './fixtures/relay-worker.js';

/**
 * Scheduled signals across processes: a relay process dies with a due timeout in its hands, or two relay processes
 * race for the same due tokens. The receiver (this process) counts each timeout it applies under its own key, so a
 * timeout applied twice shows as 2 and one lost as 0.
 */

const COUNT = 10;
/** The timeouts fall due this long after their start signal: after the doomed relay is up and polling. */
const DUE_AFTER_MS = 1_500;
/** The doomed relay's claim lease; the survivor re-sends what it claimed once this has run out. */
const CRASH_LEASE_MS = 2_000;

interface RunningRelay extends Child {
  stats(): RelayStats | undefined;
}

async function startRelay(spec: RelaySpec, crashAt?: 'after-dispatch'): Promise<RunningRelay> {
  const child = runFixture('../../scheduling/fixtures/relay-worker.ts', {
    RELAY_SPEC: JSON.stringify(spec),
    TOLLGATE_CRASH_AT: crashAt ?? '',
  });
  await child.line(/^relay ready$/m, 30_000);
  return {
    ...child,
    stats() {
      const match = child.output().match(/^relay stats (.+)$/m);
      return match ? (JSON.parse(match[1] as string) as RelayStats) : undefined;
    },
  };
}

/** Stops a relay with SIGTERM and returns the stats it printed. */
async function stopRelay(relay: RunningRelay): Promise<RelayStats> {
  relay.process.kill('SIGTERM');
  expect((await relay.exited).code, relay.output()).toBe(0);
  const stats = relay.stats();
  if (!stats) throw new Error(`relay printed no stats:\n${relay.output()}`);
  return stats;
}

/** Starts a process's timeout: one signal to `queue`, due DUE_AFTER_MS after the start is applied. */
function startTimeout(queue: string): Handler<OrderPayload, void> {
  return (ctx) => {
    ctx.schedule(queueDestination(queue), { n: ctx.payload.n }, { afterMs: DUE_AFTER_MS });
  };
}

interface Rig {
  storeConfig: StoreConfig;
  store: TokenStore;
  edge: AmqpTollgate;
  probe: BrokerProbe;
  timeouts: string;
}

describe.each(STORE_KINDS)('scheduled signals across relay processes (%s store)', (kind) => {
  const relays: RunningRelay[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  afterEach(() => stopLeftovers(relays, cleanups));

  /** A store, an edge without a relay, and a declared timeouts queue nobody consumes yet. */
  async function rig(extraQueues: string[] = []): Promise<Rig> {
    const storeConfig = freshStoreConfig(kind);
    const store = await openStore(storeConfig);
    const probe = await BrokerProbe.open();
    const timeouts = uniqueName('timeouts');
    const edge = await createAmqpTollgate({ url: AMQP_URL, store, name: 'tg-test-scheduling', relay: false });
    cleanups.push(async () => {
      await edge.close();
      await store.close();
      await probe.cleanUp([timeouts, ...extraQueues]);
      await probe.close();
    });
    await declareConsumerQueue(probe.channel, timeouts, {});
    return { storeConfig, store, edge, probe, timeouts };
  }

  async function launch(spec: RelaySpec, crashAt?: 'after-dispatch'): Promise<RunningRelay> {
    const relay = await startRelay(spec, crashAt);
    relays.push(relay);
    return relay;
  }

  it.each(['after-claim', 'after-dispatch'] as const)(
    'a relay killed %s of due timeouts: another relay sends them, each applied once',
    async (crash) => {
      const starts = uniqueName('starts');
      const { storeConfig, store, edge, probe, timeouts } = await rig([starts]);
      await edge.consume(starts, startTimeout(timeouts));
      const doomed = await launch(
        {
          storeConfig,
          amqpUrl: AMQP_URL,
          leaseMs: CRASH_LEASE_MS,
          ...(crash === 'after-claim' ? { crash } : {}),
        },
        crash === 'after-dispatch' ? crash : undefined,
      );

      const conversations: string[] = [];
      for (let n = 0; n < COUNT; n++) {
        const id = await edge.publisher.publish({ exchange: '', routingKey: starts }, { n });
        conversations.push((await store.getToken(id))?.conversationId ?? '');
      }
      const exit = await Promise.race([
        doomed.exited,
        new Promise<undefined>((resolve) => setTimeout(resolve, 20_000, undefined)),
      ]);
      expect(exit?.signal, doomed.output()).toBe('SIGKILL');

      // The trace of the crash, before anyone repairs it: timeouts claimed (pending, leased), none acknowledged.
      const timeoutTokens = async (): Promise<TokenRecord[]> => {
        const tokens: TokenRecord[] = [];
        for (const id of conversations) tokens.push(...(await store.listConversation(id)).items);
        return tokens.filter((token) => token.parentId !== undefined);
      };
      const atCrash = await timeoutTokens();
      expect(atCrash).toHaveLength(COUNT);
      const claimed = atCrash.filter((token) => token.status === 'pending');
      expect(claimed.length).toBeGreaterThan(0);
      for (const token of claimed) {
        expect(token.dueAt).toBeLessThanOrEqual(Date.now());
        expect(token.leaseUntil).toBeGreaterThan(token.dueAt as number);
      }
      expect(atCrash.every((token) => token.status === 'pending' || token.status === 'scheduled')).toBe(true);
      const sentBeforeCrash = await probe.messageCount(timeouts);
      if (crash === 'after-claim') expect(sentBeforeCrash).toBe(0);
      else expect(sentBeforeCrash).toBeGreaterThan(0); // confirmed by the broker, never marked dispatched

      // Another relay process takes over; the receiver starts once it has sent everything, so copies meet it too.
      const survivor = await launch({ storeConfig, amqpUrl: AMQP_URL, leaseMs: 30_000 });
      await waitFor(
        'every timeout sent by the survivor',
        async () => (await timeoutTokens()).every((token) => token.status === 'dispatched'),
        { timeoutMs: 20_000, describe: async () => (await timeoutTokens()).map((token) => token.status) },
      );
      const receiver = await edge.consume(timeouts, deliverShipment);
      await waitFor(
        'every timeout applied and nothing in flight',
        async () => {
          for (let n = 0; n < COUNT; n++) if ((await stateNumber(store, deliveredKey(n))) === 0) return false;
          return (await store.inFlightStats()).count === 0 && (await probe.messageCount(timeouts)) === 0;
        },
        { timeoutMs: 20_000, describe: async () => ({ inFlight: await store.inFlightStats() }) },
      );
      for (let n = 0; n < COUNT; n++) {
        expect(await stateNumber(store, deliveredKey(n)), `timeout ${n} applied`).toBe(1);
      }
      expect(receiver.stats.processed).toBe(COUNT);
      // The doomed relay's copies are the only duplicates, and the receiver dropped each of them.
      expect(receiver.stats.dropped).toBe(sentBeforeCrash);
      expect(receiver.stats.deadLettered).toBe(0);
      expect(await probe.messageCount(deadLetterNames(timeouts).queue)).toBe(0);

      const stats = await stopRelay(survivor);
      // What the doomed relay had claimed, the survivor re-sent after the lease; the rest it claimed when due.
      expect(stats.claimed).toBe(claimed.length);
      expect(stats.due).toBe(COUNT - claimed.length);
    },
  );

  it('two relay processes racing for the same 200 due tokens: each token claimed by one, sent once, applied once', async () => {
    const { storeConfig, store, edge, probe, timeouts } = await rig();
    const receiver = await edge.consume(timeouts, deliverShipment, { concurrency: 16 });
    const spec: RelaySpec = { storeConfig, amqpUrl: AMQP_URL, leaseMs: 30_000, batchSize: 10 };
    const [a, b] = await Promise.all([launch(spec), launch(spec)]);

    // Due in 40 waves over 2 s, so both relays' due timers find work.
    const total = 200;
    const firstDue = Date.now() + 1_500;
    const tokens = Array.from({ length: total }, (_, n) =>
      scheduledToken(
        { destination: queueDestination(timeouts), payload: { n } },
        { mintedBy: 'race', now: Date.now() },
        firstDue + (n % 40) * 50,
      ),
    );
    for (let i = 0; i < total; i += 25) await store.mint(tokens.slice(i, i + 25));

    await waitFor(
      'all 200 applied and nothing in flight',
      async () =>
        receiver.stats.processed >= total &&
        (await store.inFlightStats()).count === 0 &&
        (await probe.messageCount(timeouts)) === 0,
      {
        timeoutMs: 40_000,
        describe: async () => ({ receiver: receiver.stats, inFlight: await store.inFlightStats() }),
      },
    );
    for (let n = 0; n < total; n++) expect(await stateNumber(store, deliveredKey(n)), `token ${n}`).toBe(1);
    expect(await tokensWithStatus(store, 'scheduled')).toBe(0);
    expect(await tokensWithStatus(store, 'pending')).toBe(0);
    expect(await tokensWithStatus(store, 'consumed')).toBe(total);
    // Sent once each: no copy reached the receiver, so no token was claimed by both relays.
    expect(receiver.stats.processed).toBe(total);
    expect(receiver.stats.dropped).toBe(0);

    const [statsA, statsB] = await Promise.all([stopRelay(a as RunningRelay), stopRelay(b as RunningRelay)]);
    expect(statsA.due + statsB.due).toBe(total);
    expect(statsA.due, 'relay A fired some').toBeGreaterThan(0);
    expect(statsB.due, 'relay B fired some').toBeGreaterThan(0);
    expect(statsA.claimed + statsB.claimed, 'nothing needed a re-send').toBe(0);
  });
});
