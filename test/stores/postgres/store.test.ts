import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClosedError,
  ConfigError,
  ErrorCodes,
  InvalidArgumentError,
  StoreSchemaMissingError,
  StoreUnavailableError,
} from '../../../src/core/errors.js';
import { fingerprint } from '../../../src/core/fingerprint.js';
import { pendingToken } from '../../../src/core/mint.js';
import { processSignal } from '../../../src/core/processor.js';
import type {
  CommitFailure,
  ConsumeRequest,
  HopWrites,
  OpenTransaction,
  StateWrite,
  TokenStore,
} from '../../../src/core/store.js';
import type { TokenRecord } from '../../../src/core/token.js';
import {
  commitFailure,
  type ErrorContext,
  storeError,
  type Verdict,
  verdictOf,
} from '../../../src/stores/postgres/failures.js';
import { type PgTx, PostgresTokenStore } from '../../../src/stores/postgres/postgres-store.js';
import { MIGRATION_FILES, migrationSql, qualifier } from '../../../src/stores/postgres/schema.js';
import { BEGIN_HOP, statements } from '../../../src/stores/postgres/statements.js';
import {
  freshSchemaName,
  POSTGRES_TEST_URL,
  postgresBehindProxy,
  schemaExists,
  withAdmin,
} from '../../support/postgres.js';

const queue = { medium: 'amqp', exchange: 'orders', routingKey: 'placed' } as const;

async function freshPgStore(options: { poolSize?: number } = {}): Promise<PostgresTokenStore> {
  return PostgresTokenStore.open({
    url: POSTGRES_TEST_URL,
    schema: freshSchemaName(),
    createTables: true,
    ...options,
  });
}

async function mintRoot(store: TokenStore, payload: { n: number } = { n: 1 }): Promise<TokenRecord> {
  const token = pendingToken({ destination: queue, payload }, { mintedBy: 'edge', now: Date.now() });
  await store.mint([token]);
  return token;
}

function consumeOf(token: TokenRecord, commitId = `c-${token.id}`): ConsumeRequest {
  return { tokenId: token.id, fingerprint: token.fingerprint as string, consumedBy: 'ledger', commitId };
}

function hop<T>(value: T, more: Partial<HopWrites<T>> = {}): HopWrites<T> {
  return { value, writes: [], mints: [], ...more };
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('PostgreSQL store: reading failures', () => {
  const withCode = (code: string) => Object.assign(new Error('any text'), { code });
  it.each([
    ['40001', {}, 'conflict'],
    ['40P01', {}, 'conflict'],
    ['23505', {}, 'duplicate'],
    ['08006', {}, 'unavailable'],
    ['08P01', {}, 'unavailable'],
    ['57P01', {}, 'unavailable'],
    ['57P03', { connecting: true }, 'unavailable'],
    ['53300', { connecting: true }, 'unavailable'],
    ['ECONNREFUSED', { connecting: true }, 'unavailable'],
    ['ECONNRESET', {}, 'unavailable'],
    ['42P01', {}, 'schema-missing'],
    ['3F000', {}, 'schema-missing'],
    ['28P01', { connecting: true }, 'permanent'],
    ['3D000', { connecting: true }, 'permanent'],
    ['22P02', {}, 'permanent'],
  ] as Array<[string, ErrorContext, Verdict]>)('reads %s (%o) as %s', (code, context, verdict) => {
    expect(verdictOf(withCode(code), context)).toBe(verdict);
  });

  it('reads an error without a code by where it came from, never by its text', () => {
    const terminated = new Error('Connection terminated unexpectedly');
    expect(verdictOf(terminated)).toBe('permanent');
    expect(verdictOf(terminated, { connectionLost: true })).toBe('unavailable');
    expect(verdictOf(new Error('timeout exceeded when trying to connect'), { connecting: true })).toBe(
      'unavailable',
    );
    expect(commitFailure(terminated, { connectionLost: true })).toEqual({
      kind: 'transient',
      cause: terminated,
    });
    expect(commitFailure(withCode('23514'))).toMatchObject({ kind: 'permanent' });
    expect(storeError(withCode('40001'), 'getToken')).toBeInstanceOf(StoreUnavailableError);
    expect(storeError(withCode('42P01'), 'getToken')).toBeInstanceOf(StoreSchemaMissingError);
  });
});

describe('PostgreSQL store: opening', () => {
  it('refuses a schema without Tollgate tables with StoreSchemaMissingError saying how to create them', async () => {
    const schema = freshSchemaName();
    const opening = PostgresTokenStore.open({ url: POSTGRES_TEST_URL, schema });
    const error = await opening.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreSchemaMissingError);
    expect(error).toMatchObject({ code: ErrorCodes.STORE_SCHEMA_MISSING, details: { schema } });
    expect((error as Error).message).toContain('deploy/postgres/001_tollgate.sql');
    expect((error as Error).message).toContain('createTables: true');
    expect(await schemaExists(schema)).toBe(false);
  });

  it.each([
    ['not a URL', 'not a url'],
    ['another scheme', 'mysql://postgres@127.0.0.1:5432/test'],
    ['an empty string', ''],
  ])('refuses %s as the URL with a ConfigError', async (_what, url) => {
    const error = await PostgresTokenStore.open({ url, createTables: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ code: ErrorCodes.CONFIG_INVALID, details: { setting: 'url' } });
  });

  it('refuses a schema name that is not a plain lower-case identifier', async () => {
    const error = await PostgresTokenStore.open({ url: POSTGRES_TEST_URL, schema: 'Tollgate"; DROP' }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: ErrorCodes.CONFIG_INVALID, details: { setting: 'schema' } });
  });

  it('fails fast with StoreUnavailableError when the server cannot be reached', async () => {
    const started = Date.now();
    const error = await PostgresTokenStore.open({
      url: 'postgres://postgres:secret-password@127.0.0.1:1/test',
      createTables: true,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(
      `${(error as Error).message}${JSON.stringify((error as StoreUnavailableError).details)}`,
    ).not.toContain('secret-password');
  });

  it('ships deploy/postgres migrations identical to what ensureSchema runs', () => {
    MIGRATION_FILES.forEach((file, i) => {
      const shipped = readFileSync(
        join(import.meta.dirname, '..', '..', '..', 'deploy', 'postgres', file),
        'utf8',
      );
      expect(shipped).toBe(migrationSql(i + 1, 'tollgate'));
    });
  });

  it('lets the shipped SQL file create a schema the store then opens without createTables', async () => {
    const schema = freshSchemaName();
    await withAdmin(async (client) => {
      for (let version = 1; version <= MIGRATION_FILES.length; version++) {
        await client.query(migrationSql(version, schema));
      }
    });
    const store = await PostgresTokenStore.open({ url: POSTGRES_TEST_URL, schema });
    await mintRoot(store);
    expect((await store.inFlightStats()).count).toBe(1);
    await store.close();
  });

  it('creates one schema when several processes open it with createTables at the same time', async () => {
    const schema = freshSchemaName();
    const stores = await Promise.all(
      Array.from({ length: 6 }, () =>
        PostgresTokenStore.open({ url: POSTGRES_TEST_URL, schema, createTables: true, poolSize: 2 }),
      ),
    );
    await Promise.all(stores.map((store) => store.ensureSchema()));
    const token = await mintRoot(stores[0] as PostgresTokenStore);
    expect((await (stores[5] as PostgresTokenStore).getToken(token.id))?.id).toBe(token.id);
    await Promise.all(stores.map((store) => store.close()));
  });

  it('refuses work once closed', async () => {
    const store = await freshPgStore();
    await store.close();
    await store.close();
    await expect(store.ping()).rejects.toBeInstanceOf(ClosedError);
    await expect(store.getToken('x')).rejects.toBeInstanceOf(ClosedError);
  });
});

describe('PostgreSQL store: records', () => {
  it('reads back JSON exactly as written: key order, JSON null payloads, escapes', async () => {
    const store = await freshPgStore();
    const payload = { z: 1, a: [null, 'é\u0000\ud83d\ude00"\\'], m: { y: true, b: 1.5 } };
    const token = pendingToken({ destination: queue, payload }, { mintedBy: 'edge', now: Date.now() });
    const nullPayload: TokenRecord = {
      ...pendingToken({ destination: queue, payload: null }, { mintedBy: 'e', now: 1 }),
    };
    await store.mint([token, nullPayload]);
    const read = await store.getToken(token.id);
    expect(JSON.stringify(read?.payload)).toBe(JSON.stringify(payload));
    expect(read).toEqual(token);
    const readNull = await store.getToken(nullPayload.id);
    expect(readNull).toEqual(nullPayload);
    expect(readNull && 'payload' in readNull).toBe(true);
    await store.close();
  });

  it('names the taken id when a mint of several tokens collides, and mints none of them', async () => {
    const store = await freshPgStore();
    const taken = await mintRoot(store, { n: 1 });
    const fresh = pendingToken(
      { destination: queue, payload: { n: 2 } },
      { mintedBy: 'edge', now: Date.now() },
    );
    await expect(store.mint([fresh, taken])).rejects.toMatchObject({
      code: ErrorCodes.TOKEN_EXISTS,
      details: { tokenId: taken.id },
    });
    expect(await store.getToken(fresh.id)).toBeUndefined();
    await store.close();
  });
});

describe('PostgreSQL store: state writes in one statement', () => {
  let store: PostgresTokenStore;
  beforeAll(async () => {
    store = await freshPgStore();
  });
  afterAll(async () => {
    await store.close();
  });

  /** Commits `writes` with a fresh token over state holding `existing` at version 1. */
  async function commitOver(existing: string[], writes: StateWrite[], mints: TokenRecord[] = []) {
    const prefix = `${Math.random().toString(36).slice(2)}/`;
    const key = (k: string) => prefix + k;
    if (existing.length > 0) {
      const setup = await mintRoot(store);
      const done = await store.commit({
        consume: consumeOf(setup),
        writes: existing.map((k) => ({ key: key(k), value: `old ${k}` })),
        mints: [],
        now: Date.now(),
      });
      expect(done).toEqual({ ok: true });
    }
    const token = await mintRoot(store);
    const result = await store.commit({
      consume: consumeOf(token),
      writes: writes.map((w) => ({ ...w, key: key(w.key) })),
      mints,
      now: Date.now(),
    });
    const read = async (k: string) => store.readState(key(k));
    return { result, read, token, key };
  }

  it.each([
    ['a blind put over an existing key', ['a'], { key: 'a', value: 2 }, true],
    ['a put at version 0 over a missing key', [], { key: 'a', value: 2, expectedVersion: 0 }, true],
    ['a put at version 0 over an existing key', ['a'], { key: 'a', value: 2, expectedVersion: 0 }, false],
    ['a put at the current version', ['a'], { key: 'a', value: 2, expectedVersion: 1 }, true],
    ['a put at another version', ['a'], { key: 'a', value: 2, expectedVersion: 2 }, false],
    ['a put at a version over a missing key', [], { key: 'a', value: 2, expectedVersion: 1 }, false],
    ['a blind delete of a missing key', [], { key: 'a' }, true],
    ['a delete at version 0 of a missing key', [], { key: 'a', expectedVersion: 0 }, true],
    ['a delete at version 0 of an existing key', ['a'], { key: 'a', expectedVersion: 0 }, false],
    ['a delete at the current version', ['a'], { key: 'a', expectedVersion: 1 }, true],
    ['a delete at another version', ['a'], { key: 'a', expectedVersion: 3 }, false],
  ] as Array<[string, string[], StateWrite, boolean]>)(
    '%s: holds = %s',
    async (_what, existing, write, holds) => {
      const others: StateWrite[] = [
        { key: 'z-blind', value: 'z' },
        { key: 'b-new', value: 'b', expectedVersion: 0 },
      ];
      const { result, read, token } = await commitOver(existing, [...others, write]);
      if (!holds) {
        expect(result).toMatchObject({ ok: false, failure: { kind: 'version-conflict' } });
        expect(result.ok || (result.failure as { key: string }).key.endsWith('/a')).toBe(true);
        expect((await store.getToken(token.id))?.status).toBe('pending');
        expect(await read('z-blind')).toBeUndefined();
        expect(await read('a')).toEqual(
          existing.length ? expect.objectContaining({ value: 'old a', version: 1 }) : undefined,
        );
        return;
      }
      expect(result).toEqual({ ok: true });
      expect((await store.getToken(token.id))?.status).toBe('consumed');
      expect(await read('z-blind')).toMatchObject({ value: 'z', version: 1 });
      expect(await read('b-new')).toMatchObject({ value: 'b', version: 1 });
      const after = await read('a');
      if (write.value === undefined) expect(after).toBeUndefined();
      else expect(after).toMatchObject({ value: 2, version: existing.length + 1 });
    },
  );

  it('reports the first of two tokens with one id in a commit as a mint collision', async () => {
    const child = pendingToken({ destination: queue, payload: { c: 1 } }, { mintedBy: 'e', now: 1 });
    const { result } = await commitOver([], [{ key: 'k', value: 1 }], [child, { ...child }]);
    expect(result).toEqual({ ok: false, failure: { kind: 'mint-collision', tokenId: child.id } });
    expect(await store.getToken(child.id)).toBeUndefined();
  });

  it('commits a hop that only mints, and reports a collision of such a hop', async () => {
    const child = pendingToken({ destination: queue, payload: { c: 2 } }, { mintedBy: 'e', now: 1 });
    const minted = await commitOver([], [], [child]);
    expect(minted.result).toEqual({ ok: true });
    expect((await store.getToken(child.id))?.status).toBe('pending');
    expect((await store.getToken(minted.token.id))?.status).toBe('consumed');

    // The id is taken now: nothing of this commit is written, and the token it consumes stays live.
    const again = pendingToken({ destination: queue, payload: { c: 3 } }, { mintedBy: 'e', now: 1 });
    const clash = await commitOver([], [], [again, { ...child, payload: { c: 4 } }]);
    expect(clash.result).toEqual({ ok: false, failure: { kind: 'mint-collision', tokenId: child.id } });
    expect(await store.getToken(again.id)).toBeUndefined();
    expect((await store.getToken(clash.token.id))?.status).toBe('pending');

    const twice = pendingToken({ destination: queue, payload: { c: 5 } }, { mintedBy: 'e', now: 1 });
    const doubled = await commitOver([], [], [twice, { ...twice }]);
    expect(doubled.result).toEqual({ ok: false, failure: { kind: 'mint-collision', tokenId: twice.id } });
    expect(await store.getToken(twice.id)).toBeUndefined();
  });
});

describe("PostgreSQL store: the handler's own SQL in the hop's transaction", () => {
  let store: PostgresTokenStore;
  let app: string;
  const balance = async (id: string): Promise<number | undefined> =>
    withAdmin(async (client) => {
      const { rows } = await client.query<{ balance: number }>(
        `SELECT balance FROM ${app}.accounts WHERE id = $1`,
        [id],
      );
      return rows[0]?.balance;
    });
  const credit = (tx: PgTx, id: string, amount: number) =>
    tx.query(
      `INSERT INTO ${app}.accounts AS a (id, balance) VALUES ($1, $2)
       ON CONFLICT (id) DO UPDATE SET balance = a.balance + excluded.balance`,
      [id, amount],
    );

  beforeAll(async () => {
    store = await freshPgStore();
    app = freshSchemaName();
    await withAdmin(async (client) => {
      await client.query(`CREATE SCHEMA ${app}`);
      await client.query(`CREATE TABLE ${app}.accounts (id text PRIMARY KEY, balance integer NOT NULL)`);
    });
  });
  afterAll(async () => {
    await store.close();
  });

  it('commits its own rows with the consume; a duplicate copy leaves the table as it was', async () => {
    const token = await mintRoot(store);
    const deliver = () =>
      processSignal<{ n: number }, void, PgTx>({
        store,
        endpoint: 'ledger',
        tokenId: token.id,
        payload: { n: 1 },
        handler: async (ctx) => {
          await credit(ctx.tx, 'own-1', 10);
          ctx.put('seen/own-1', true);
        },
      });
    expect((await deliver()).kind).toBe('processed');
    expect(await balance('own-1')).toBe(10);
    expect((await deliver()).kind).toBe('dropped');
    expect(await balance('own-1')).toBe(10);
    expect((await store.readState('seen/own-1'))?.value).toBe(true);
  });

  it('runs no body and writes nothing when the consume fails', async () => {
    const token = await mintRoot(store);
    const first = await store.ownData.transact(consumeOf(token), Date.now(), async ({ handle }) => {
      await credit(handle, 'own-2', 1);
      return hop('first');
    });
    expect(first).toEqual({ ok: true, value: 'first' });
    let ran = false;
    const again = await store.ownData.transact(consumeOf(token, 'other'), Date.now(), async ({ handle }) => {
      ran = true;
      await credit(handle, 'own-2', 1);
      return hop('again');
    });
    expect(again).toEqual({
      ok: false,
      failure: { kind: 'token-not-live', status: 'consumed', expired: false },
    });
    expect(ran).toBe(false);
    expect(await balance('own-2')).toBe(1);

    const wrong = await mintRoot(store, { n: 9 });
    const mismatch = await store.ownData.transact(
      { ...consumeOf(wrong), fingerprint: fingerprint({ n: 8 }) },
      Date.now(),
      async () => hop(undefined),
    );
    expect(mismatch).toEqual({ ok: false, failure: { kind: 'fingerprint-mismatch' } });
  });

  it('rolls its own SQL back and leaves the token live when the body throws, rethrowing the very error', async () => {
    const token = await mintRoot(store);
    const thrown = new Error('changed its mind');
    const outcome = store.ownData.transact(consumeOf(token), Date.now(), async ({ handle }) => {
      await credit(handle, 'own-3', 5);
      throw thrown;
    });
    await expect(outcome).rejects.toBe(thrown);
    expect(await balance('own-3')).toBeUndefined();
    expect((await store.getToken(token.id))?.status).toBe('pending');
  });

  it('rolls its own SQL back when a state write meets another version', async () => {
    const token = await mintRoot(store);
    const outcome = await store.ownData.transact(consumeOf(token), Date.now(), async ({ handle }) => {
      await credit(handle, 'own-4', 5);
      return hop('x', { writes: [{ key: 'own-4/state', value: 1, expectedVersion: 3 }] });
    });
    expect(outcome).toEqual({ ok: false, failure: { kind: 'version-conflict', key: 'own-4/state' } });
    expect(await balance('own-4')).toBeUndefined();
    expect((await store.getToken(token.id))?.status).toBe('pending');
  });

  it('commits state writes, mints and the stored response with its own SQL', async () => {
    const token = await mintRoot(store);
    const child = pendingToken({ destination: queue, payload: { child: 1 } }, { mintedBy: 'ledger', now: 5 });
    const response = {
      statusCode: 201,
      headers: { 'content-type': 'application/json' },
      body: '{"ok":true}',
    };
    const outcome = await store.ownData.transact(
      consumeOf(token),
      Date.now(),
      async ({ handle, readState }) => {
        await credit(handle, 'own-5', 2);
        expect(await readState('own-5/state')).toBeUndefined();
        return hop(7, {
          writes: [{ key: 'own-5/state', value: { a: 1 }, expectedVersion: 0 }],
          mints: [child],
          response,
        });
      },
    );
    expect(outcome).toEqual({ ok: true, value: 7 });
    expect(await balance('own-5')).toBe(2);
    expect(await store.readState('own-5/state')).toEqual({ key: 'own-5/state', value: { a: 1 }, version: 1 });
    expect(await store.getToken(child.id)).toEqual(child);
    expect((await store.getToken(token.id))?.response).toEqual(response);
  });

  it('consumes only inside a transaction its own BEGIN opened, so a consume sent behind a refused BEGIN changes nothing', async () => {
    const token = await mintRoot(store);
    const sql = statements(qualifier(store.schema));
    const values = [token.id, Date.now(), 'ledger', 'c-guard', null, Date.now() + 60_000, token.fingerprint];
    const consume = { name: sql.consumeReading.name, text: sql.consumeReading.text, values };
    await withAdmin(async (client) => {
      // On its own (as if BEGIN had failed), and inside a transaction someone else opened.
      expect((await client.query(consume)).rowCount).toBe(0);
      await client.query('BEGIN');
      expect((await client.query(consume)).rowCount).toBe(0);
      await client.query('ROLLBACK');
      expect((await store.getToken(token.id))?.status).toBe('pending');
      // Behind BEGIN_HOP it consumes; the mark ends with that transaction.
      await client.query(BEGIN_HOP);
      expect((await client.query(consume)).rowCount).toBe(1);
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      expect((await client.query(consume)).rowCount).toBe(0);
      await client.query('ROLLBACK');
    });
    expect((await store.getToken(token.id))?.status).toBe('pending');
  });

  it.each([
    ['no state write', []],
    ['a blind state write', [{ key: 'own-8/state', value: 1 }]],
    ['a conditional state write', [{ key: 'own-8/state', value: 1, expectedVersion: 0 }]],
  ] as Array<[string, StateWrite[]]>)(
    'reports a taken token id of a hop with %s, and writes nothing of it',
    async (_what, writes) => {
      const taken = await mintRoot(store);
      const fresh = pendingToken({ destination: queue, payload: { f: 1 } }, { mintedBy: 'ledger', now: 5 });
      for (const mints of [
        [fresh, { ...taken }],
        [fresh, { ...fresh }],
      ]) {
        const token = await mintRoot(store);
        const outcome = await store.ownData.transact(consumeOf(token), Date.now(), async ({ handle }) => {
          await credit(handle, 'own-8', 1);
          return hop('x', { writes, mints });
        });
        expect(outcome).toEqual({ ok: false, failure: { kind: 'mint-collision', tokenId: mints[1]?.id } });
        expect((await store.getToken(token.id))?.status).toBe('pending');
      }
      expect(await balance('own-8')).toBeUndefined();
      expect(await store.readState('own-8/state')).toBeUndefined();
      expect(await store.getToken(fresh.id)).toBeUndefined();
      expect(await store.getToken(taken.id)).toEqual(taken);
    },
  );

  // The staging statement has only the parts a hop needs: every combination of them, committed and read back.
  const shapes = [false, true].flatMap((writes) =>
    [0, 1, 2].flatMap((mints) =>
      [false, true].map((answer) => ({
        writes,
        mints,
        answer,
        name: `${writes ? 'state writes' : 'no state write'}, ${mints} mints, ${answer ? 'an answer' : 'no answer'}`,
      })),
    ),
  );
  it.each(shapes)('commits a hop staging $name', async (shape) => {
    const token = await mintRoot(store);
    const key = `shape/${token.id}`;
    const children = Array.from({ length: shape.mints }, (_, i) =>
      pendingToken({ destination: queue, payload: { child: i } }, { mintedBy: 'ledger', now: 5 }),
    );
    const response = { statusCode: 200, headers: {}, body: `{"token":"${token.id}"}` };
    const outcome = await store.ownData.transact(consumeOf(token), Date.now(), async ({ handle }) => {
      await credit(handle, key, 1);
      return hop('done', {
        writes: shape.writes ? [{ key, value: { n: 1 }, expectedVersion: 0 }] : [],
        mints: children,
        ...(shape.answer ? { response } : {}),
      });
    });
    expect(outcome).toEqual({ ok: true, value: 'done' });
    expect(await balance(key)).toBe(1);
    expect(await store.readState(key)).toEqual(
      shape.writes ? { key, value: { n: 1 }, version: 1 } : undefined,
    );
    for (const child of children) expect(await store.getToken(child.id)).toEqual(child);
    const consumed = await store.getToken(token.id);
    expect(consumed?.status).toBe('consumed');
    expect(consumed?.response).toEqual(shape.answer ? response : undefined);
  });

  it('lets exactly one of 50 concurrent transactions on one token commit', async () => {
    const token = await mintRoot(store);
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.ownData.transact(consumeOf(token, `run-${i}`), Date.now(), async ({ handle }) => {
          await credit(handle, 'own-6', 1);
          await new Promise((resolve) => setTimeout(resolve, 5));
          return hop(i);
        }),
      ),
    );
    expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
    const refusals = outcomes.filter((o): o is { ok: false; failure: CommitFailure } => !o.ok);
    expect(refusals.map((o) => o.failure.kind)).toEqual(Array(49).fill('token-not-live'));
    expect(await balance('own-6')).toBe(1);
  });

  it('answers transient (nothing written) when the handler’s own SQL deadlocks, so the hop runs again', async () => {
    await withAdmin((client) =>
      client.query(`INSERT INTO ${app}.accounts (id, balance) VALUES ('dl-a', 0), ('dl-b', 0)`),
    );
    const [one, two] = [await mintRoot(store, { n: 1 }), await mintRoot(store, { n: 2 })];
    const bothLocked = { count: 0, ready: deferred() };
    const lockBoth = (first: string, second: string) => async (open: OpenTransaction<PgTx>) => {
      await open.handle.query(`UPDATE ${app}.accounts SET balance = balance + 1 WHERE id = $1`, [first]);
      bothLocked.count += 1;
      if (bothLocked.count === 2) bothLocked.ready.resolve();
      await bothLocked.ready.promise;
      await open.handle.query(`UPDATE ${app}.accounts SET balance = balance + 1 WHERE id = $1`, [second]);
      return hop(first);
    };
    const outcomes = await Promise.all([
      store.ownData.transact(consumeOf(one), Date.now(), lockBoth('dl-a', 'dl-b')),
      store.ownData.transact(consumeOf(two), Date.now(), lockBoth('dl-b', 'dl-a')),
    ]);
    expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
    const loser = outcomes.find((o) => !o.ok);
    expect(loser && !loser.ok && loser.failure.kind).toBe('transient');
    expect(loser && !loser.ok && (loser.failure as { cause: { code?: string } }).cause.code).toBe('40P01');
    const statuses = [(await store.getToken(one.id))?.status, (await store.getToken(two.id))?.status].sort();
    expect(statuses).toEqual(['consumed', 'pending']);
    expect((await balance('dl-a')) ?? 0).toBe(1);
    expect((await balance('dl-b')) ?? 0).toBe(1);
  });

  it('reports a transient failure, token untouched, when PostgreSQL drops the connection mid-hop; then works on', async () => {
    const token = await mintRoot(store);
    const outcome = await store.ownData.transact(consumeOf(token), Date.now(), async ({ handle }) => {
      await credit(handle, 'own-7', 3);
      const { rows } = await handle.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await withAdmin((client) => client.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await credit(handle, 'own-7', 3);
      return hop('never');
    });
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.failure.kind).toBe('transient');
    expect((await store.getToken(token.id))?.status).toBe('pending');
    expect(await balance('own-7')).toBeUndefined();

    // The same when the body returns without touching the broken connection again.
    const quiet = await store.ownData.transact(consumeOf(token), Date.now(), async ({ handle }) => {
      const { rows } = await handle.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await withAdmin((client) => client.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]));
      await new Promise((resolve) => setTimeout(resolve, 50));
      return hop('never', { writes: [{ key: 'own-7/state', value: 1 }] });
    });
    expect(!quiet.ok && quiet.failure.kind).toBe('transient');
    expect((await store.getToken(token.id))?.status).toBe('pending');

    // The store carries on with fresh connections, and the signal comes again and applies once.
    const retried = await processSignal<{ n: number }, void, PgTx>({
      store,
      endpoint: 'ledger',
      tokenId: token.id,
      payload: { n: 1 },
      handler: async (ctx) => {
        await credit(ctx.tx, 'own-7', 3);
      },
    });
    expect(retried.kind).toBe('processed');
    expect(await balance('own-7')).toBe(3);
    await store.ping();
  });

  it('re-runs the whole hop through processSignal when the connection drops once', async () => {
    const token = await mintRoot(store);
    let runs = 0;
    const outcome = await processSignal<{ n: number }, number, PgTx>({
      store,
      endpoint: 'ledger',
      tokenId: token.id,
      payload: { n: 1 },
      handler: async (ctx) => {
        runs += 1;
        await credit(ctx.tx, 'own-8', 4);
        if (runs === 1) {
          const { rows } = await ctx.tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          await withAdmin((client) => client.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]));
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        return runs;
      },
    });
    expect(outcome).toMatchObject({ kind: 'processed', result: 2 });
    expect(await balance('own-8')).toBe(4);
  });

  it('recognises its own hop when the transaction committed but the answer was lost', async () => {
    const token = await mintRoot(store);
    let lost = 0;
    const lossy = Object.create(store) as TokenStore<PgTx>;
    Object.defineProperty(lossy, 'ownData', {
      value: {
        mode: 'interactive',
        transact: async (...args: Parameters<PostgresTokenStore['ownData']['transact']>) => {
          const result = await store.ownData.transact(...args);
          if (result.ok && lost === 0) {
            lost += 1;
            return { ok: false, failure: { kind: 'transient', cause: new Error('socket hang up') } };
          }
          return result;
        },
      },
    });
    let runs = 0;
    const outcome = await processSignal<{ n: number }, void, PgTx>({
      store: lossy,
      endpoint: 'ledger',
      tokenId: token.id,
      payload: { n: 1 },
      handler: async (ctx) => {
        runs += 1;
        await credit(ctx.tx, 'own-9', 1);
      },
    });
    expect(lost).toBe(1);
    expect(runs).toBe(1);
    expect(outcome.kind).toBe('processed');
    expect(await balance('own-9')).toBe(1);
  });

  it('does not commit when the handler swallowed an error of its own SQL (the transaction is aborted)', async () => {
    const token = await mintRoot(store);
    const outcome = await store.ownData.transact(consumeOf(token), Date.now(), async ({ handle }) => {
      await credit(handle, 'own-10', 1);
      await handle.query('SELECT 1 / 0').catch(() => undefined);
      return hop('swallowed');
    });
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.failure.kind).toBe('permanent');
    expect(await balance('own-10')).toBeUndefined();
    expect((await store.getToken(token.id))?.status).toBe('pending');
  });

  it('closes within its grace period while a hop never ends, rolling that hop back', async () => {
    const other = await PostgresTokenStore.open({ url: POSTGRES_TEST_URL, schema: store.schema });
    const token = await mintRoot(other);
    const entered = deferred();
    void other.ownData.transact(consumeOf(token), Date.now(), async ({ handle }) => {
      await credit(handle, 'own-11', 1);
      entered.resolve();
      return new Promise<HopWrites<void>>(() => undefined);
    });
    await entered.promise;
    const started = Date.now();
    await other.close();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await store.getToken(token.id))?.status).toBe('pending');
    expect(await balance('own-11')).toBeUndefined();
  });

  it('refuses transaction control on the handle, and the handle once the body returned', async () => {
    const token = await mintRoot(store);
    let kept: PgTx | undefined;
    const outcome = await store.ownData.transact(consumeOf(token), Date.now(), async ({ handle }) => {
      for (const text of [
        'COMMIT',
        ' begin',
        '/* x */ rollback',
        'END',
        '-- c\nABORT',
        'prepare transaction $$x$$',
      ]) {
        await expect(handle.query(text)).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      await handle.query('SAVEPOINT s1');
      await handle.query('ROLLBACK TO SAVEPOINT s1');
      await handle.query('RELEASE SAVEPOINT s1');
      kept = handle;
      return hop('ok');
    });
    expect(outcome).toEqual({ ok: true, value: 'ok' });
    await expect(kept?.query('SELECT 1')).rejects.toBeInstanceOf(ClosedError);
  });

  it('gives the handler node-postgres’s own type parsing, one statement per call', async () => {
    const token = await mintRoot(store);
    const outcome = await store.ownData.transact(consumeOf(token), Date.now(), async ({ handle }) => {
      const { rows, rowCount } = await handle.query<{ big: unknown; doc: unknown }>(
        `SELECT 9007199254740993::bigint AS big, '{"a":1}'::json AS doc`,
      );
      expect(rowCount).toBe(1);
      expect(rows[0]).toEqual({ big: '9007199254740993', doc: { a: 1 } });
      await expect(handle.query('SELECT 1; SELECT 2')).rejects.toBeInstanceOf(pg.DatabaseError);
      return hop('typed');
    });
    // The multi-statement text was refused by the server, which aborted the transaction: nothing commits.
    expect(outcome.ok).toBe(false);
  });
});

describe('PostgreSQL store: a partition that drops packets without a reset', () => {
  it('cuts a connection whose statement goes unanswered, and reports the store unavailable', async () => {
    const schema = freshSchemaName();
    const direct = await PostgresTokenStore.open({ url: POSTGRES_TEST_URL, schema, createTables: true });
    const { proxy, url } = await postgresBehindProxy();
    const store = await PostgresTokenStore.open({
      url,
      schema,
      poolSize: 1,
      statementTimeoutMs: 500,
      connectTimeoutMs: 1000,
    });
    try {
      const token = await mintRoot(direct);
      expect((await store.getToken(token.id))?.status).toBe('pending');
      proxy.setMode({ kind: 'blackhole' });
      // Without the cut this read waits for TCP to give up (hours) and the test times out.
      await expect(store.getToken(token.id)).rejects.toBeInstanceOf(StoreUnavailableError);
      proxy.setMode({ kind: 'pass' });
      // The cut connection was not pooled again: the next statement gets a fresh one and works.
      expect((await store.getToken(token.id))?.status).toBe('pending');
    } finally {
      await store.close();
      await direct.close();
      await proxy.close();
    }
  });

  it('asks the server to end a transaction left idle, so a vanished hop does not hold its token row', async () => {
    const store = await PostgresTokenStore.open({
      url: POSTGRES_TEST_URL,
      schema: freshSchemaName(),
      createTables: true,
      idleInTransactionTimeoutMs: 1234,
    });
    try {
      const token = await mintRoot(store);
      const outcome = await store.ownData.transact(consumeOf(token), Date.now(), async ({ handle }) => {
        const { rows } = await handle.query<{ setting: string }>(
          "SELECT setting FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout'",
        );
        return hop(rows[0]?.setting);
      });
      expect(outcome).toEqual({ ok: true, value: '1234' });
    } finally {
      await store.close();
    }
  });
});
