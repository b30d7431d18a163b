import { describe, expect, it } from 'vitest';
import { ErrorCodes, InvalidTransitionError } from '../../src/core/errors.js';
import { pendingToken } from '../../src/core/mint.js';
import { processSignal } from '../../src/core/processor.js';
import { scheduledToken } from '../../src/core/scheduling.js';
import type { TokenStore } from '../../src/core/store.js';
import type { Destination, TokenRecord } from '../../src/core/token.js';
import type { StoreFactory } from './token-store.contract.js';

const timeouts: Destination = { medium: 'amqp', exchange: 'payments', routingKey: 'payment.timed-out' };
const webhook: Destination = { medium: 'http', method: 'POST', url: 'http://hooks.test/timeout' };
const orders: Destination = { medium: 'amqp', exchange: 'orders', routingKey: 'order.placed' };

async function mintRoot(store: TokenStore, payload: Record<string, unknown> = { order: 1 }) {
  const token = pendingToken(
    { destination: orders, payload: payload as never },
    { mintedBy: 'edge', now: Date.now() },
  );
  await store.mint([token]);
  return token;
}

/** Scheduled tokens minted directly, due at the given instants. */
async function mintScheduled(
  store: TokenStore,
  dueAts: number[],
  destination: Destination = timeouts,
): Promise<TokenRecord[]> {
  const tokens = dueAts.map((dueAt, i) =>
    scheduledToken({ destination, payload: { i } }, { mintedBy: 'payments', now: dueAt - 60_000 }, dueAt),
  );
  await store.mint(tokens);
  return tokens;
}

/** Runs one hop whose handler may schedule and cancel; returns the processed outcome. */
async function hop<R>(
  store: TokenStore,
  handler: Parameters<typeof processSignal<Record<string, unknown>, R>>[0]['handler'],
  extra: { scheduleHorizonMs?: number } = {},
) {
  const root = await mintRoot(store);
  const outcome = await processSignal({
    store,
    endpoint: 'payments',
    tokenId: root.id,
    payload: { order: 1 },
    handler,
    ...extra,
  });
  if (outcome.kind !== 'processed') throw new Error(`hop not processed: ${outcome.kind}`);
  return { root, outcome };
}

/** Scheduled tokens: what every store passes (run from tokenStoreContract). */
export function schedulingContract(name: string, createStore: StoreFactory): void {
  describe(`TokenStore contract, scheduled tokens: ${name}`, () => {
    it('mints a scheduled token in the hop, keeps it from being consumed before it is due, then fires it once', async () => {
      const store = await createStore();
      const { outcome } = await hop(store, (ctx) =>
        ctx.schedule(timeouts, { timedOut: 'o-1' }, { afterMs: 60_000 }),
      );
      const timeout = outcome.result;
      expect(timeout).toMatchObject({
        status: 'scheduled',
        destination: timeouts,
        payload: { timedOut: 'o-1' },
      });
      const stored = await store.getToken(timeout.id);
      expect(stored).toEqual(timeout);
      expect(stored?.dueAt).toBe(timeout.mintedAt + 60_000);

      // Not consumable while scheduled: a copy sent early changes nothing.
      const early = processSignal({
        store,
        endpoint: 'payments',
        tokenId: timeout.id,
        payload: { timedOut: 'o-1' },
        handler: () => {},
      });
      await expect(early).rejects.toBeInstanceOf(InvalidTransitionError);
      const direct = await store.commit({
        consume: { tokenId: timeout.id, fingerprint: timeout.fingerprint as string, consumedBy: 'x' },
        writes: [],
        mints: [],
        now: Date.now(),
      });
      expect(direct).toEqual({
        ok: false,
        failure: { kind: 'token-not-live', status: 'scheduled', expired: false },
      });
      // Not claimed before it is due, nor by the pending relay.
      const dueAt = stored?.dueAt as number;
      expect(await store.claimDue({ now: dueAt - 1, leaseMs: 30_000, limit: 10 })).toEqual([]);
      expect(await store.claimPending({ mintedBefore: dueAt, now: dueAt, leaseMs: 1, limit: 10 })).toEqual(
        [],
      );

      const claimed = await store.claimDue({ now: dueAt, leaseMs: 30_000, limit: 10 });
      expect(claimed).toEqual([{ ...timeout, status: 'pending', leaseUntil: dueAt + 30_000, attempts: 1 }]);
      expect(await store.getToken(timeout.id)).toEqual(claimed[0]);
      expect(await store.claimDue({ now: dueAt + 100_000, leaseMs: 30_000, limit: 10 })).toEqual([]);
      // Leased: the pending relay leaves it alone until the lease ends (the claimer died: it re-sends it then).
      const pendingClaim = { mintedBefore: dueAt, leaseMs: 30_000, limit: 10 };
      expect(await store.claimPending({ ...pendingClaim, now: dueAt + 1 })).toEqual([]);
      expect((await store.claimPending({ ...pendingClaim, now: dueAt + 30_001 })).map((t) => t.id)).toEqual([
        timeout.id,
      ]);

      expect(await store.markDispatched([timeout.id], dueAt)).toBe(1);
      const consume = () =>
        processSignal({
          store,
          endpoint: 'payments',
          tokenId: timeout.id,
          payload: { timedOut: 'o-1' },
          handler: () => 1,
        });
      expect((await consume()).kind).toBe('processed');
      const again = await consume();
      expect(again.kind === 'dropped' && again.error.code).toBe(ErrorCodes.TOKEN_CONSUMED);
      await store.close();
    });

    it('claims due tokens earliest first, a batch at a time, and never the same token twice', async () => {
      const store = await createStore();
      const base = 1_700_000_000_000;
      const tokens = await mintScheduled(
        store,
        [5, 1, 4, 2, 3, 9].map((n) => base + n * 1000),
      );
      const ids = (due: number[]) => due.map((n) => tokens[[5, 1, 4, 2, 3, 9].indexOf(n)]?.id);
      const first = await store.claimDue({ now: base + 5000, leaseMs: 1000, limit: 2 });
      expect(first.map((t) => t.id)).toEqual(ids([1, 2]));
      const rest = await store.claimDue({ now: base + 5000, leaseMs: 1000, limit: 10 });
      expect(rest.map((t) => t.id)).toEqual(ids([3, 4, 5]));
      expect(await store.claimDue({ now: base + 8999, leaseMs: 1000, limit: 10 })).toEqual([]);
      expect((await store.claimDue({ now: base + 9000, leaseMs: 1000, limit: 10 })).map((t) => t.id)).toEqual(
        ids([9]),
      );
      await store.close();
    });

    it('lets racing claims each take different tokens', async () => {
      const store = await createStore();
      const now = Date.now();
      const tokens = await mintScheduled(
        store,
        Array.from({ length: 30 }, (_, i) => now - 1000 + i),
      );
      const claims = await Promise.all(
        Array.from({ length: 6 }, () => store.claimDue({ now, leaseMs: 30_000, limit: 7 })),
      );
      const claimed = claims.flat().map((t) => t.id);
      expect(new Set(claimed).size).toBe(claimed.length);
      expect(claimed.sort()).toEqual(tokens.map((t) => t.id).sort());
      await store.close();
    });

    it('claims only the medium asked for when asked', async () => {
      const store = await createStore();
      const now = Date.now();
      const [amqp] = await mintScheduled(store, [now - 10]);
      const [http] = await mintScheduled(store, [now - 20], webhook);
      expect(
        (await store.claimDue({ now, leaseMs: 1000, limit: 10, medium: 'amqp' })).map((t) => t.id),
      ).toEqual([amqp?.id]);
      expect((await store.claimDue({ now, leaseMs: 1000, limit: 10 })).map((t) => t.id)).toEqual([http?.id]);
      await store.close();
    });

    it('fires a schedule in the past at once, and refuses one beyond the horizon', async () => {
      const store = await createStore();
      const { outcome } = await hop(store, (ctx) =>
        ctx.schedule(timeouts, { late: true }, { afterMs: -5_000 }),
      );
      const late = outcome.result;
      expect(late.dueAt).toBe(late.mintedAt - 5_000);
      expect((await store.claimDue({ now: Date.now(), leaseMs: 1000, limit: 10 })).map((t) => t.id)).toEqual([
        late.id,
      ]);

      const root = await mintRoot(store);
      const far = processSignal({
        store,
        endpoint: 'payments',
        tokenId: root.id,
        payload: { order: 1 },
        scheduleHorizonMs: 60_000,
        handler: (ctx) => {
          ctx.put('touched', true);
          ctx.schedule(timeouts, {}, { afterMs: 60_001 });
        },
      });
      await expect(far).rejects.toMatchObject({ code: ErrorCodes.SCHEDULE_BEYOND_HORIZON });
      const defaultHorizon = processSignal({
        store,
        endpoint: 'payments',
        tokenId: root.id,
        payload: { order: 1 },
        handler: (ctx) => ctx.schedule(timeouts, {}, { at: Date.now() + 400 * 24 * 3600 * 1000 }),
      });
      await expect(defaultHorizon).rejects.toMatchObject({ code: ErrorCodes.SCHEDULE_BEYOND_HORIZON });
      expect((await store.getToken(root.id))?.status).toBe('pending');
      expect(await store.readState('touched')).toBeUndefined();
      await store.close();
    });

    it('cancels a scheduled token in the same commit as the state change', async () => {
      const store = await createStore();
      const { outcome } = await hop(store, (ctx) => ctx.schedule(timeouts, { t: 1 }, { afterMs: -1 }));
      const timeout = outcome.result;
      const cancelled = await hop(store, async (ctx) => {
        ctx.put('order/o-1', 'paid');
        return ctx.cancel(timeout.id);
      });
      expect(cancelled.outcome.result).toBe(true);
      expect((await store.readState('order/o-1'))?.value).toBe('paid');
      expect((await store.getToken(timeout.id))?.status).toBe('revoked');
      expect(await store.claimDue({ now: Date.now() + 1000, leaseMs: 1000, limit: 10 })).toEqual([]);
      await store.close();
    });

    it('makes a cancel of a consumed, revoked or unknown token a no-op, and of one scheduled in the same run no mint', async () => {
      const store = await createStore();
      const consumed = await mintRoot(store);
      await processSignal({
        store,
        endpoint: 'e',
        tokenId: consumed.id,
        payload: { order: 1 },
        handler: () => {},
      });
      const { outcome } = await hop(store, async (ctx) => {
        ctx.put('k', 1);
        const own = ctx.schedule(timeouts, {}, { afterMs: 1000 });
        return {
          consumed: await ctx.cancel(consumed.id),
          unknown: await ctx.cancel('never-minted-token-id'),
          own: await ctx.cancel(own.id),
          ownId: own.id,
        };
      });
      expect(outcome.result).toMatchObject({ consumed: false, unknown: false, own: true });
      expect(outcome.emitted).toEqual([]);
      expect(await store.getToken(outcome.result.ownId)).toBeUndefined();
      expect((await store.getToken(consumed.id))?.status).toBe('consumed');
      expect((await store.readState('k'))?.value).toBe(1);
      await store.close();
    });

    it('gives a cancel racing a claim exactly one winner', async () => {
      const store = await createStore();
      const now = Date.now();
      for (let round = 0; round < 8; round++) {
        const [timeout] = await mintScheduled(store, [now - 1]);
        const id = (timeout as TokenRecord).id;
        const root = await mintRoot(store, { round });
        const [claimed, committed] = await Promise.all([
          store.claimDue({ now, leaseMs: 30_000, limit: 10 }),
          store.commit({
            consume: { tokenId: root.id, fingerprint: root.fingerprint as string, consumedBy: 'e' },
            writes: [],
            mints: [],
            revokes: [{ tokenId: id, expectedStatus: 'scheduled' }],
            now,
          }),
        ]);
        const claimWon = claimed.some((t) => t.id === id);
        expect(claimWon).toBe(!committed.ok);
        if (!committed.ok)
          expect(committed.failure).toEqual({ kind: 'version-conflict', key: `token:${id}` });
        expect((await store.getToken(id))?.status).toBe(claimWon ? 'pending' : 'revoked');
        expect((await store.getToken(root.id))?.status).toBe(claimWon ? 'pending' : 'consumed');
      }
      await store.close();
    });

    it('re-runs a cancelling handler whose token was consumed meanwhile: the timeout applies, the cancel does not', async () => {
      const store = await createStore();
      const [timeout] = await mintScheduled(store, [Date.now() - 1]);
      const id = (timeout as TokenRecord).id;
      const seen: boolean[] = [];
      await hop(store, async (ctx) => {
        const cancelled = await ctx.cancel(id);
        seen.push(cancelled);
        ctx.put('order/o-2', cancelled ? 'cancelled' : 'timed-out');
        if (ctx.attempt === 1) {
          // Meanwhile a relay fires the timeout and its receiver applies it.
          await store.claimDue({ now: Date.now(), leaseMs: 30_000, limit: 10 });
          const fired = await processSignal({
            store,
            endpoint: 't',
            tokenId: id,
            payload: { i: 0 },
            handler: () => {},
          });
          expect(fired.kind).toBe('processed');
        }
      });
      expect(seen).toEqual([true, false]);
      expect((await store.getToken(id))?.status).toBe('consumed');
      expect((await store.readState('order/o-2'))?.value).toBe('timed-out');
      await store.close();
    });

    it('lists scheduled tokens earliest due first, due before an instant, with pagination; counts them in flight', async () => {
      const store = await createStore();
      const base = 1_700_000_000_000;
      const due = [7, 3, 11, 1, 5, 9, 2];
      const tokens = await mintScheduled(
        store,
        due.map((n) => base + n * 1000),
      );
      const order = [...due].sort((a, b) => a - b).map((n) => tokens[due.indexOf(n)]?.id);
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.listByStatus('scheduled', cursor ? { limit: 3, cursor } : { limit: 3 });
        seen.push(...page.items.map((t) => t.id));
        cursor = page.cursor;
        pages += 1;
      } while (cursor && pages < 10);
      expect(seen).toEqual(order);
      const soon = await store.listByStatus('scheduled', { dueBefore: base + 5000 });
      expect(soon.items.map((t) => t.id)).toEqual(order.slice(0, 3));
      expect(soon.items[0]?.dueAt).toBe(base + 1000);
      const stats = await store.inFlightStats();
      expect(stats.count).toBe(7);
      // Waiting for their due time is not being stuck: scheduled tokens do not age the oldest in-flight figure.
      expect(stats.oldestMintedAt).toBeUndefined();
      // An operator may revoke a scheduled token too.
      expect((await store.revoke(order[0] as string, Date.now())).status).toBe('revoked');
      expect((await store.listByStatus('scheduled')).items).toHaveLength(6);
      await store.close();
    });
  });
}
