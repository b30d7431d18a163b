import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import type { JsonValue } from '../../src/core/fingerprint.js';
import { type Processed, processSignal } from '../../src/core/processor.js';
import type { TokenStore } from '../../src/core/store.js';
import type { TokenRecord } from '../../src/core/token.js';
import {
  defineProcess,
  instanceKey,
  type ProcessInstance,
  processHandler,
  readProcessInstance,
  type StepReport,
} from '../../src/entries/process.js';
import { mintTestToken } from '../../src/entries/testing.js';
import { freshStore, STORE_KINDS } from '../support/stores.js';
import { cancelled, PAYMENT_WINDOW_MS, payment, received, requested } from './fixtures/payment.js';

const handler = processHandler(payment);

describe.each(STORE_KINDS)('a process on %s', (kind) => {
  let store: TokenStore;
  afterEach(async () => {
    await store?.close();
  });

  /** One signal through the real protocol: minted, then received by the process's handler. */
  async function deliver(payload: JsonValue, token?: TokenRecord) {
    const minted = token ?? (await mintTestToken(store, payload));
    return processSignal({ store, endpoint: 'payments', tokenId: minted.id, payload, handler });
  }
  async function step(payload: JsonValue): Promise<StepReport> {
    const outcome = await deliver(payload);
    expect(outcome.kind).toBe('processed');
    return (outcome as Processed<StepReport>).result;
  }
  /** What the relay does when the timeout is due: claims it (scheduled → pending) and sends it. */
  async function fire(tokenId: string) {
    const token = (await store.getToken(tokenId)) as TokenRecord;
    const [claimed] = await store.claimDue({ now: (token.dueAt as number) + 1, leaseMs: 30_000, limit: 10 });
    expect(claimed?.id).toBe(tokenId);
    return deliver(token.payload as JsonValue, claimed);
  }
  const instance = async () =>
    (await store.readState(instanceKey('payment', 'o-1')))?.value as ProcessInstance | undefined;

  it('keeps the instance, schedules its timeout, cancels it with the signal that makes it moot, and ends', async () => {
    store = await freshStore(kind);
    const before = Date.now();
    const started = await step(requested);
    expect(started).toMatchObject({ process: 'payment', id: 'o-1', outcome: 'started', cancelled: [] });
    const timeoutId = started.scheduled.payment as string;
    const timeout = (await store.getToken(timeoutId)) as TokenRecord;
    expect(timeout.status).toBe('scheduled');
    expect(timeout.dueAt).toBeGreaterThanOrEqual(before + PAYMENT_WINDOW_MS);
    expect(timeout.payload).toEqual({ type: 'PaymentTimedOut', orderId: 'o-1' });
    expect(await instance()).toMatchObject({
      state: { orderId: 'o-1', amount: 30, paid: false, closed: false },
      timeouts: { payment: timeoutId },
    });

    // The cancellation closes the order and revokes the timeout in the same commit.
    const closed = await step(cancelled);
    expect(closed).toMatchObject({ outcome: 'updated', cancelled: ['payment'] });
    expect((await store.getToken(timeoutId))?.status).toBe('revoked');
    expect(await instance()).toMatchObject({ state: { closed: true }, timeouts: {} });
    // A timeout that was cancelled can never be applied.
    expect(
      await store.claimDue({ now: Date.now() + 2 * PAYMENT_WINDOW_MS, leaseMs: 1000, limit: 10 }),
    ).toEqual([]);

    // A late payment is captured and refunded, and the process ends: its instance is gone.
    const done = await step(received);
    expect(done.outcome).toBe('done');
    const sent = await Promise.all(done.emitted.map((id) => store.getToken(id)));
    expect(sent.map((token) => (token?.payload as { type?: string } | undefined)?.type)).toEqual([
      'PaymentCaptured',
      'RefundPayment',
    ]);
    expect(await instance()).toBeUndefined();
  });

  it('applies a timeout that fires, and drops the fired copy when it comes again', async () => {
    store = await freshStore(kind);
    const timeoutId = (await step(requested)).scheduled.payment as string;
    const fired = await fire(timeoutId);
    expect(fired).toMatchObject({ kind: 'processed', result: { outcome: 'updated' } });
    // Fired: no longer pending, so the instance no longer lists it.
    expect(await instance()).toMatchObject({ state: { closed: true, paid: false }, timeouts: {} });
    // The consumed token keeps no payload: the copy carries the one it was minted with.
    const copy = { type: 'PaymentTimedOut', orderId: 'o-1' };
    const token = (await store.getToken(timeoutId)) as TokenRecord;
    expect(await deliver(copy, token)).toMatchObject({ kind: 'dropped' });
  });

  it('revokes the timeouts still pending when the process ends', async () => {
    store = await freshStore(kind);
    const reminder = defineProcess<{ n: number }>({
      name: 'reminder',
      correlate: () => 'r-1',
      initial: () => ({ n: 0 }),
      on: {
        Start: (state) => ({
          state,
          schedule: ['remind', 'expire'].map((name, i) => ({
            name,
            destination: { medium: 'amqp', exchange: '', routingKey: 'reminders' },
            payload: { type: 'Finish' },
            afterMs: 60_000 * (i + 1),
          })),
        }),
        Finish: (state) => ({ state, done: true }),
      },
    });
    const run = async (payload: JsonValue) => {
      const token = await mintTestToken(store, payload);
      const outcome = await processSignal({
        store,
        endpoint: 'reminders',
        tokenId: token.id,
        payload,
        handler: processHandler(reminder),
      });
      return (outcome as Processed<StepReport>).result;
    };
    const { scheduled } = await run({ type: 'Start' });
    expect(Object.keys(scheduled)).toEqual(['remind', 'expire']);
    const finished = await run({ type: 'Finish' });
    expect(finished).toMatchObject({ outcome: 'done', cancelled: ['remind', 'expire'] });
    for (const id of Object.values(scheduled)) expect((await store.getToken(id))?.status).toBe('revoked');
    expect(await store.readState(instanceKey('reminder', 'r-1'))).toBeUndefined();
  });

  it('consumes a signal that finds its process finished without effect', async () => {
    store = await freshStore(kind);
    const minted = await mintTestToken(store, cancelled);
    const outcome = await deliver(cancelled, minted);
    expect(outcome).toMatchObject({ kind: 'processed', result: { outcome: 'ignored' } });
    expect((await store.getToken(minted.id))?.status).toBe('consumed');
    expect(await instance()).toBeUndefined();
  });

  it('refuses a signal of a type the process has no step for, leaving its token untouched', async () => {
    store = await freshStore(kind);
    const stray = { type: 'PaymentRefused', orderId: 'o-1' };
    const minted = await mintTestToken(store, stray);
    await expect(deliver(stray, minted)).rejects.toMatchObject({
      name: 'UnknownSignalTypeError',
      code: ErrorCodes.UNKNOWN_SIGNAL_TYPE,
      details: { process: 'payment', type: 'PaymentRefused' },
    });
    expect((await store.getToken(minted.id))?.status).toBe('pending');
  });

  it('lets a timeout and the cancelling signal race: exactly one of them closes the order', async () => {
    store = await freshStore(kind);
    const timeoutId = (await step(requested)).scheduled.payment as string;
    const [fired, cancelling] = await Promise.all([fire(timeoutId), deliver(cancelled)]);
    expect(cancelling.kind).toBe('processed');
    const timeout = (await store.getToken(timeoutId)) as TokenRecord;
    // Either the timeout committed first (consumed; the cancel found nothing left to revoke), or the cancel did
    // (revoked; the timeout is dropped). Never both applied, never neither.
    if (fired.kind === 'processed') {
      expect(timeout.status).toBe('consumed');
      expect((cancelling as Processed<StepReport>).result.cancelled).toEqual([]);
    } else {
      expect(fired).toMatchObject({ kind: 'dropped', error: { code: ErrorCodes.TOKEN_REVOKED } });
      expect(timeout.status).toBe('revoked');
    }
    expect(await instance()).toMatchObject({ state: { closed: true, paid: false }, timeouts: {} });
  });

  it('shows a running instance with its pending timeout', async () => {
    store = await freshStore(kind);
    const timeoutId = (await step(requested)).scheduled.payment as string;
    const view = await readProcessInstance(store, 'payment', 'o-1');
    expect(view).toMatchObject({
      process: 'payment',
      id: 'o-1',
      state: { paid: false, closed: false },
      timeouts: [{ name: 'payment', tokenId: timeoutId, status: 'scheduled' }],
    });
    expect(view?.timeouts[0]?.dueAt).toBeGreaterThan(Date.now());
    expect(await readProcessInstance(store, 'payment', 'o-2')).toBeUndefined();
  });
});
