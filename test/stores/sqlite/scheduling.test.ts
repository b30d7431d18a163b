import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { scheduledToken } from '../../../src/core/scheduling.js';
import { SqliteTokenStore } from '../../../src/stores/sqlite/sqlite-store.js';

// The scheduling behaviour itself is in the contract suite (test/contract/scheduling.contract.ts).
describe('SQLite store: scheduled tokens', () => {
  const destination = { medium: 'amqp', exchange: 'x', routingKey: 'k' } as const;

  it('upgrades a file of schema version 1 in place, keeping its tokens', async () => {
    const filename = join(mkdtempSync(join(tmpdir(), 'tollgate-upgrade-')), 'v1.db');
    const before = new SqliteTokenStore({ filename });
    await before.issue({
      id: 'old-token-1',
      conversationId: 'old-conv-1',
      mintedBy: 'edge',
      status: 'issued',
      mintedAt: 1,
      attempts: 0,
    });
    await before.close();
    // Back to what version 1 wrote: no due_at column, no tokens_due index.
    const raw = new Database(filename);
    raw.exec(`DROP INDEX tokens_due; ALTER TABLE tokens DROP COLUMN due_at;
      UPDATE tollgate_meta SET value = '1' WHERE key = 'schema_version'`);
    raw.close();

    const store = new SqliteTokenStore({ filename });
    expect((await store.getToken('old-token-1'))?.status).toBe('issued');
    const timeout = scheduledToken({ destination, payload: {} }, { mintedBy: 'e', now: 1 }, 2);
    await store.mint([timeout]);
    expect((await store.claimDue({ now: 2, leaseMs: 1, limit: 5 })).map((t) => t.id)).toEqual([timeout.id]);
    await store.close();
    const check = new Database(filename, { readonly: true });
    expect(check.prepare("SELECT value FROM tollgate_meta WHERE key = 'schema_version'").get()).toEqual({
      value: '2',
    });
    check.close();
  });

  it('reads "due now" from the partial index on scheduled tokens, without sorting', () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const db = (store as unknown as { db: Database.Database }).db;
    const plan = db
      .prepare(
        "EXPLAIN QUERY PLAN SELECT id FROM tokens INDEXED BY tokens_due WHERE status = 'scheduled' AND due_at <= 5 ORDER BY due_at, id LIMIT 10",
      )
      .all() as Array<{ detail: string }>;
    const detail = plan.map((row) => row.detail).join('\n');
    expect(detail).toMatch(/USING (COVERING )?INDEX tokens_due/);
    expect(detail).not.toContain('TEMP B-TREE');
    void store.close();
  });
});
