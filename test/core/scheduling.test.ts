import { describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/core/dispatcher.js';
import { ErrorCodes, ScheduleBeyondHorizonError } from '../../src/core/errors.js';
import { pendingToken } from '../../src/core/mint.js';
import { processSignal } from '../../src/core/processor.js';
import { DEFAULT_SCHEDULE_HORIZON_MS, dueAtOf, scheduledToken } from '../../src/core/scheduling.js';
import type { HandlerContext } from '../../src/core/unit-of-work.js';
import { SqliteTokenStore } from '../../src/stores/sqlite/sqlite-store.js';

const destination = { medium: 'amqp', exchange: 'x', routingKey: 'k' } as const;
const NOW = 1_700_000_000_000;

describe('due time of a schedule', () => {
  it('is `at`, or now + `afterMs`; a time in the past is due at once', () => {
    expect(dueAtOf({ at: NOW + 5 }, NOW, 1000)).toBe(NOW + 5);
    expect(dueAtOf({ afterMs: 250 }, NOW, 1000)).toBe(NOW + 250);
    expect(dueAtOf({ afterMs: -250 }, NOW, 1000)).toBe(NOW - 250);
    expect(dueAtOf({ at: 0 }, NOW, 1000)).toBe(0);
    expect(dueAtOf({ afterMs: 1000 }, NOW, 1000)).toBe(NOW + 1000);
  });

  it('refuses a due time beyond the horizon with a typed error naming it', () => {
    const error = (() => {
      try {
        return dueAtOf({ afterMs: 1001 }, NOW, 1000);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ScheduleBeyondHorizonError);
    expect(error).toMatchObject({
      code: ErrorCodes.SCHEDULE_BEYOND_HORIZON,
      details: { dueAt: NOW + 1001, horizonMs: 1000, latest: NOW + 1000 },
    });
    // Seconds mistaken for milliseconds land ~55 years late: refused by the default horizon.
    expect(() => dueAtOf({ at: NOW * 1000 }, NOW, DEFAULT_SCHEDULE_HORIZON_MS)).toThrow(
      ScheduleBeyondHorizonError,
    );
  });

  it.each([
    ['neither', {}],
    ['both', { at: NOW, afterMs: 1 }],
    ['a fractional delay', { afterMs: 1.5 }],
    ['a negative instant', { at: -1 }],
    ['NaN', { afterMs: Number.NaN }],
  ])('refuses %s with an argument error', (_what, when) => {
    expect(() => dueAtOf(when, NOW, 1000)).toThrow(
      expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }),
    );
  });
});

describe('ctx.schedule and ctx.cancel (processor on SQLite)', () => {
  async function run<R>(
    store: SqliteTokenStore,
    handler: (ctx: HandlerContext<{ n: number }>) => R | Promise<R>,
    extra: { scheduleHorizonMs?: number } = {},
  ) {
    const root = pendingToken({ destination, payload: { n: 1 } }, { mintedBy: 'edge', now: NOW });
    await store.mint([root]);
    return processSignal({
      store,
      endpoint: 'payments',
      tokenId: root.id,
      payload: { n: 1 },
      clock: () => NOW,
      handler,
      ...extra,
    });
  }

  it('mints the scheduled token as a child of the hop, with the due time and the given headers', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const outcome = await run(store, (ctx) =>
      ctx.schedule(destination, { timeout: 1 }, { afterMs: 30_000 }, { headers: { 'x-kind': 'timeout' } }),
    );
    expect(outcome.kind).toBe('processed');
    if (outcome.kind !== 'processed') return;
    expect(outcome.result).toMatchObject({
      status: 'scheduled',
      dueAt: NOW + 30_000,
      mintedAt: NOW,
      mintedBy: 'payments',
      parentId: outcome.token.id,
      conversationId: outcome.token.conversationId,
      headers: { 'x-kind': 'timeout' },
    });
    expect(outcome.emitted).toEqual([outcome.result]);
    expect(await store.getToken(outcome.result.id)).toEqual(outcome.result);
    await store.close();
  });

  it('leaves a scheduled signal to the relay when the hop hands its mints to the dispatcher', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const sent: string[] = [];
    const dispatcher = new Dispatcher({
      store,
      senders: [{ medium: 'amqp', send: async (token) => void sent.push(token.id) }],
    });
    const outcome = await run(store, (ctx) => {
      ctx.emit(destination, { now: true });
      return ctx.schedule(destination, { later: true }, { afterMs: 30_000 });
    });
    if (outcome.kind !== 'processed') throw new Error(outcome.kind);
    const report = await dispatcher.dispatch(outcome.emitted, 'hop');
    const [emitted] = outcome.emitted.filter((token) => token.status === 'pending');
    expect(sent).toEqual([emitted?.id]);
    expect(report.dispatched).toEqual([emitted?.id]);
    expect((await store.getToken(outcome.result.id))?.status).toBe('scheduled');
    await store.close();
  });

  it('takes the horizon from the request, and nothing of a refused hop is written', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const refused = run(
      store,
      (ctx) => {
        ctx.put('k', 1);
        ctx.schedule(destination, {}, { afterMs: 10_001 });
      },
      { scheduleHorizonMs: 10_000 },
    );
    await expect(refused).rejects.toBeInstanceOf(ScheduleBeyondHorizonError);
    expect(await store.readState('k')).toBeUndefined();
    expect((await store.inFlightStats()).count).toBe(1);
    await expect(run(store, () => {}, { scheduleHorizonMs: -1 })).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
    });
    await store.close();
  });

  it('refuses to cancel the token the hop consumes', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    await expect(run(store, (ctx) => ctx.cancel(ctx.token.id))).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
    });
    await store.close();
  });

  it('counts each cancel toward the commit limits', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const timeout = scheduledToken({ destination, payload: {} }, { mintedBy: 'e', now: NOW }, NOW + 1000);
    await store.mint([timeout]);
    const tooMany = run(store, async (ctx) => {
      for (let i = 0; i < 99; i++) ctx.emit(destination, { i });
      await ctx.cancel(timeout.id);
    });
    await expect(tooMany).rejects.toMatchObject({ code: ErrorCodes.LIMIT_EXCEEDED });
    expect((await store.getToken(timeout.id))?.status).toBe('scheduled');
    await store.close();
  });
});
