import { describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  InvalidTransitionError,
  LimitExceededError,
  TokenExistsError,
  UnknownTokenError,
} from '../../src/core/errors.js';
import { fingerprint } from '../../src/core/fingerprint.js';
import { newTokenId } from '../../src/core/ids.js';
import { pendingToken } from '../../src/core/mint.js';
import { processSignal } from '../../src/core/processor.js';
import { scheduledToken } from '../../src/core/scheduling.js';
import type { TokenStore } from '../../src/core/store.js';
import { type Destination, TOKEN_STATUSES, type TokenRecord } from '../../src/core/token.js';
import { schedulingContract } from './scheduling.contract.js';

export interface ContractStoreOptions {
  tombstoneRetentionMs?: number;
}

/** Returns a fresh, empty store (its own file or tables) for each call. */
export type StoreFactory = (options?: ContractStoreOptions) => Promise<TokenStore>;

const queue: Destination = { medium: 'amqp', exchange: 'orders', routingKey: 'order.placed' };
const shipping: Destination = { medium: 'amqp', exchange: 'shipping', routingKey: 'ship' };

async function mintRoot(
  store: TokenStore,
  payload: Record<string, unknown> = { order: 1 },
  mintedAt = Date.now(),
) {
  const token = pendingToken(
    { destination: queue, payload: payload as never },
    { mintedBy: 'edge', now: mintedAt },
  );
  await store.mint([token]);
  return token;
}

function issuedToken(overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id: newTokenId(),
    conversationId: newTokenId(),
    mintedBy: 'api',
    status: 'issued',
    mintedAt: Date.now(),
    attempts: 0,
    ...overrides,
  };
}

/** The one suite every TokenStore must pass. */
export function tokenStoreContract(name: string, createStore: StoreFactory): void {
  describe(`TokenStore contract: ${name}`, () => {
    it('round-trips a minted token with every field', async () => {
      const store = await createStore();
      const token = pendingToken(
        { destination: queue, payload: { order: 7, lines: ['a', 'b'] }, headers: { 'x-trace': 't1' } },
        { mintedBy: 'edge', now: 1_700_000_000_000 },
      );
      await store.mint([token]);
      expect(await store.getToken(token.id)).toEqual(token);
      expect(await store.getToken(newTokenId())).toBeUndefined();
      await expect(store.mint([token])).rejects.toBeInstanceOf(TokenExistsError);
      await store.close();
    });

    it('reads several tokens at once, as getToken reads each, leaving out the ids it does not hold', async () => {
      const store = await createStore();
      // Optional: a store without it (PostgreSQL consumes before the handler runs, so it needs no batch check).
      if (!store.getTokens) return store.close();
      const tokens = Array.from({ length: 3 }, (_, i) =>
        pendingToken({ destination: queue, payload: { order: i } }, { mintedBy: 'edge', now: Date.now() }),
      );
      await store.mint(tokens);
      const unknown = newTokenId();
      const ids = [tokens[0]?.id, unknown, tokens[2]?.id, tokens[0]?.id, tokens[1]?.id] as string[];
      const found = await store.getTokens(ids);
      expect([...found.keys()].sort()).toEqual(tokens.map((t) => t.id).sort());
      for (const token of tokens) expect(found.get(token.id)).toEqual(await store.getToken(token.id));
      expect((await store.getTokens([])).size).toBe(0);
      await store.close();
    });

    it("keeps an HTTP destination's issuer through mint, commit and read", async () => {
      const store = await createStore();
      const toShipping: Destination = {
        medium: 'http',
        method: 'POST',
        url: 'http://shipping.test:8080/shipments',
        issuer: { url: 'http://shipping.test:8080/v1/tokens', credential: 'shipping:prod' },
      };
      const minted = pendingToken(
        { destination: toShipping, payload: { n: 1 } },
        { mintedBy: 'edge', now: 1 },
      );
      await store.mint([minted]);
      expect((await store.getToken(minted.id))?.destination).toEqual(toShipping);
      const root = await mintRoot(store);
      const outcome = await processSignal({
        store,
        endpoint: 'billing',
        tokenId: root.id,
        payload: { order: 1 },
        handler: (ctx) => ctx.emit(toShipping, { n: 2 }),
      });
      const emitted = outcome.kind === 'processed' ? outcome.result : undefined;
      expect(emitted).toBeDefined();
      expect((await store.getToken(emitted as string))?.destination).toEqual(toShipping);
      await store.close();
    });

    it('consumes a token once, applies the state change and mints the emitted tokens in the same commit', async () => {
      const store = await createStore();
      const root = await mintRoot(store, { order: 1 });
      const outcome = await processSignal({
        store,
        endpoint: 'orders',
        tokenId: root.id,
        payload: { order: 1 },
        handler: async (ctx) => {
          const count = (await ctx.get<number>('orders/count')) ?? 0;
          ctx.put('orders/count', count + 1);
          return ctx.emit(shipping, { ship: 1 });
        },
      });
      expect(outcome.kind).toBe('processed');
      if (outcome.kind !== 'processed') return;
      expect(await store.readState('orders/count')).toEqual({ key: 'orders/count', value: 1, version: 1 });
      const consumed = await store.getToken(root.id);
      expect(consumed?.status).toBe('consumed');
      expect(consumed?.consumedBy).toBe('orders');
      expect(consumed?.payload).toBeUndefined();
      const child = await store.getToken(outcome.result);
      expect(child).toMatchObject({
        status: 'pending',
        parentId: root.id,
        conversationId: root.conversationId,
        mintedBy: 'orders',
        destination: shipping,
        payload: { ship: 1 },
        fingerprint: fingerprint({ ship: 1 }),
      });
      await store.close();
    });

    it('drops a second copy without running the handler', async () => {
      const store = await createStore();
      const root = await mintRoot(store);
      let runs = 0;
      const handler = () => {
        runs += 1;
      };
      const request = { store, endpoint: 'e', tokenId: root.id, payload: { order: 1 }, handler };
      expect((await processSignal(request)).kind).toBe('processed');
      const second = await processSignal(request);
      expect(second.kind).toBe('dropped');
      expect(second.kind === 'dropped' && second.error.code).toBe(ErrorCodes.TOKEN_CONSUMED);
      expect(runs).toBe(1);
      await store.close();
    });

    it('lets exactly one of 50 concurrent consumes of one token commit', async () => {
      const store = await createStore();
      const root = await mintRoot(store);
      const outcomes = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          processSignal({
            store,
            endpoint: `worker-${i}`,
            tokenId: root.id,
            payload: { order: 1 },
            handler: async (ctx) => {
              const count = (await ctx.get<number>('applied')) ?? 0;
              ctx.put('applied', count + 1);
              ctx.emit(shipping, { from: i });
            },
          }),
        ),
      );
      expect(outcomes.filter((o) => o.kind === 'processed')).toHaveLength(1);
      expect(outcomes.filter((o) => o.kind === 'dropped')).toHaveLength(49);
      expect((await store.readState('applied'))?.value).toBe(1);
      const conversation = await store.listConversation(root.conversationId);
      expect(conversation.items.filter((t) => t.parentId === root.id)).toHaveLength(1);
      await store.close();
    });

    it('rejects a payload whose fingerprint differs and leaves the token live', async () => {
      const store = await createStore();
      const root = await mintRoot(store, { order: 1 });
      let ran = false;
      const outcome = await processSignal({
        store,
        endpoint: 'e',
        tokenId: root.id,
        payload: { order: 2 },
        handler: () => {
          ran = true;
        },
      });
      expect(outcome.kind).toBe('rejected');
      expect(outcome.kind === 'rejected' && outcome.error.code).toBe(ErrorCodes.FINGERPRINT_MISMATCH);
      expect(ran).toBe(false);
      expect((await store.getToken(root.id))?.status).toBe('pending');
      // the store itself refuses too, even if the cheap check were skipped
      const direct = await store.commit({
        consume: { tokenId: root.id, fingerprint: fingerprint({ order: 2 }), consumedBy: 'e' },
        writes: [],
        mints: [],
        now: Date.now(),
      });
      expect(direct).toEqual({ ok: false, failure: { kind: 'fingerprint-mismatch' } });
      await store.close();
    });

    it('is all-or-nothing: a failing state condition consumes nothing and mints nothing', async () => {
      const store = await createStore();
      const root = await mintRoot(store);
      const child = pendingToken(
        { destination: shipping, payload: { x: 1 } },
        { mintedBy: 'e', now: Date.now() },
      );
      const result = await store.commit({
        consume: { tokenId: root.id, fingerprint: root.fingerprint as string, consumedBy: 'e' },
        writes: [
          { key: 'blind', value: 'written' },
          { key: 'guarded', value: 1, expectedVersion: 3 },
        ],
        mints: [child],
        now: Date.now(),
      });
      expect(result).toEqual({ ok: false, failure: { kind: 'version-conflict', key: 'guarded' } });
      expect((await store.getToken(root.id))?.status).toBe('pending');
      expect(await store.getToken(child.id)).toBeUndefined();
      expect(await store.readState('blind')).toBeUndefined();
      expect(await store.readState('guarded')).toBeUndefined();
      await store.close();
    });

    it('reports an ended incoming token and a colliding mint as structured reasons', async () => {
      const store = await createStore();
      const root = await mintRoot(store);
      const missing = await store.commit({
        consume: { tokenId: newTokenId(), fingerprint: 'f', consumedBy: 'e' },
        writes: [],
        mints: [],
        now: Date.now(),
      });
      expect(missing).toEqual({ ok: false, failure: { kind: 'token-missing' } });
      const clash = await store.commit({
        consume: { tokenId: root.id, fingerprint: root.fingerprint as string, consumedBy: 'e' },
        writes: [],
        mints: [root],
        now: Date.now(),
      });
      expect(clash).toEqual({ ok: false, failure: { kind: 'mint-collision', tokenId: root.id } });
      await store.revoke(root.id, Date.now());
      const ended = await store.commit({
        consume: { tokenId: root.id, fingerprint: root.fingerprint as string, consumedBy: 'e' },
        writes: [],
        mints: [],
        now: Date.now(),
      });
      expect(ended).toEqual({
        ok: false,
        failure: { kind: 'token-not-live', status: 'revoked', expired: false },
      });
      await store.close();
    });

    it('commits no, one or several mints with their writes, and names the mint whose id is taken', async () => {
      const store = await createStore();
      const child = (n: number) =>
        pendingToken(
          { destination: shipping, payload: { n, lines: ['a', 'b'] }, headers: { 'x-trace': `t${n}` } },
          { mintedBy: 'e', now: 1_700_000_000_000 + n },
        );
      const consume = (root: TokenRecord) => ({
        tokenId: root.id,
        fingerprint: root.fingerprint as string,
        consumedBy: 'e',
      });
      for (const count of [0, 1, 3]) {
        const root = await mintRoot(store, { count });
        const mints = Array.from({ length: count }, (_, i) => child(10 * count + i));
        const result = await store.commit({
          consume: consume(root),
          writes: [{ key: `written-with-${count}`, value: { count } }],
          mints,
          now: Date.now(),
        });
        expect(result).toEqual({ ok: true });
        expect((await store.getToken(root.id))?.status).toBe('consumed');
        expect((await store.readState(`written-with-${count}`))?.value).toEqual({ count });
        for (const minted of mints) expect(await store.getToken(minted.id)).toEqual(minted);
      }
      const taken = (await store.getToken((await mintRoot(store)).id)) as TokenRecord;
      for (const mints of [[taken], [child(90), taken]]) {
        const root = await mintRoot(store, { clash: mints.length });
        const clash = await store.commit({ consume: consume(root), writes: [], mints, now: Date.now() });
        expect(clash).toEqual({ ok: false, failure: { kind: 'mint-collision', tokenId: taken.id } });
        expect((await store.getToken(root.id))?.status).toBe('pending');
        for (const minted of mints)
          if (minted !== taken) expect(await store.getToken(minted.id)).toBeUndefined();
      }
      await store.close();
    });

    it('re-runs the handler on fresh state after a version conflict', async () => {
      const store = await createStore();
      const root = await mintRoot(store, { n: 1 });
      const rival = await mintRoot(store, { n: 2 });
      const seen: Array<number | undefined> = [];
      const outcome = await processSignal({
        store,
        endpoint: 'counter',
        tokenId: root.id,
        payload: { n: 1 },
        handler: async (ctx) => {
          const value = await ctx.get<number>('counter');
          seen.push(value);
          if (ctx.attempt === 1) {
            // a competing handler commits a change to the same key while this one runs
            await processSignal({
              store,
              endpoint: 'counter',
              tokenId: rival.id,
              payload: { n: 2 },
              handler: async (other) =>
                other.put('counter', ((await other.get<number>('counter')) ?? 0) + 10),
            });
          }
          ctx.put('counter', (value ?? 0) + 1);
        },
      });
      expect(outcome.kind === 'processed' && outcome.attempts).toBe(2);
      expect(seen).toEqual([undefined, 10]);
      expect(await store.readState('counter')).toMatchObject({ value: 11, version: 2 });
      await store.close();
    });

    it('recognises its own commit when the store applied it but the answer was lost', async () => {
      const store = await createStore();
      const root = await mintRoot(store);
      // The real store commits; the caller is told "transient" as if the response had been lost on the way.
      let lost = 0;
      const lossy = Object.create(store) as TokenStore;
      lossy.commit = async (request) => {
        const result = await store.commit(request);
        if (result.ok && lost === 0) {
          lost += 1;
          return { ok: false, failure: { kind: 'transient', cause: new Error('socket hang up') } };
        }
        return result;
      };
      // An interactive store (PostgreSQL) commits in transact(), not commit(): lose that answer instead.
      const own = store.ownData;
      if (own?.mode === 'interactive') {
        const transact: typeof own.transact = async (consume, now, body) => {
          const result = await own.transact(consume, now, body);
          if (result.ok && lost === 0) {
            lost += 1;
            return { ok: false, failure: { kind: 'transient', cause: new Error('socket hang up') } };
          }
          return result;
        };
        Object.defineProperty(lossy, 'ownData', { value: { mode: 'interactive', transact } });
      }
      let runs = 0;
      const outcome = await processSignal({
        store: lossy,
        endpoint: 'billing',
        tokenId: root.id,
        payload: { order: 1 },
        handler: (ctx) => {
          runs += 1;
          ctx.put('invoices', 1);
          return ctx.emit(shipping, { ship: 1 });
        },
      });
      expect(lost).toBe(1);
      expect(runs).toBe(1);
      expect(outcome.kind).toBe('processed');
      if (outcome.kind !== 'processed') return;
      expect(outcome.token.status).toBe('pending'); // the incoming token as the handler saw it
      // the emitted token reported is the one that was committed
      expect((await store.getToken(outcome.result))?.status).toBe('pending');
      expect((await store.getToken(root.id))?.commitId).toMatch(/^[A-Za-z0-9_-]{22}$/);
      await store.close();
    });

    it('deletes state with a version condition', async () => {
      const store = await createStore();
      const first = await mintRoot(store, { step: 1 });
      const second = await mintRoot(store, { step: 2 });
      await processSignal({
        store,
        endpoint: 'e',
        tokenId: first.id,
        payload: { step: 1 },
        handler: (ctx) => ctx.put('doomed', { here: true }),
      });
      await processSignal({
        store,
        endpoint: 'e',
        tokenId: second.id,
        payload: { step: 2 },
        handler: async (ctx) => {
          expect(await ctx.get('doomed')).toEqual({ here: true });
          ctx.delete('doomed');
        },
      });
      expect(await store.readState('doomed')).toBeUndefined();
      await store.close();
    });

    it('moves status one way only', async () => {
      const store = await createStore();
      const root = await mintRoot(store);
      expect(await store.markDispatched([root.id], Date.now())).toBe(1);
      expect(await store.markDispatched([root.id], Date.now())).toBe(0);
      const dispatched = await store.getToken(root.id);
      expect(dispatched?.status).toBe('dispatched');
      expect(dispatched?.dispatchedAt).toBeTypeOf('number');
      await processSignal({
        store,
        endpoint: 'e',
        tokenId: root.id,
        payload: { order: 1 },
        handler: () => {},
      });
      expect(await store.markDispatched([root.id], Date.now())).toBe(0);
      expect((await store.getToken(root.id))?.status).toBe('consumed');
      await expect(store.revoke(root.id, Date.now())).rejects.toBeInstanceOf(InvalidTransitionError);
      await expect(store.revoke(newTokenId(), Date.now())).rejects.toBeInstanceOf(UnknownTokenError);
      const again = await store.commit({
        consume: { tokenId: root.id, fingerprint: root.fingerprint as string, consumedBy: 'e' },
        writes: [],
        mints: [],
        now: Date.now(),
      });
      expect(again).toEqual({
        ok: false,
        failure: { kind: 'token-not-live', status: 'consumed', expired: false },
      });
      await store.close();
    });

    it('keeps tombstones for their retention, then purges them; a purged token still has no effect', async () => {
      const store = await createStore({ tombstoneRetentionMs: 60_000 });
      const root = await mintRoot(store);
      const before = Date.now();
      await processSignal({
        store,
        endpoint: 'e',
        tokenId: root.id,
        payload: { order: 1 },
        handler: () => {},
      });
      const tombstone = await store.getToken(root.id);
      expect(tombstone?.retainUntil).toBeGreaterThanOrEqual(before + 60_000);
      expect(await store.purge(before + 30_000)).toBe(0);
      expect(await store.getToken(root.id)).toBeDefined();
      expect(await store.purge(before + 120_000)).toBe(1);
      expect(await store.getToken(root.id)).toBeUndefined();
      let ran = false;
      const late = await processSignal({
        store,
        endpoint: 'e',
        tokenId: root.id,
        payload: { order: 1 },
        handler: () => {
          ran = true;
        },
      });
      expect(late.kind === 'dropped' && late.error.code).toBe(ErrorCodes.TOKEN_UNKNOWN);
      expect(ran).toBe(false);
      await store.close();
    });

    it('issues tokens idempotently by caller-chosen id, revokes them, and expires unused ones', async () => {
      const store = await createStore();
      const token = issuedToken({ id: 'caller-chosen-0001', fingerprint: fingerprint({ a: 1 }) });
      expect(await store.issue(token)).toEqual({ created: true, token });
      const again = await store.issue({ ...token, mintedAt: token.mintedAt + 5 });
      expect(again).toEqual({ created: false, existing: token });

      const revoked = await store.revoke(token.id, Date.now());
      expect(revoked.status).toBe('revoked');
      const dropped = await processSignal({
        store,
        endpoint: 'e',
        tokenId: token.id,
        payload: { a: 1 },
        handler: () => {},
      });
      expect(dropped.kind === 'dropped' && dropped.error.code).toBe(ErrorCodes.TOKEN_REVOKED);

      const now = Date.now();
      const stale = issuedToken({ expiresAt: now - 1 });
      const fresh = issuedToken({ expiresAt: now + 60_000 });
      await store.issue(stale);
      await store.issue(fresh);
      const late = await processSignal({
        store,
        endpoint: 'e',
        tokenId: stale.id,
        payload: {},
        handler: () => {},
      });
      expect(late.kind === 'dropped' && late.error.code).toBe(ErrorCodes.TOKEN_EXPIRED);
      // the store refuses an expired token even when the cheap check is skipped
      const direct = await store.commit({
        consume: { tokenId: stale.id, fingerprint: fingerprint({}), consumedBy: 'e' },
        writes: [],
        mints: [],
        now,
      });
      expect(direct).toEqual({
        ok: false,
        failure: { kind: 'token-not-live', status: 'issued', expired: true },
      });
      expect(await store.expireIssued(now)).toBe(1);
      expect((await store.getToken(stale.id))?.status).toBe('expired');
      expect((await store.getToken(fresh.id))?.status).toBe('issued');
      const used = await processSignal({
        store,
        endpoint: 'e',
        tokenId: fresh.id,
        payload: {},
        handler: () => {},
      });
      expect(used.kind).toBe('processed');
      await store.close();
    });

    it('refuses a commit over the portable limits before sending anything', async () => {
      const store = await createStore();
      const root = await mintRoot(store);
      const tooMany = processSignal({
        store,
        endpoint: 'e',
        tokenId: root.id,
        payload: { order: 1 },
        handler: (ctx) => {
          for (let i = 0; i < 100; i++) ctx.emit(shipping, { i });
        },
      });
      await expect(tooMany).rejects.toBeInstanceOf(LimitExceededError);
      const tooBig = processSignal({
        store,
        endpoint: 'e',
        tokenId: root.id,
        payload: { order: 1 },
        handler: (ctx) => ctx.put('big', 'x'.repeat(400 * 1024)),
      });
      await expect(tooBig).rejects.toMatchObject({ code: ErrorCodes.LIMIT_EXCEEDED });
      expect((await store.getToken(root.id))?.status).toBe('pending');
      expect(await store.readState('big')).toBeUndefined();
      await store.close();
    });

    it('lists tokens by status oldest first with pagination, by conversation, and counts in-flight tokens', async () => {
      const store = await createStore();
      const base = 1_700_000_000_000;
      const minted: TokenRecord[] = [];
      for (let i = 0; i < 25; i++) minted.push(await mintRoot(store, { i }, base + i * 1000));
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.listByStatus('pending', cursor ? { limit: 10, cursor } : { limit: 10 });
        seen.push(...page.items.map((t) => t.id));
        cursor = page.cursor;
        pages += 1;
      } while (cursor && pages < 10);
      expect(seen).toEqual(minted.map((t) => t.id));
      expect(pages).toBeLessThanOrEqual(4);

      const older = await store.listByStatus('pending', { mintedBefore: base + 5000 });
      expect(older.items.map((t) => t.id)).toEqual(minted.slice(0, 5).map((t) => t.id));
      expect((await store.listByStatus('consumed')).items).toEqual([]);
      await expect(store.listByStatus('pending', { cursor: 'not-a-cursor!' })).rejects.toMatchObject({
        code: ErrorCodes.INVALID_ARGUMENT,
      });

      const first = minted[0] as TokenRecord;
      await processSignal({
        store,
        endpoint: 'e',
        tokenId: first.id,
        payload: { i: 0 },
        handler: (ctx) => {
          ctx.emit(shipping, { a: 1 });
          ctx.emit(shipping, { b: 2 });
        },
      });
      const conversation = await store.listConversation(first.conversationId);
      expect(conversation.items).toHaveLength(3);
      expect(conversation.items.filter((t) => t.parentId === first.id)).toHaveLength(2);

      const stats = await store.inFlightStats();
      expect(stats.count).toBe(26);
      expect(stats.oldestMintedAt).toBe(base + 1000);
      await store.close();
    });

    it('counts the tokens in every status, naming each status even when none is in it', async () => {
      const store = await createStore();
      const none = await store.statusCounts();
      expect(Object.keys(none).sort()).toEqual([...TOKEN_STATUSES].sort());
      expect(Object.values(none).every((count) => count === 0)).toBe(true);

      const now = Date.now();
      const [dispatched, consumed, revoked] = [
        await mintRoot(store, { n: 1 }),
        await mintRoot(store, { n: 2 }),
        await mintRoot(store, { n: 3 }),
      ] as [TokenRecord, TokenRecord, TokenRecord];
      await mintRoot(store, { n: 4 });
      await mintRoot(store, { n: 5 });
      await store.markDispatched([dispatched.id], now);
      await processSignal({
        store,
        endpoint: 'e',
        tokenId: consumed.id,
        payload: { n: 2 },
        handler: () => {},
      });
      await store.revoke(revoked.id, now);
      await store.issue(issuedToken());
      await store.issue(issuedToken({ expiresAt: now - 1 }));
      await store.expireIssued(now);
      await store.mint([
        scheduledToken({ destination: queue, payload: { n: 6 } }, { mintedBy: 'edge', now }, now + 60_000),
      ]);

      expect(await store.statusCounts()).toEqual({
        issued: 1,
        scheduled: 1,
        pending: 2,
        dispatched: 1,
        consumed: 1,
        expired: 1,
        revoked: 1,
      });
      await store.close();
    });

    it('leases pending tokens to one relay at a time and counts attempts', async () => {
      const store = await createStore();
      const now = Date.now();
      const due = await mintRoot(store, { due: 1 }, now - 10_000);
      await mintRoot(store, { young: 1 }, now);
      const claim = { mintedBefore: now - 5_000, now, leaseMs: 30_000, limit: 10 };
      const first = await store.claimPending(claim);
      expect(first.map((t) => t.id)).toEqual([due.id]);
      expect(first[0]?.attempts).toBe(1);
      expect(first[0]?.payload).toEqual({ due: 1 });
      expect(await store.claimPending(claim)).toEqual([]);
      const later = await store.claimPending({ ...claim, now: now + 31_000 });
      expect(later.map((t) => t.id)).toEqual([due.id]);
      expect(later[0]?.attempts).toBe(2);
      await store.releaseLease(due.id);
      expect((await store.claimPending({ ...claim, now: now + 32_000 })).map((t) => t.id)).toEqual([due.id]);
      expect(await store.claimPending({ ...claim, now: now + 100_000, medium: 'http' })).toEqual([]);
      await store.markDispatched([due.id], now);
      expect(await store.claimPending({ ...claim, now: now + 200_000 })).toEqual([]);
      await store.close();
    });

    it('leases one pending token by id whatever its age or lease, so that a relay pass skips it', async () => {
      const store = await createStore();
      const now = Date.now();
      const young = await mintRoot(store, { young: 1 }, now);
      const old = await mintRoot(store, { old: 1 }, now - 60_000);
      const claim = { mintedBefore: now, now, leaseMs: 30_000, limit: 10 };

      const claimed = await store.claimToken(young.id, { now, leaseMs: 30_000 });
      expect(claimed).toMatchObject({
        id: young.id,
        status: 'pending',
        attempts: 1,
        leaseUntil: now + 30_000,
      });
      expect(claimed?.payload).toEqual({ young: 1 });
      expect((await store.claimPending(claim)).map((t) => t.id)).toEqual([old.id]);
      // Taken over from the relay that holds its lease; not for another medium.
      expect(await store.claimToken(old.id, { now, leaseMs: 30_000, medium: 'http' })).toBeUndefined();
      expect(await store.claimToken(old.id, { now, leaseMs: 5_000 })).toMatchObject({
        attempts: 2,
        leaseUntil: now + 5_000,
      });
      // Its lease is now the one given (5 s), not the relay's (30 s); the young one's lease still holds.
      expect((await store.claimPending({ ...claim, now: now + 6_000 })).map((t) => t.id)).toEqual([old.id]);
      expect((await store.claimPending({ ...claim, now: now + 31_000 })).map((t) => t.id)).toEqual([
        young.id,
      ]);
      // Only pending tokens, and never a stray record for an unknown id.
      await store.markDispatched([young.id], now);
      expect(await store.claimToken(young.id, { now, leaseMs: 30_000 })).toBeUndefined();
      expect((await store.getToken(young.id))?.status).toBe('dispatched');
      const unknown = newTokenId();
      expect(await store.claimToken(unknown, { now, leaseMs: 30_000 })).toBeUndefined();
      expect(await store.getToken(unknown)).toBeUndefined();
      await store.close();
    });
  });
  schedulingContract(name, createStore);
}
