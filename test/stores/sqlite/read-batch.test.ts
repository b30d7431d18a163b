import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ReadBatch } from '../../../src/stores/sqlite/read-batch.js';

function database(): Database.Database {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)');
  return db;
}

describe('SQLite read batch', () => {
  it('runs the reads of one turn in one read transaction, and a lone read without one', async () => {
    const db = database();
    const reads = new ReadBatch(db);
    const together = await Promise.all([1, 2, 3].map(() => reads.submit(() => db.inTransaction)));
    expect(together).toEqual([true, true, true]);
    expect(db.inTransaction).toBe(false);
    expect(await reads.submit(() => db.inTransaction)).toBe(false);
  });

  it('fails only the read that throws; its neighbours get their rows', async () => {
    const db = database();
    db.prepare('INSERT INTO t VALUES (?, ?)').run('a', 'A');
    const reads = new ReadBatch(db);
    const get = db.prepare('SELECT v FROM t WHERE k = ?').pluck();
    const outcomes = await Promise.allSettled([
      reads.submit(() => get.get('a')),
      reads.submit(() => db.prepare('SELECT nope FROM t').get()),
      reads.submit(() => get.get('b')),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(outcomes[0]).toMatchObject({ value: 'A' });
    expect(db.inTransaction).toBe(false);
  });

  it('sees every write committed before the read was asked for', async () => {
    const db = database();
    const reads = new ReadBatch(db);
    const get = db.prepare('SELECT v FROM t WHERE k = ?').pluck();
    const before = reads.submit(() => get.get('k'));
    db.prepare('INSERT INTO t VALUES (?, ?)').run('k', 'written');
    const after = reads.submit(() => get.get('k'));
    expect(await Promise.all([before, after])).toEqual(['written', 'written']);
  });

  it('answers the reads still queued when flushed at close, so no caller waits forever', async () => {
    const db = database();
    const reads = new ReadBatch(db);
    const pending = [reads.submit(() => 1), reads.submit(() => 2)];
    reads.flush();
    db.close();
    expect(await Promise.all(pending)).toEqual([1, 2]);
  });
});
