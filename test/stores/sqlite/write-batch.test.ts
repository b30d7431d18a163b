import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { batchable, WriteBatch } from '../../../src/stores/sqlite/write-batch.js';

type MakeTransaction = <F extends (...args: never[]) => unknown>(
  db: Database.Database,
  body: F,
) => Database.Transaction<F>;

// Group commit against a real database file, observed through a second connection: it sees only what is
// committed, so it tells whether writes shared a transaction and whether callers heard back before COMMIT.
// Twice: with plain transaction functions (a savepoint each), and with `batchable` ones, which a batch runs bare
// first and again with savepoints once one of them throws.
describe.each<[string, MakeTransaction]>([
  ['db.transaction', (db, body) => db.transaction(body)],
  ['batchable', batchable],
])('SQLite group commit (WriteBatch) of %s writes', (_, transaction) => {
  let dir: string;
  let db: Database.Database;
  let observer: Database.Database;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-batch-'));
    const file = join(dir, 'batch.db');
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (n INTEGER PRIMARY KEY)');
    observer = new Database(file);
    insert = transaction(db, (n: number) => {
      db.prepare('INSERT INTO t (n) VALUES (?)').run(n);
      return committedRows();
    });
  });
  afterEach(() => {
    observer.close();
    if (db.open) db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const committedRows = () => (observer.prepare('SELECT COUNT(*) AS c FROM t').get() as { c: number }).c;
  /** A job that inserts n and reports how many rows other connections could see while it ran. */
  let insert: Database.Transaction<(n: number) => number>;

  it('runs the writes of one turn in one transaction, and answers each only after the COMMIT', async () => {
    const batch = new WriteBatch(db);
    const answered: number[] = [];
    const jobs = [1, 2, 3, 4].map((n) =>
      batch.submit(insert, n).then((seenWhileRunning) => {
        // Visible to another connection by the time the caller hears back: committed.
        answered.push(committedRows());
        return seenWhileRunning;
      }),
    );
    // Each job saw none of the others committed: they were one transaction, not four.
    expect(await Promise.all(jobs)).toEqual([0, 0, 0, 0]);
    expect(answered).toEqual([4, 4, 4, 4]);

    // A later turn is a later transaction: it sees the first batch committed.
    expect(await batch.submit(insert, 5)).toBe(4);
  });

  it('caps a transaction at maxJobs writes', async () => {
    const batch = new WriteBatch(db, 2);
    const seen = await Promise.all([1, 2, 3, 4, 5].map((n) => batch.submit(insert, n)));
    expect(seen).toEqual([0, 0, 2, 2, 4]);
  });

  it('rolls back only the write that threw; the others commit, each caller gets its own answer', async () => {
    const batch = new WriteBatch(db);
    const failing = transaction(db, () => {
      db.prepare('INSERT INTO t (n) VALUES (?)').run(20);
      throw new Error('handler-level failure after a write');
    });
    const results = await Promise.allSettled([
      batch.submit(insert, 10),
      batch.submit(failing),
      batch.submit(insert, 30),
      batch.submit(insert, 10), // primary key taken by the first write of this very batch
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected']);
    expect((results[1] as PromiseRejectedResult).reason.message).toBe('handler-level failure after a write');
    expect((results[3] as PromiseRejectedResult).reason.code).toBe('SQLITE_CONSTRAINT_PRIMARYKEY');
    expect(observer.prepare('SELECT n FROM t ORDER BY n').pluck().all()).toEqual([10, 30]);
  });

  it('runs a write alone in its turn as its own transaction, rolled back if it throws', async () => {
    const batch = new WriteBatch(db);
    const failing = transaction(db, () => {
      db.prepare('INSERT INTO t (n) VALUES (?)').run(1);
      throw new Error('alone and failing');
    });
    await expect(batch.submit(failing)).rejects.toThrow('alone and failing');
    expect(db.inTransaction).toBe(false);
    expect(committedRows()).toBe(0);
    expect(await batch.submit(insert, 2)).toBe(0);
    expect(committedRows()).toBe(1);
  });

  it('fails every write of a batch whose transaction SQLite rolled back as a whole, and writes nothing', async () => {
    const batch = new WriteBatch(db);
    // What disk-full or I/O errors do: the whole transaction is gone, not just the savepoint.
    const losesTransaction = transaction(db, () => {
      db.exec('ROLLBACK');
    });
    const results = await Promise.allSettled([
      batch.submit(insert, 1),
      batch.submit(losesTransaction),
      batch.submit(insert, 2),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(committedRows()).toBe(0);
    // The connection is usable again.
    expect(await batch.submit(insert, 3)).toBe(0);
    expect(committedRows()).toBe(1);
  });

  it('fails the whole batch when the write lock cannot be had, and writes nothing', async () => {
    db.pragma('busy_timeout = 50');
    const batch = new WriteBatch(db);
    observer.exec('BEGIN IMMEDIATE');
    const results = await Promise.allSettled([batch.submit(insert, 1), batch.submit(insert, 2)]);
    observer.exec('ROLLBACK');
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(results.map((r) => (r as PromiseRejectedResult).reason.code)).toEqual([
      'SQLITE_BUSY',
      'SQLITE_BUSY',
    ]);
    expect(committedRows()).toBe(0);
  });

  it('runs what is queued when flushed early (close), so no caller is left waiting', async () => {
    const batch = new WriteBatch(db);
    const pending = batch.submit(insert, 7);
    batch.flush();
    db.close();
    expect(await pending).toBe(0);
    expect(committedRows()).toBe(1);
  });
});
