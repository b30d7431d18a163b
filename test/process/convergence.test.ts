import { describe, expect, it } from 'vitest';
import { defineProcess } from '../../src/entries/process.js';
import { checkConvergence } from '../../src/entries/testing.js';
import { cancelled, hastyPayment, LEDGER, payment, received, requested } from './fixtures/payment.js';

const timedOut = { timeout: 'payment' };

describe('checkConvergence', () => {
  it('finds the payment process convergent over all 6 orders of its three inputs, with duplicates', async () => {
    const report = await checkConvergence(payment, [received, timedOut, cancelled], { given: [requested] });
    expect(report.message).toContain('converges');
    expect(report).toMatchObject({ converged: true, exhaustive: true, orders: 6, runs: 12, skipped: 0 });
    // Every order refunds the payment and ends the instance.
    expect(report.expected.outcome).toEqual({
      instances: {},
      emitted: [
        { destination: LEDGER, payload: { type: 'PaymentCaptured', orderId: 'o-1', amount: 30 } },
        { destination: LEDGER, payload: { type: 'RefundPayment', orderId: 'o-1', amount: 30 } },
      ],
      failed: [],
    });
  });

  it('catches a process that finishes too early, and reports the diverging order closest to the given one', async () => {
    const report = await checkConvergence(hastyPayment, [received, timedOut, cancelled], {
      given: [requested],
    });
    expect(report.converged).toBe(false);
    expect(report.diverging).toMatchObject({
      order: ['timeout:payment', 'PaymentReceived', 'OrderCancelled'],
      reason: 'emitted',
      inversions: 1,
    });
    expect(report.expected.order).toEqual(['PaymentReceived', 'timeout:payment', 'OrderCancelled']);
    expect(report.message).toContain('does not converge (emitted) after PaymentRequested');
  });

  it('skips orders in which a timeout fires before any step scheduled it', async () => {
    const report = await checkConvergence(payment, [requested, cancelled, timedOut]);
    // The 3 orders with the timeout before PaymentRequested cannot happen; a cancellation before it is ignored.
    expect(report).toMatchObject({ converged: true, orders: 6, skipped: 3, runs: 6 });
    expect(report.expected.outcome?.instances).toEqual({
      'o-1': { state: { orderId: 'o-1', amount: 30, paid: false, closed: true }, timeouts: [] },
    });
  });

  it('shows the race a timeout is: paid in time, or refunded when the payment comes after it', async () => {
    const report = await checkConvergence(payment, [received, timedOut], { given: [requested] });
    expect(report.diverging).toMatchObject({
      order: ['timeout:payment', 'PaymentReceived'],
      reason: 'state',
    });
  });

  it('refuses inputs whose given order cannot happen', async () => {
    await expect(checkConvergence(payment, [timedOut, requested])).rejects.toMatchObject({
      code: 'TOLLGATE_ERR_INVALID_ARGUMENT',
    });
  });

  it('reports a step that decides differently when run twice on the same state', async () => {
    const dice = defineProcess<{ n: number }>({
      name: 'dice',
      correlate: () => 'one',
      initial: () => ({ n: 0 }),
      on: { Roll: () => ({ state: { n: Math.random() } }) },
    });
    const report = await checkConvergence(dice, [{ type: 'Roll' }]);
    expect(report.diverging?.reason).toBe('nondeterministic-step');
  });

  it('records failing inputs in the outcome, so an order in which a step throws diverges', async () => {
    const picky = defineProcess<{ opened: boolean }>({
      name: 'picky',
      correlate: () => 'one',
      initial: () => ({ opened: false }),
      on: {
        Open: () => ({ state: { opened: true } }),
        Close: (state) => {
          if (!state.opened) throw new Error('not open');
          return { state, done: true };
        },
      },
    });
    const report = await checkConvergence(picky, [{ type: 'Open' }, { type: 'Close' }]);
    expect(report.diverging).toMatchObject({ order: ['Close', 'Open'], reason: 'state' });
    expect(report.diverging?.outcome?.failed).toEqual(['Close: TOLLGATE_ERR_HANDLER_FAILED']);
  });

  it('tries every one of the 40320 orders of 8 inputs', async () => {
    const report = await checkConvergence(
      counter,
      Array.from({ length: 8 }, (_, i) => ({ type: 'Add', n: i + 1 })),
      { duplicates: false },
    );
    expect(report).toMatchObject({ converged: true, exhaustive: true, orders: 40_320, runs: 40_320 });
    expect(report.expected.outcome?.instances).toEqual({ one: { state: { total: 36 }, timeouts: [] } });
  }, 60_000);

  describe('beyond 8 inputs', () => {
    const twelve = Array.from({ length: 12 }, (_, i) => ({ type: 'Add', n: i + 1 }));

    it('samples orders with fast-check, seeded', async () => {
      const report = await checkConvergence(counter, twelve, { samples: 200, seed: 42 });
      expect(report).toMatchObject({ converged: true, exhaustive: false, orders: 200, runs: 400, seed: 42 });
      expect(report.message).toContain('200 sampled orders (seed 42)');
    });

    it('finds a divergence, moves it to one swap from the given order, and replays it from the seed', async () => {
      const run = () => checkConvergence(lastWins, twelve, { samples: 200, seed: 7 });
      const report = await run();
      expect(report.converged).toBe(false);
      expect(report.diverging).toMatchObject({ reason: 'state', inversions: 1 });
      expect(report.diverging?.order.slice(-2)).toEqual(['Add#12', 'Add#11']);
      expect((await run()).diverging).toEqual(report.diverging);
    });
  });
});

const counter = defineProcess<{ total: number }, { type: 'Add'; n: number }>({
  name: 'counter',
  correlate: () => 'one',
  initial: () => ({ total: 0 }),
  on: { Add: (state, signal) => ({ state: { total: state.total + signal.n } }) },
});

const lastWins = defineProcess<{ last: number }, { type: 'Add'; n: number }>({
  name: 'last-wins',
  correlate: () => 'one',
  initial: () => ({ last: 0 }),
  on: { Add: (_, signal) => ({ state: { last: signal.n } }) },
});
