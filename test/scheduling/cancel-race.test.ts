import { afterEach, describe, expect, it } from 'vitest';
import type { JsonValue } from '../../src/core/fingerprint.js';
import { pendingToken } from '../../src/core/mint.js';
import type { Handler } from '../../src/core/processor.js';
import type { TokenStore } from '../../src/core/store.js';
import { defineProcess, instanceKey } from '../../src/process/define.js';
import { processHandler } from '../../src/process/handler.js';
import { openStore } from '../../src/stores/open.js';
import { queueDestination } from '../../src/transports/amqp/destination.js';
import { type AmqpTollgate, createAmqpTollgate } from '../../src/transports/amqp/tollgate.js';
import { AMQP_URL, BrokerProbe, stateNumber, uniqueName, waitFor } from '../amqp/support.js';
import { freshStoreConfig, STORE_KINDS } from '../support/stores.js';

/**
 * A timeout and the signal that cancels it, arriving together. Each of ROUNDS rounds schedules a timeout, and its
 * cancel is published at the timeout's due time plus an offset that sweeps across the moment the relay fires it
 * (the relay looks for due tokens every 10 ms here). Whichever wins, the other must not take effect: the round
 * converges to "cancelled" or to "timed out, then the cancel came too late", never to both applied.
 */

const ROUNDS = 30;
/**
 * When each round's cancel is sent: an offset from the due time (ms), dense where the relay claims and sends; or,
 * to be sure both sides are reached whatever the store's speed, only once the timeout was applied.
 */
const OFFSETS: ReadonlyArray<number | 'after-fired'> = [
  -300,
  -100,
  -40,
  -15,
  -5,
  0,
  5,
  10,
  15,
  20,
  30,
  45,
  70,
  150,
  'after-fired',
];
const FIRST_DUE_MS = 2_500;
const ROUND_SPACING_MS = 40;

type RaceSignal =
  | { kind: 'start'; i: number; at: number }
  | { kind: 'cancel'; i: number }
  | { kind: 'timeout'; i: number };

const timeoutIdKey = (i: number) => `timeout/${i}`;
const cancelledKey = (i: number) => `cancelled/${i}`;
const lateCancelKey = (i: number) => `late-cancel/${i}`;
const timedOutKey = (i: number) => `timed-out/${i}`;

/** Plain handlers: the cancel records that it won only if `ctx.cancel` staged the revoke in its own commit. */
function raceHandler(queue: string): Handler<RaceSignal, void> {
  const bump = async (ctx: Parameters<Handler<RaceSignal, void>>[0], key: string) => {
    ctx.put(key, ((await ctx.get<number>(key)) ?? 0) + 1);
  };
  return async (ctx) => {
    const signal = ctx.payload;
    if (signal.kind === 'start') {
      const timeout = ctx.schedule(
        queueDestination(queue),
        { kind: 'timeout', i: signal.i },
        { at: signal.at },
      );
      ctx.put(timeoutIdKey(signal.i), timeout.id);
    } else if (signal.kind === 'cancel') {
      const id = await ctx.get<string>(timeoutIdKey(signal.i));
      if (id === undefined) throw new Error(`round ${signal.i} not started yet`);
      await bump(ctx, (await ctx.cancel(id)) ? cancelledKey(signal.i) : lateCancelKey(signal.i));
    } else {
      // Deliberately unguarded: a cancelled timeout that still got here would show as applied.
      await bump(ctx, timedOutKey(signal.i));
    }
  };
}

type PaymentSignal =
  | { type: 'OrderPlaced'; orderId: string; at: number }
  | { type: 'PaymentReceived'; orderId: string }
  | { type: 'PaymentTimedOut'; orderId: string };
type PaymentState = { status: 'awaiting' | 'paid' | 'expired'; applied: string[] };

/** The seed's payment process; its timeout step is unguarded, so a cancelled timeout applied would show. */
function paymentProcess(queue: string) {
  return defineProcess<PaymentState, PaymentSignal>({
    name: 'payment-race',
    correlate: (signal) => signal.orderId,
    initial: () => ({ status: 'awaiting', applied: [] }),
    startedBy: ['OrderPlaced'],
    on: {
      OrderPlaced: (state, signal) => ({
        state: { ...state, applied: [...state.applied, signal.type] },
        schedule: [
          {
            name: 'payment',
            destination: queueDestination(queue),
            payload: { type: 'PaymentTimedOut', orderId: signal.orderId },
            at: signal.at,
          },
        ],
      }),
      PaymentReceived: (state, signal) => ({
        state: {
          status: state.status === 'expired' ? 'expired' : 'paid',
          applied: [...state.applied, signal.type],
        },
        cancel: ['payment'],
      }),
      PaymentTimedOut: (state, signal) => ({
        state: { status: 'expired', applied: [...state.applied, signal.type] },
      }),
    },
  });
}

/**
 * Publishes each round's start now, and its cancel at its due time plus its offset. The cancels' tokens are minted
 * beforehand, so that at its moment a cancel is only sent.
 */
async function runRounds(
  store: TokenStore,
  edge: AmqpTollgate,
  queue: string,
  start: (i: number, at: number) => JsonValue,
  cancel: (i: number) => JsonValue,
  started: () => Promise<boolean>,
  fired: (i: number) => Promise<boolean>,
): Promise<void> {
  const cancels = Array.from({ length: ROUNDS }, (_, i) =>
    pendingToken(
      { destination: queueDestination(queue), payload: cancel(i) },
      { mintedBy: 'race', now: Date.now() },
    ),
  );
  await store.mint(cancels);
  const firstDue = Date.now() + FIRST_DUE_MS;
  const dueAt = (i: number) => firstDue + i * ROUND_SPACING_MS;
  const target = { exchange: '', routingKey: queue };
  await Promise.all(
    Array.from({ length: ROUNDS }, (_, i) => edge.publisher.publish(target, start(i, dueAt(i)))),
  );
  await waitFor('every round started', started, { timeoutMs: FIRST_DUE_MS - 200 });
  await Promise.all(
    cancels.map(async (token, i) => {
      const offset = OFFSETS[i % OFFSETS.length] as number | 'after-fired';
      if (offset === 'after-fired') await waitFor(`round ${i}'s timeout applied`, () => fired(i));
      else await new Promise((resolve) => setTimeout(resolve, Math.max(0, dueAt(i) + offset - Date.now())));
      const report = await edge.publisher.dispatcher.dispatch([token], 'edge');
      expect(report.dispatched).toEqual([token.id]);
    }),
  );
}

describe.each(STORE_KINDS)('a timeout and its cancel arriving together (%s store)', (kind) => {
  const cleanups: Array<() => Promise<void>> = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function rig(): Promise<{ store: TokenStore; edge: AmqpTollgate; queue: string }> {
    const store = await openStore(freshStoreConfig(kind));
    const probe = await BrokerProbe.open();
    const queue = uniqueName('race');
    const edge = await createAmqpTollgate({
      url: AMQP_URL,
      store,
      name: 'tg-test-cancel-race',
      // The cancels' tokens wait, minted, for their moment: the pending relay must not send them first.
      relay: { dueIntervalMs: 10, intervalMs: 500, delayMs: 60_000 },
    });
    cleanups.push(async () => {
      await edge.close();
      await store.close();
      await probe.cleanUp([queue]);
      await probe.close();
    });
    return { store, edge, queue };
  }

  it(`ctx.cancel against a firing timeout, ${ROUNDS} rounds: each round is cancelled or timed out, never both`, async () => {
    const { store, edge, queue } = await rig();
    await edge.consume(queue, raceHandler(queue), { concurrency: 16 });
    await runRounds(
      store,
      edge,
      queue,
      (i, at) => ({ kind: 'start', i, at }),
      (i) => ({ kind: 'cancel', i }),
      async () => (await store.readState(timeoutIdKey(ROUNDS - 1))) !== undefined,
      async (i) => (await stateNumber(store, timedOutKey(i))) === 1,
    );
    const settled = async (i: number) =>
      (await stateNumber(store, cancelledKey(i))) + (await stateNumber(store, lateCancelKey(i))) === 1;
    await waitFor(
      'every round settled and nothing in flight',
      async () => {
        for (let i = 0; i < ROUNDS; i++) if (!(await settled(i))) return false;
        return (await store.inFlightStats()).count === 0;
      },
      { timeoutMs: 30_000, describe: async () => store.inFlightStats() },
    );

    const outcomes = { cancelled: 0, timedOut: 0 };
    for (let i = 0; i < ROUNDS; i++) {
      const cancelled = await stateNumber(store, cancelledKey(i));
      const late = await stateNumber(store, lateCancelKey(i));
      const timedOut = await stateNumber(store, timedOutKey(i));
      const timeout = await store.getToken((await store.readState(timeoutIdKey(i)))?.value as string);
      const round = { round: i, cancelled, late, timedOut, timeout: timeout?.status };
      if (cancelled === 1) {
        expect(round).toEqual({ ...round, late: 0, timedOut: 0, timeout: 'revoked' });
        outcomes.cancelled += 1;
      } else {
        expect(round).toEqual({ ...round, cancelled: 0, late: 1, timedOut: 1, timeout: 'consumed' });
        outcomes.timedOut += 1;
      }
    }
    // Both sides were reached (a cancel 300 ms early always wins, one sent after the timeout applied never).
    expect(outcomes.cancelled).toBeGreaterThan(0);
    expect(outcomes.timedOut).toBeGreaterThan(0);
  });

  it(`a payment process paid as its timeout fires, ${ROUNDS} rounds: paid, or expired then paid late; a cancelled timeout never applied`, async () => {
    const { store, edge, queue } = await rig();
    const payment = paymentProcess(queue);
    await edge.consume(queue, processHandler(payment), { concurrency: 16 });
    const orderId = (i: number) => `order-${i}`;
    const instance = async (i: number) =>
      (await store.readState(instanceKey(payment.name, orderId(i))))?.value as
        | { state: PaymentState; timeouts: Record<string, string> }
        | undefined;
    const timeoutIds: string[] = [];
    await runRounds(
      store,
      edge,
      queue,
      (i, at) => ({ type: 'OrderPlaced', orderId: orderId(i), at }),
      (i) => ({ type: 'PaymentReceived', orderId: orderId(i) }),
      async () => {
        for (let i = timeoutIds.length; i < ROUNDS; i++) {
          const id = (await instance(i))?.timeouts.payment;
          if (id === undefined) return false;
          timeoutIds.push(id);
        }
        return true;
      },
      async (i) => (await instance(i))?.state.applied.includes('PaymentTimedOut') === true,
    );
    await waitFor(
      'every payment applied and nothing in flight',
      async () => {
        for (let i = 0; i < ROUNDS; i++) {
          if (!(await instance(i))?.state.applied.includes('PaymentReceived')) return false;
        }
        return (await store.inFlightStats()).count === 0;
      },
      { timeoutMs: 30_000, describe: async () => store.inFlightStats() },
    );

    const PAID = { status: 'paid', applied: ['OrderPlaced', 'PaymentReceived'] };
    const EXPIRED_THEN_PAID = {
      status: 'expired',
      applied: ['OrderPlaced', 'PaymentTimedOut', 'PaymentReceived'],
    };
    const outcomes = { paid: 0, expired: 0 };
    for (let i = 0; i < ROUNDS; i++) {
      const current = await instance(i);
      const timeout = (await store.getToken(timeoutIds[i] as string))?.status;
      expect(current?.timeouts, `round ${i}: no timeout left pending`).toEqual({});
      if (current?.state.status === 'paid') {
        expect({ round: i, state: current.state, timeout }).toEqual({
          round: i,
          state: PAID,
          timeout: 'revoked',
        });
        outcomes.paid += 1;
      } else {
        expect({ round: i, state: current?.state, timeout }).toEqual({
          round: i,
          state: EXPIRED_THEN_PAID,
          timeout: 'consumed',
        });
        outcomes.expired += 1;
      }
    }
    expect(outcomes.paid).toBeGreaterThan(0);
    expect(outcomes.expired).toBeGreaterThan(0);
  });
});
