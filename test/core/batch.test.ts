import { describe, expect, it, vi } from 'vitest';
import { processBatch, type Settled } from '../../src/core/batch.js';
import { Dispatcher, type SignalSender } from '../../src/core/dispatcher.js';
import { DispatchFailedError, ErrorCodes, StoreUnavailableError } from '../../src/core/errors.js';
import { pendingToken } from '../../src/core/mint.js';
import type { Handler } from '../../src/core/processor.js';
import type { TokenRecord } from '../../src/core/token.js';
import { SqliteTokenStore } from '../../src/stores/sqlite/sqlite-store.js';

const orders = { medium: 'amqp', exchange: '', routingKey: 'orders' } as const;
const shipments = { medium: 'amqp', exchange: '', routingKey: 'shipments' } as const;

type Order = { n: number; poison?: boolean; shared?: boolean };

/** Counts each order once under its own key, and the `shared` ones also under one key they all contend for. */
const applyOrder: Handler<Order, void> = async (ctx) => {
  if (ctx.payload.poison) throw new Error('this order breaks the handler');
  const applied = (await ctx.get<number>(`applied/${ctx.payload.n}`)) ?? 0;
  ctx.put(`applied/${ctx.payload.n}`, applied + 1);
  if (ctx.payload.shared) {
    const total = (await ctx.get<number>('shared-total')) ?? 0;
    ctx.put('shared-total', total + 1);
  }
  ctx.emit(shipments, { n: ctx.payload.n });
};

async function minted(store: SqliteTokenStore, payloads: Order[]): Promise<TokenRecord[]> {
  const tokens = payloads.map((payload) =>
    pendingToken({ destination: orders, payload }, { mintedBy: 'edge', now: Date.now() }),
  );
  await store.mint(tokens);
  return tokens;
}

const outcomeKind = (settled: Settled<void>) => (settled.ok ? settled.outcome.kind : 'failed');

describe('processBatch', () => {
  it('checks the tokens of a batch with one read and commits its hops together', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const tokens = await minted(
      store,
      Array.from({ length: 8 }, (_, n) => ({ n })),
    );
    const single = vi.spyOn(store, 'getToken');
    const many = vi.spyOn(store, 'getTokens');
    const settled = await processBatch(
      { store, endpoint: 'orders', handler: applyOrder },
      tokens.map((token) => ({ tokenId: token.id, payload: token.payload as Order })),
    );
    expect(settled.map(outcomeKind)).toEqual(Array(8).fill('processed'));
    expect(many).toHaveBeenCalledTimes(1);
    expect(single).not.toHaveBeenCalled();
    for (let n = 0; n < 8; n++) expect((await store.readState(`applied/${n}`))?.value).toBe(1);
    await store.close();
  });

  it('lets a poison signal, a duplicate and a version conflict in one batch fail or retry alone', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const [healthy, poison, duplicated, first, second] = await minted(store, [
      { n: 1 },
      { n: 2, poison: true },
      { n: 3 },
      { n: 4, shared: true },
      { n: 5, shared: true },
    ]);
    const signals = [healthy, poison, duplicated, duplicated, first, second].map((token) => ({
      tokenId: token?.id,
      payload: token?.payload as Order,
    }));
    const retried: string[] = [];
    const settled = await processBatch(
      { store, endpoint: 'orders', handler: applyOrder, onRetry: (reason) => retried.push(reason) },
      signals,
    );

    expect(settled.map(outcomeKind)).toEqual([
      'processed',
      'failed',
      'processed',
      'dropped',
      'processed',
      'processed',
    ]);
    // The poison signal failed alone, its token untouched for the next run.
    const failure = settled[1] as Extract<Settled<void>, { ok: false }>;
    expect(failure.error).toMatchObject({ code: ErrorCodes.HANDLER_FAILED });
    expect((await store.getToken(poison?.id ?? ''))?.status).toBe('pending');
    // The second copy of one token found it consumed by the first, in the same group commit.
    const copy = settled[3] as Extract<Settled<void>, { ok: true }>;
    expect(copy.ok && copy.outcome.kind === 'dropped' && copy.outcome.error.code).toBe(
      ErrorCodes.TOKEN_CONSUMED,
    );
    // The two contending hops both applied: the loser of the version check ran again on fresh state.
    expect(retried).toContain('version-conflict');
    expect((await store.readState('shared-total'))?.value).toBe(2);
    for (const n of [1, 3, 4, 5]) expect((await store.readState(`applied/${n}`))?.value).toBe(1);
    expect(await store.readState('applied/2')).toBeUndefined();
    await store.close();
  });

  it('refuses a malformed token alone, and fails every signal of a batch whose read fails, touching nothing', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const [token] = await minted(store, [{ n: 1 }]);
    const mixed = await processBatch({ store, endpoint: 'orders', handler: applyOrder }, [
      { tokenId: 'not a token!', payload: { n: 9 } },
      { tokenId: token?.id, payload: { n: 1 } },
    ]);
    expect(mixed.map(outcomeKind)).toEqual(['failed', 'processed']);
    expect(mixed[0]).toMatchObject({ ok: false, error: { code: ErrorCodes.TOKEN_MALFORMED } });

    const [a, b] = await minted(store, [{ n: 7 }, { n: 8 }]);
    vi.spyOn(store, 'getTokens').mockRejectedValue(new StoreUnavailableError('down'));
    const retry = { attempts: 2, baseDelayMs: 1, maxDelayMs: 1 };
    const down = await processBatch(
      { store, endpoint: 'orders', handler: applyOrder, retry: { versionConflict: retry, transient: retry } },
      [a, b].map((t) => ({ tokenId: t?.id, payload: t?.payload as Order })),
    );
    expect(down).toEqual([
      { ok: false, error: expect.objectContaining({ code: ErrorCodes.STORE_UNAVAILABLE }) },
      { ok: false, error: expect.objectContaining({ code: ErrorCodes.STORE_UNAVAILABLE }) },
    ]);
    expect((await store.getToken(a?.id ?? ''))?.status).toBe('pending');
    await store.close();
  });
});

/** Records the calls it gets; refuses the ids in `refused`, as a broker nacks a message. */
class BatchSender implements SignalSender {
  readonly medium = 'amqp' as const;
  readonly calls: string[][] = [];
  readonly refused = new Set<string>();
  async send(token: TokenRecord): Promise<void> {
    this.calls.push([token.id]);
  }
  async sendMany(tokens: readonly TokenRecord[]): Promise<unknown[]> {
    this.calls.push(tokens.map((token) => token.id));
    return tokens.map((token) =>
      this.refused.has(token.id) ? new DispatchFailedError('nacked', { tokenId: token.id }) : undefined,
    );
  }
}

describe('Dispatcher with a sender that takes batches', () => {
  it('sends a batch in one call, marks the sent ones in one write, and leaves the refused ones pending', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const sender = new BatchSender();
    const dispatcher = new Dispatcher({ store, senders: [sender] });
    const tokens = Array.from({ length: 4 }, (_, n) =>
      pendingToken({ destination: shipments, payload: { n } }, { mintedBy: 'orders', now: Date.now() }),
    );
    await store.mint(tokens);
    sender.refused.add(tokens[2]?.id ?? '');
    const marks = vi.spyOn(store, 'markDispatched');
    // Two dispatches finishing in one turn: their marks go to the store together.
    const [first, second] = await Promise.all([
      dispatcher.dispatch(tokens.slice(0, 3), 'hop'),
      dispatcher.dispatch(tokens.slice(3), 'hop'),
    ]);
    expect(sender.calls).toEqual([tokens.slice(0, 3).map((t) => t.id), [tokens[3]?.id]]);
    expect(first?.failed.map((f) => f.tokenId)).toEqual([tokens[2]?.id]);
    expect(second?.dispatched).toEqual([tokens[3]?.id]);
    expect(marks).toHaveBeenCalledTimes(1);
    const statuses = await Promise.all(tokens.map(async (t) => (await store.getToken(t.id))?.status));
    expect(statuses).toEqual(['dispatched', 'dispatched', 'pending', 'dispatched']);
    await store.close();
  });
});
