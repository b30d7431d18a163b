import { describe, expect, it } from 'vitest';
import { type ErrorCode, TollgateError } from '../../src/core/errors.js';
import { pendingToken } from '../../src/core/mint.js';
import { processSignal } from '../../src/core/processor.js';
import type { TokenStore } from '../../src/core/store.js';
import type { Destination, TokenRecord } from '../../src/core/token.js';

/** A store with the application's own `accounts` table (id, balance) beside Tollgate's tables. */
export interface OwnTablesFixture<Tx> {
  store: TokenStore<Tx>;
  /** The accounts table's name, as handlers name it to their handle. */
  table: string;
  /** Reads an account's balance outside any hop. */
  balance(id: string): Promise<number | undefined>;
  /** Drops the table and whatever else the fixture made. The store is closed by the suite. */
  cleanup(): Promise<void>;
}

/** How one store's handle changes the `accounts` table; each store speaks its own dialect. */
export interface OwnTables<Tx> {
  open(): Promise<OwnTablesFixture<Tx>>;
  /** Adds `amount` to the account, creating it first if missing. */
  credit(tx: Tx, table: string, id: string, amount: number): Promise<void>;
  /** Creates the account; refused by the store when it exists already. */
  create(tx: Tx, table: string, id: string, balance: number): Promise<void>;
  /** The code `processSignal` throws with when `create` is refused. */
  refusedCode: ErrorCode;
}

const orders: Destination = { medium: 'amqp', exchange: 'orders', routingKey: 'placed' };
const receipts: Destination = { medium: 'amqp', exchange: 'receipts', routingKey: 'sent' };

async function mintRoot<Tx>(store: TokenStore<Tx>, payload: { account: string; amount: number }) {
  const token = pendingToken({ destination: orders, payload }, { mintedBy: 'edge', now: Date.now() });
  await store.mint([token]);
  return token;
}

function deliver<Tx>(
  store: TokenStore<Tx>,
  token: TokenRecord,
  handler: (tx: Tx, payload: { account: string; amount: number }) => Promise<void>,
) {
  const payload = token.payload as { account: string; amount: number };
  return processSignal<typeof payload, string, Tx>({
    store,
    endpoint: 'ledger',
    tokenId: token.id,
    payload,
    handler: async (ctx) => {
      await handler(ctx.tx, ctx.payload);
      ctx.put(`seen/${ctx.payload.account}`, true);
      return ctx.emit(receipts, { account: ctx.payload.account });
    },
  });
}

/** The one suite every store's own-table access must pass: the application's rows change exactly once. */
export function ownTablesContract<Tx>(name: string, tables: OwnTables<Tx>): void {
  describe(`own tables in the hop's transaction: ${name}`, () => {
    it('commits the handler’s own write with the consume; a duplicate copy leaves the table as it was', async () => {
      const { store, table, balance, cleanup } = await tables.open();
      try {
        const token = await mintRoot(store, { account: 'a-1', amount: 30 });
        const credit = (tx: Tx, p: { account: string; amount: number }) =>
          tables.credit(tx, table, p.account, p.amount);
        const first = await deliver(store, token, credit);
        expect(first.kind).toBe('processed');
        expect(await balance('a-1')).toBe(30);

        const again = await deliver(store, token, credit);
        expect(again.kind).toBe('dropped');
        expect(await balance('a-1')).toBe(30);
        // The key-value write and the emitted token committed in the same transaction.
        expect((await store.readState('seen/a-1'))?.value).toBe(true);
        const emitted = first.kind === 'processed' ? first.emitted[0] : undefined;
        expect((await store.getToken(emitted?.id ?? ''))?.status).toBe('pending');
      } finally {
        await cleanup();
        await store.close();
      }
    });

    it('leaves the table, the state and the token as they were when the handler throws after its own write', async () => {
      const { store, table, balance, cleanup } = await tables.open();
      try {
        const token = await mintRoot(store, { account: 'a-2', amount: 5 });
        await expect(
          deliver(store, token, async (tx, p) => {
            await tables.credit(tx, table, p.account, p.amount);
            throw new Error('the handler changed its mind');
          }),
        ).rejects.toMatchObject({ code: 'TOLLGATE_ERR_HANDLER_FAILED' });
        expect(await balance('a-2')).toBeUndefined();
        expect(await store.readState('seen/a-2')).toBeUndefined();
        expect((await store.getToken(token.id))?.status).toBe('pending');

        // The signal comes again and applies once.
        const retried = await deliver(store, token, (tx, p) => tables.credit(tx, table, p.account, p.amount));
        expect(retried.kind).toBe('processed');
        expect(await balance('a-2')).toBe(5);
      } finally {
        await cleanup();
        await store.close();
      }
    });

    it('commits nothing of the hop when the store refuses the handler’s own write', async () => {
      const { store, table, balance, cleanup } = await tables.open();
      try {
        const setup = await mintRoot(store, { account: 'a-3', amount: 7 });
        await deliver(store, setup, (tx, p) => tables.create(tx, table, p.account, p.amount));
        expect(await balance('a-3')).toBe(7);

        const token = await mintRoot(store, { account: 'a-3', amount: 1 });
        const inFlightBefore = (await store.inFlightStats()).count;
        const refused = await deliver(store, token, async (tx, p) => {
          await tables.credit(tx, table, 'a-4', p.amount);
          await tables.create(tx, table, p.account, p.amount);
        }).catch((error: unknown) => error);
        expect(refused).toBeInstanceOf(TollgateError);
        expect((refused as TollgateError).code).toBe(tables.refusedCode);
        expect(await balance('a-3')).toBe(7);
        expect(await balance('a-4')).toBeUndefined();
        expect((await store.getToken(token.id))?.status).toBe('pending');
        // No receipt token was minted by the refused hop.
        expect((await store.inFlightStats()).count).toBe(inFlightBefore);
      } finally {
        await cleanup();
        await store.close();
      }
    });

    it('lets exactly one of 20 concurrent copies of a signal change the table', async () => {
      const { store, table, balance, cleanup } = await tables.open();
      try {
        const token = await mintRoot(store, { account: 'a-5', amount: 11 });
        const outcomes = await Promise.all(
          Array.from({ length: 20 }, () =>
            deliver(store, token, (tx, p) => tables.credit(tx, table, p.account, p.amount)),
          ),
        );
        expect(outcomes.filter((o) => o.kind === 'processed')).toHaveLength(1);
        expect(outcomes.filter((o) => o.kind === 'dropped')).toHaveLength(19);
        expect(await balance('a-5')).toBe(11);
      } finally {
        await cleanup();
        await store.close();
      }
    });
  });
}
