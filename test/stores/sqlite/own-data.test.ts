import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ErrorCodes, InvalidArgumentError, type TollgateError } from '../../../src/core/errors.js';
import { newTokenId } from '../../../src/core/ids.js';
import { pendingToken } from '../../../src/core/mint.js';
import { processSignal } from '../../../src/core/processor.js';
import type { CommitRequest, StagedAction, StateWrite } from '../../../src/core/store.js';
import type { Destination, TokenRecord } from '../../../src/core/token.js';
import type { SqliteTx } from '../../../src/stores/sqlite/own-data.js';
import { SqliteTokenStore } from '../../../src/stores/sqlite/sqlite-store.js';
import { WriteBatch } from '../../../src/stores/sqlite/write-batch.js';

// The application's own `orders` table lives in the store's database file; handlers change it through the
// store's staging handle (`ownData.open()`, `ctx.tx` in a handler) and the changes commit with the consume.
// An independent connection (`app`) creates the table and observes what is committed.

const destination: Destination = { medium: 'amqp', exchange: 'orders', routingKey: 'placed' };

interface Order {
  id: string;
  qty: number;
  status: string;
  version: number;
}

describe('SQLite store: handlers change their own tables in the hop’s commit', () => {
  let dir: string;
  let filename: string;
  let store: SqliteTokenStore;
  let app: Database.Database;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-own-'));
    filename = join(dir, 'tollgate.db');
    store = new SqliteTokenStore({ filename });
    app = new Database(filename);
    app.exec(`CREATE TABLE orders (
      id TEXT PRIMARY KEY,
      qty INTEGER NOT NULL CHECK (qty > 0),
      status TEXT NOT NULL DEFAULT 'new',
      version INTEGER NOT NULL DEFAULT 1
    )`);
  });
  afterEach(async () => {
    await store.close();
    app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const orders = () => app.prepare('SELECT * FROM orders ORDER BY id').all() as Order[];
  const stateKeys = () => app.prepare('SELECT key FROM state ORDER BY key').pluck().all();
  const statusOf = async (token: TokenRecord) => (await store.getToken(token.id))?.status;

  async function mintToken(payload: { order: string } = { order: 'o-1' }): Promise<TokenRecord> {
    const token = pendingToken({ destination, payload }, { mintedBy: 'edge', now: Date.now() });
    await store.mint([token]);
    return token;
  }

  function commitOf(
    token: TokenRecord,
    own: readonly StagedAction[],
    extra: { writes?: StateWrite[]; mints?: TokenRecord[] } = {},
  ): CommitRequest {
    return {
      consume: {
        tokenId: token.id,
        fingerprint: token.fingerprint as string,
        consumedBy: 'order-service',
        commitId: newTokenId(),
      },
      writes: extra.writes ?? [],
      mints: extra.mints ?? [],
      own,
      now: Date.now(),
    };
  }

  /** What one handler run stages: a fresh handle, the body run on it, the staged actions taken. */
  function stage(body: (tx: SqliteTx) => void): readonly StagedAction[] {
    const session = store.ownData.open();
    body(session.handle);
    return session.staged();
  }

  function child(parent: TokenRecord): TokenRecord {
    return pendingToken(
      { destination, payload: { from: parent.id } },
      {
        mintedBy: 'order-service',
        parentId: parent.id,
        conversationId: parent.conversationId,
        now: Date.now(),
      },
    );
  }

  describe('commit', () => {
    it('runs the staged statements, in order, in the transaction that consumes the token', async () => {
      const token = await mintToken();
      const own = stage((tx) => {
        tx.run('INSERT INTO orders (id, qty) VALUES (?, ?)', ['o-1', 2]);
        // Depends on the first: the order of staging is the order of running.
        tx.run("UPDATE orders SET status = 'placed', version = version + 1 WHERE id = @id", { id: 'o-1' });
      });
      expect(orders()).toEqual([]); // staged, not written

      const emitted = child(token);
      const result = await store.commit(
        commitOf(token, own, { writes: [{ key: 'placed/o-1', value: true }], mints: [emitted] }),
      );
      expect(result).toEqual({ ok: true });
      expect(orders()).toEqual([{ id: 'o-1', qty: 2, status: 'placed', version: 2 }]);
      expect(await statusOf(token)).toBe('consumed');
      expect(stateKeys()).toEqual(['placed/o-1']);
      expect(await statusOf(emitted)).toBe('pending');
    });

    it('leaves the table as it was when a duplicate commit comes for the consumed token', async () => {
      const token = await mintToken();
      const insert = (tx: SqliteTx) => tx.run('INSERT INTO orders (id, qty) VALUES (?, ?)', ['o-1', 2]);
      expect(await store.commit(commitOf(token, stage(insert)))).toEqual({ ok: true });

      // The copy's statement would add 5 to the quantity: it must not run.
      const copy = stage((tx) => tx.run('UPDATE orders SET qty = qty + 5 WHERE id = ?', ['o-1']));
      const again = await store.commit(commitOf(token, copy));
      expect(again).toEqual({
        ok: false,
        failure: { kind: 'token-not-live', status: 'consumed', expired: false },
      });
      expect(orders()).toEqual([{ id: 'o-1', qty: 2, status: 'new', version: 1 }]);
    });

    it('answers version-conflict when a statement changes another number of rows than expected; nothing is written', async () => {
      app.prepare('INSERT INTO orders (id, qty, version) VALUES (?, ?, ?)').run('o-1', 2, 1);
      const token = await mintToken();
      const sql = `UPDATE orders
        SET status = 'paid', version = version + 1
        WHERE id = ? AND version = ?`;
      const own = stage((tx) => {
        const read = tx.get<Order>('SELECT * FROM orders WHERE id = ?', ['o-1']);
        tx.run('INSERT INTO orders (id, qty) VALUES (?, ?)', ['o-2', 1]);
        tx.run(sql, ['o-1', read?.version ?? 0], { expectRows: 1 });
      });
      // Someone else changes the row between the handler's read and the commit.
      app.prepare('UPDATE orders SET version = version + 1 WHERE id = ?').run('o-1');

      const emitted = child(token);
      const result = await store.commit(
        commitOf(token, own, { writes: [{ key: 'paid/o-1', value: true }], mints: [emitted] }),
      );
      expect(result).toEqual({
        ok: false,
        failure: {
          kind: 'version-conflict',
          key: "sqlite: UPDATE orders SET status = 'paid', version = version + 1 WHE",
        },
      });
      expect(orders()).toEqual([{ id: 'o-1', qty: 2, status: 'new', version: 2 }]);
      expect(stateKeys()).toEqual([]);
      expect(await store.getToken(emitted.id)).toBeUndefined();
      expect(await statusOf(token)).toBe('pending');

      // A run on fresh state commits.
      const fresh = stage((tx) => {
        const read = tx.get<Order>('SELECT * FROM orders WHERE id = ?', ['o-1']);
        tx.run(sql, ['o-1', read?.version ?? 0], { expectRows: 1 });
      });
      expect(await store.commit(commitOf(token, fresh))).toEqual({ ok: true });
      expect(orders()).toEqual([{ id: 'o-1', qty: 2, status: 'paid', version: 3 }]);
    });

    it('expectRows: 0 makes an insert-if-absent a condition', async () => {
      app.prepare('INSERT INTO orders (id, qty) VALUES (?, ?)').run('o-1', 2);
      const token = await mintToken();
      const own = stage((tx) =>
        tx.run('INSERT INTO orders (id, qty) VALUES (?, ?) ON CONFLICT (id) DO NOTHING', ['o-1', 9], {
          expectRows: 1,
        }),
      );
      const result = await store.commit(commitOf(token, own));
      expect(result.ok ? undefined : result.failure.kind).toBe('version-conflict');
      expect(orders()[0]?.qty).toBe(2);
    });

    it('fails the hop as own-condition-failed when a statement violates a constraint; nothing is written', async () => {
      app.prepare('INSERT INTO orders (id, qty) VALUES (?, ?)').run('o-1', 2);
      const token = await mintToken();
      const own = stage((tx) => {
        tx.run('INSERT INTO orders (id, qty) VALUES (?, ?)', ['o-2', 1]);
        tx.run('INSERT INTO orders (id, qty) VALUES (?, ?)', ['o-1', 3]); // primary key taken
      });
      const emitted = child(token);
      const result = await store.commit(
        commitOf(token, own, { writes: [{ key: 'k', value: 1 }], mints: [emitted] }),
      );
      expect(result).toEqual({
        ok: false,
        failure: {
          kind: 'own-condition-failed',
          item: 'sqlite: INSERT INTO orders (id, qty) VALUES (?, ?) (UNIQUE constraint failed: orders.id)',
          retry: false,
        },
      });
      expect(orders()).toEqual([{ id: 'o-1', qty: 2, status: 'new', version: 1 }]);
      expect(stateKeys()).toEqual([]);
      expect(await store.getToken(emitted.id)).toBeUndefined();
      expect(await statusOf(token)).toBe('pending');

      // A CHECK constraint, with retryOnConflict: the same failure, asking for a re-run.
      const check = stage((tx) =>
        tx.run('UPDATE orders SET qty = ? WHERE id = ?', [0, 'o-1'], { retryOnConflict: true }),
      );
      const checked = await store.commit(commitOf(token, check));
      expect(checked.ok ? undefined : checked.failure).toMatchObject({
        kind: 'own-condition-failed',
        retry: true,
      });
      expect(await statusOf(token)).toBe('pending');
    });

    it('reports any other failure of a statement as permanent, naming the statement; nothing is written', async () => {
      const token = await mintToken();
      const own = stage((tx) => {
        tx.run('INSERT INTO orders (id, qty) VALUES (?, ?)', ['o-1', 1]);
        // abs() of the smallest integer overflows: a runtime error, not a constraint.
        tx.run('UPDATE orders SET qty = abs(?) WHERE id = ?', [-9223372036854775808n, 'o-1']);
      });
      const result = await store.commit(commitOf(token, own));
      expect(result.ok).toBe(false);
      const failure = result.ok ? undefined : result.failure;
      expect(failure?.kind).toBe('permanent');
      const cause = failure?.kind === 'permanent' ? (failure.cause as TollgateError) : undefined;
      expect(cause?.code).toBe(ErrorCodes.STORE_FAILURE);
      expect(cause?.details.statement).toBe('UPDATE orders SET qty = abs(?) WHERE id = ?');
      expect(orders()).toEqual([]);
      expect(await statusOf(token)).toBe('pending');
    });

    it('in a group commit, fails only the hop whose statement failed; the others commit', async () => {
      app.prepare('INSERT INTO orders (id, qty) VALUES (?, ?)').run('taken', 1);
      const tokens = await Promise.all([1, 2, 3, 4, 5].map((n) => mintToken({ order: `o-${n}` })));
      const requests = tokens.map((token, i) => {
        const id = i === 2 ? 'taken' : `o-${i}`;
        const own = stage((tx) => {
          tx.run('INSERT INTO orders (id, qty) VALUES (?, ?)', [`pre-${i}`, 1]);
          tx.run('INSERT INTO orders (id, qty) VALUES (?, ?)', [id, 1]);
        });
        return commitOf(token, own, { writes: [{ key: `hop/${i}`, value: i }] });
      });
      // Asked for in one turn of the event loop: one transaction, a savepoint each.
      const batches = vi.spyOn(
        WriteBatch.prototype as unknown as { run(jobs: readonly unknown[]): void },
        'run',
      );
      const results = await Promise.all(requests.map((request) => store.commit(request)));
      expect(batches.mock.calls.map(([jobs]) => jobs.length)).toEqual([5]);
      batches.mockRestore();
      expect(results.map((r) => (r.ok ? 'ok' : r.failure.kind))).toEqual([
        'ok',
        'ok',
        'own-condition-failed',
        'ok',
        'ok',
      ]);
      expect(orders().map((o) => o.id)).toEqual([
        'o-0',
        'o-1',
        'o-3',
        'o-4',
        'pre-0',
        'pre-1',
        'pre-3',
        'pre-4',
        'taken',
      ]);
      expect(stateKeys()).toEqual(['hop/0', 'hop/1', 'hop/3', 'hop/4']);
      expect(await Promise.all(tokens.map(statusOf))).toEqual([
        'consumed',
        'consumed',
        'pending',
        'consumed',
        'consumed',
      ]);
    });

    it('commits what was staged, even if the handler changes its parameter objects afterwards', async () => {
      const token = await mintToken();
      const params: [string, number] = ['o-1', 2];
      const own = stage((tx) => tx.run('INSERT INTO orders (id, qty) VALUES (?, ?)', params));
      params[1] = 99;
      expect(await store.commit(commitOf(token, own))).toEqual({ ok: true });
      expect(orders()[0]?.qty).toBe(2);
    });

    it('checks a statement again in the commit if the schema changed since it was staged', async () => {
      const token = await mintToken();
      const own = stage((tx) => tx.run('INSERT INTO orders (id, qty) VALUES (?, ?)', ['o-1', 1]));
      // After staging, a trigger makes the harmless insert write Tollgate's state table.
      app.exec(`CREATE TRIGGER orders_audit AFTER INSERT ON orders
        BEGIN INSERT INTO state (key, value, version) VALUES ('audit', '1', 1); END`);
      const result = await store.commit(commitOf(token, own));
      const failure = result.ok ? undefined : result.failure;
      expect(failure?.kind).toBe('permanent');
      expect(failure?.kind === 'permanent' ? failure.cause : undefined).toBeInstanceOf(InvalidArgumentError);
      expect(orders()).toEqual([]);
      expect(stateKeys()).toEqual([]);
      expect(await statusOf(token)).toBe('pending');
    });

    it('refuses actions that another store’s handle staged', async () => {
      const otherFile = join(dir, 'other.db');
      const other = new SqliteTokenStore({ filename: otherFile });
      const otherApp = new Database(otherFile);
      otherApp.exec('CREATE TABLE orders (id TEXT PRIMARY KEY, qty INTEGER)');
      otherApp.close();
      try {
        const session = other.ownData.open();
        session.handle.run('INSERT INTO orders (id, qty) VALUES (?, ?)', ['o-1', 1]);
        const foreign = session.staged();
        const token = await mintToken();
        await expect(store.commit(commitOf(token, foreign))).rejects.toBeInstanceOf(InvalidArgumentError);
        await expect(store.commit(commitOf(token, [{ bytes: 10 }]))).rejects.toBeInstanceOf(
          InvalidArgumentError,
        );
        expect(await statusOf(token)).toBe('pending');
        expect(orders()).toEqual([]);
      } finally {
        await other.close();
      }
    });
  });

  describe('staging', () => {
    const refusedToStage = (sql: string, params?: unknown, options?: unknown) => {
      const { handle } = store.ownData.open();
      try {
        handle.run(sql, params as never, options as never);
      } catch (error) {
        expect(error).toBeInstanceOf(InvalidArgumentError);
        return (error as InvalidArgumentError).message;
      }
      throw new Error(`staging was not refused: ${sql}`);
    };

    it('fails fast on statements SQLite cannot prepare, naming them', () => {
      expect(refusedToStage('INSERT INTO orders (id, qty) VALUS (?, ?)', ['o', 1])).toMatch(
        /cannot prepare "INSERT INTO orders \(id, qty\) VALUS \(\?, \?\)": near "VALUS"/,
      );
      expect(refusedToStage('INSERT INTO nowhere (id) VALUES (?)', ['o'])).toMatch(/no such table: nowhere/);
      expect(refusedToStage('UPDATE orders SET colour = 1')).toMatch(/no such column: colour/);
      expect(refusedToStage("INSERT INTO orders (id, qty) VALUES ('a', 1); DELETE FROM orders")).toMatch(
        /more than one statement/,
      );
      expect(refusedToStage('   ')).toMatch(/non-empty SQL string/);
    });

    it('fails fast on parameters that do not bind', () => {
      const sql = 'INSERT INTO orders (id, qty) VALUES (?, ?)';
      expect(refusedToStage(sql, ['o'])).toMatch(/Too few parameter values/);
      expect(refusedToStage(sql, ['o', 1, 2])).toMatch(/Too many parameter values/);
      expect(refusedToStage(sql, ['o', true])).toMatch(/parameter 2 .* is a boolean/);
      expect(refusedToStage(sql, ['o', undefined])).toMatch(/parameter 2 .* is undefined/);
      expect(refusedToStage('INSERT INTO orders (id, qty) VALUES (@id, @qty)', { id: 'o' })).toMatch(
        /Missing named parameter "qty"/,
      );
      expect(refusedToStage(sql, ['o', 1], { expectRows: -1 })).toMatch(/expectRows/);
      expect(refusedToStage(sql, ['o', 1], { expectRows: 1.5 })).toMatch(/expectRows/);
      // The same statement, cached, still has its parameters checked.
      const { handle } = store.ownData.open();
      handle.run(sql, ['o', 1]);
      expect(refusedToStage(sql, ['o'])).toMatch(/Too few parameter values/);
    });

    it('refuses statements that do not write, or return rows', () => {
      expect(refusedToStage('SELECT * FROM orders')).toMatch(/SELECT is not a write/);
      expect(refusedToStage('WITH x AS (SELECT 1) SELECT * FROM x')).toMatch(/changes nothing/);
      expect(refusedToStage('INSERT INTO orders (id, qty) VALUES (?, ?) RETURNING id', ['o', 1])).toMatch(
        /RETURNING/,
      );
    });

    it('refuses anything but INSERT, REPLACE, UPDATE, DELETE before preparing it', () => {
      for (const sql of [
        'BEGIN',
        'COMMIT',
        'SAVEPOINT s',
        'RELEASE s',
        'ROLLBACK',
        'PRAGMA foreign_keys = OFF',
        'DROP TABLE orders',
        'CREATE TABLE t2 (x)',
        'ALTER TABLE orders ADD COLUMN x',
        "ATTACH DATABASE ':memory:' AS other",
        'VACUUM',
        '-- a comment\n/* another */ DROP TABLE tokens',
      ]) {
        expect(refusedToStage(sql)).toMatch(/is not a write Tollgate stages/);
      }
      // Nothing of it happened.
      expect(app.prepare('SELECT count(*) FROM sqlite_schema WHERE name = ?').pluck().get('orders')).toBe(1);
    });

    it('refuses statements that write Tollgate’s tables, however they name them', () => {
      app.exec(`
        CREATE VIEW token_view AS SELECT id, status FROM tokens;
        CREATE TRIGGER token_view_insert INSTEAD OF INSERT ON token_view
          BEGIN UPDATE tokens SET status = NEW.status WHERE id = NEW.id; END;
        CREATE TABLE audit (n INTEGER);
        CREATE TRIGGER audit_meta AFTER INSERT ON audit
          BEGIN DELETE FROM tollgate_meta; END;
        CREATE TABLE parents (id TEXT PRIMARY KEY);
        CREATE TABLE kids (id TEXT PRIMARY KEY, parent TEXT REFERENCES parents (id) ON DELETE CASCADE);
        CREATE TRIGGER kids_gone AFTER DELETE ON kids BEGIN DELETE FROM state WHERE key = OLD.id; END;
      `);
      for (const sql of [
        "UPDATE tokens SET status = 'consumed' WHERE id = ?",
        'UPDATE "TOKENS" SET status = \'consumed\' WHERE id = ?',
        "UPDATE main.tokens SET status = 'consumed' WHERE id = ?",
        "UPDATE [tokens] SET status = 'consumed' WHERE id = ?",
        "WITH x AS (SELECT ? AS id) UPDATE tokens SET status = 'revoked' WHERE id IN (SELECT id FROM x)",
        "INSERT INTO state (key, value, version) VALUES (?, '1', 1)",
        'DELETE FROM state WHERE key = ?',
        "REPLACE INTO tollgate_meta (key, value) VALUES (?, 'x')",
        "INSERT INTO token_view (id, status) VALUES (?, 'consumed')", // through a view's trigger
        'INSERT INTO audit (n) VALUES (?)', // through a table's trigger
        'DELETE FROM parents WHERE id = ?', // through a foreign-key cascade, then a trigger
      ]) {
        expect(refusedToStage(sql, ['x'])).toMatch(/writes Tollgate's own tables/);
      }
      expect(refusedToStage('DELETE FROM tokens')).toMatch(/writes Tollgate's own tables/);
      // Reading them in a statement that writes the application's tables is fine.
      const { handle } = store.ownData.open();
      handle.run('INSERT INTO orders (id, qty) SELECT id, 1 FROM tokens WHERE id = ?', ['x']);
    });

    it('refuses ROLLBACK conflict resolution and deferred foreign keys, which would fail the whole group', () => {
      app.exec(`
        CREATE TABLE strict_orders (id TEXT PRIMARY KEY ON CONFLICT ROLLBACK);
        CREATE TABLE guarded (n INTEGER);
        CREATE TRIGGER guard BEFORE INSERT ON guarded WHEN NEW.n < 0 BEGIN SELECT RAISE(ROLLBACK, 'negative'); END;
        CREATE TABLE catalog (sku TEXT PRIMARY KEY);
        CREATE TABLE lines (id TEXT PRIMARY KEY,
          sku TEXT REFERENCES catalog (sku) DEFERRABLE INITIALLY DEFERRED);
      `);
      expect(refusedToStage('INSERT OR ROLLBACK INTO orders (id, qty) VALUES (?, ?)', ['o', 1])).toMatch(
        /conflict resolution is ROLLBACK/,
      );
      expect(refusedToStage('INSERT INTO strict_orders (id) VALUES (?)', ['o'])).toMatch(/ROLLBACK/);
      expect(refusedToStage('INSERT INTO guarded (n) VALUES (?)', [1])).toMatch(/ROLLBACK/);
      expect(refusedToStage('INSERT INTO lines (id, sku) VALUES (?, ?)', ['l', 's'])).toMatch(
        /deferred foreign key/,
      );
      expect(refusedToStage('DELETE FROM catalog WHERE sku = ?', ['s'])).toMatch(/deferred foreign key/);
      // ABORT (the default), FAIL, IGNORE and REPLACE end only the statement.
      const { handle } = store.ownData.open();
      handle.run('INSERT OR IGNORE INTO orders (id, qty) VALUES (?, ?)', ['o', 1]);
      handle.run('INSERT OR REPLACE INTO orders (id, qty) VALUES (?, ?)', ['o', 1]);
      handle.run('INSERT OR FAIL INTO orders (id, qty) VALUES (?, ?)', ['o', 1]);
      // Adding a parent row can only resolve deferred violations, never cause one.
      handle.run('INSERT INTO catalog (sku) VALUES (?)', ['s']);
    });

    it('ends with the run: once its actions are taken for the commit, the handle stages no more', () => {
      const session = store.ownData.open();
      session.handle.run('INSERT INTO orders (id, qty) VALUES (?, ?)', ['o-1', 1]);
      const own = session.staged();
      expect(own).toHaveLength(1);
      expect(() => session.handle.run('INSERT INTO orders (id, qty) VALUES (?, ?)', ['o-2', 1])).toThrow(
        /handler run is over/,
      );
      expect(session.staged()).toHaveLength(1);
    });

    it('measures each statement by its SQL text and parameters', () => {
      const sql = 'INSERT INTO orders (id, status, qty) VALUES (?, ?, ?)';
      const [positional] = stage((tx) => tx.run(sql, ['o-1', 'né', 3]));
      // text + 'o-1' (3) + 'né' (3 bytes in UTF-8) + a number (8) + 32 of overhead
      expect(positional?.bytes).toBe(Buffer.byteLength(sql) + 3 + 3 + 8 + 32);
      const named = 'UPDATE orders SET status = @status WHERE id = @id';
      const [byName] = stage((tx) => tx.run(named, { status: 'paid', id: null }));
      // text + names ('status', 'id') + values ('paid', null counts 1) + overhead
      expect(byName?.bytes).toBe(Buffer.byteLength(named) + 6 + 2 + 4 + 1 + 32);
      const [blob] = stage((tx) =>
        tx.run('UPDATE orders SET status = CAST(? AS TEXT) WHERE id = ?', [Buffer.alloc(1000), 'o-1']),
      );
      expect(blob?.bytes).toBeGreaterThan(1000);
    });
  });

  describe('reads', () => {
    it('see committed data, and not what the run has staged (no read-your-writes)', async () => {
      app.prepare('INSERT INTO orders (id, qty) VALUES (?, ?)').run('o-1', 2);
      const token = await mintToken();
      const session = store.ownData.open();
      const tx = session.handle;
      expect(tx.get<Order>('SELECT * FROM orders WHERE id = ?', ['o-1'])?.qty).toBe(2);
      expect(tx.get('SELECT * FROM orders WHERE id = @id', { id: 'nope' })).toBeUndefined();

      tx.run('UPDATE orders SET qty = 7 WHERE id = ?', ['o-1']);
      tx.run('INSERT INTO orders (id, qty) VALUES (?, ?)', ['o-2', 1]);
      // Staged writes are invisible to this run's reads until the commit.
      expect(tx.get<Order>('SELECT * FROM orders WHERE id = ?', ['o-1'])?.qty).toBe(2);
      expect(tx.all<Order>('SELECT id FROM orders ORDER BY id')).toEqual([{ id: 'o-1' }]);

      // Another connection's commit is visible at once (WAL: each read sees the latest commit).
      app.prepare('INSERT INTO orders (id, qty) VALUES (?, ?)').run('o-0', 5);
      expect(tx.all<Order>('SELECT id FROM orders ORDER BY id')).toEqual([{ id: 'o-0' }, { id: 'o-1' }]);

      expect(await store.commit(commitOf(token, session.staged()))).toEqual({ ok: true });
      expect(tx.all<{ id: string; qty: number }>('SELECT id, qty FROM orders ORDER BY id')).toEqual([
        { id: 'o-0', qty: 5 },
        { id: 'o-1', qty: 7 },
        { id: 'o-2', qty: 1 },
      ]);
      // Tollgate's tables may be read.
      expect(tx.get('SELECT status FROM tokens WHERE id = ?', [token.id])).toEqual({ status: 'consumed' });
      expect(tx.all('VALUES (1), (2)')).toHaveLength(2);
    });

    it('refuse statements that are not read-only queries', () => {
      const { handle } = store.ownData.open();
      expect(() => handle.get('DELETE FROM orders')).toThrow(/DELETE is not a query/);
      expect(() => handle.all('PRAGMA foreign_keys = OFF')).toThrow(InvalidArgumentError);
      expect(() => handle.get('WITH x AS (SELECT 1) DELETE FROM orders')).toThrow(/only read/);
      expect(() => handle.get('SELECT * FROM nowhere')).toThrow(/no such table: nowhere/);
      expect(() => handle.get('SELECT * FROM orders WHERE id = ?', [true as never])).toThrow(
        InvalidArgumentError,
      );
      expect(() => handle.get('SELECT * FROM orders WHERE id = ?')).toThrow(/Too few parameter values/);
    });
  });

  describe('through processSignal (ctx.tx)', () => {
    const place = (token: TokenRecord, handler: (tx: SqliteTx, attempt: number) => void) =>
      processSignal<{ order: string }, string, SqliteTx>({
        store,
        endpoint: 'order-service',
        tokenId: token.id,
        payload: token.payload as { order: string },
        handler: (ctx) => {
          handler(ctx.tx, ctx.attempt);
          ctx.put(`seen/${ctx.payload.order}`, true);
          return ctx.emit(destination, { placed: ctx.payload.order });
        },
        retry: {
          versionConflict: { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
          transient: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
        },
      });

    it('applies the handler’s statements exactly once; a duplicate is dropped', async () => {
      const token = await mintToken({ order: 'o-1' });
      const insert = (tx: SqliteTx) => tx.run('INSERT INTO orders (id, qty) VALUES (?, ?)', ['o-1', 1]);
      const first = await place(token, insert);
      expect(first.kind).toBe('processed');
      expect(orders()).toHaveLength(1);
      expect(stateKeys()).toEqual(['seen/o-1']);
      const copies = await Promise.all([place(token, insert), place(token, insert)]);
      expect(copies.map((c) => c.kind)).toEqual(['dropped', 'dropped']);
      expect(orders()).toHaveLength(1);
    });

    it('fails with OwnConditionFailedError on a constraint; the token stays live', async () => {
      app.prepare('INSERT INTO orders (id, qty) VALUES (?, ?)').run('o-1', 1);
      const token = await mintToken({ order: 'o-1' });
      const error = await place(token, (tx) =>
        tx.run('INSERT INTO orders (id, qty) VALUES (?, ?)', ['o-1', 1]),
      ).catch((e: unknown) => e);
      expect((error as TollgateError).code).toBe(ErrorCodes.OWN_CONDITION_FAILED);
      expect(await statusOf(token)).toBe('pending');
      expect(stateKeys()).toEqual([]);
    });

    it('re-runs the handler on fresh state when expectRows does not hold', async () => {
      app.prepare('INSERT INTO orders (id, qty) VALUES (?, ?)').run('o-1', 1);
      const token = await mintToken({ order: 'o-1' });
      const outcome = await place(token, (tx, attempt) => {
        const read = tx.get<Order>('SELECT * FROM orders WHERE id = ?', ['o-1']);
        // Another writer gets in between the first run's read and its commit.
        if (attempt === 1) app.prepare('UPDATE orders SET version = version + 1 WHERE id = ?').run('o-1');
        tx.run(
          'UPDATE orders SET qty = qty + 1, version = version + 1 WHERE id = ? AND version = ?',
          ['o-1', read?.version ?? 0],
          { expectRows: 1 },
        );
      });
      expect(outcome.kind === 'processed' ? outcome.attempts : undefined).toBe(2);
      expect(orders()).toEqual([{ id: 'o-1', qty: 2, status: 'new', version: 3 }]);
    });

    it('writes nothing when the handler fails after staging a write or stages a refused one', async () => {
      const token = await mintToken({ order: 'o-1' });
      const error = await place(token, (tx) => {
        tx.run('INSERT INTO orders (id, qty) VALUES (?, ?)', ['o-1', 1]);
        tx.run("UPDATE tokens SET status = 'revoked'");
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect(orders()).toEqual([]);
      expect(await statusOf(token)).toBe('pending');
    });
  });
});
