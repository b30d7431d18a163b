import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { fingerprint } from '../../../src/core/fingerprint.js';
import { pendingToken } from '../../../src/core/mint.js';
import type { TokenRecord } from '../../../src/core/token.js';
import { SqliteTokenStore } from '../../../src/stores/sqlite/sqlite-store.js';

const destination = { medium: 'amqp', exchange: 'x', routingKey: 'k' } as const;
const AT = 1_700_000_000_000;

/** Tokens minted in one millisecond, as a bulk mint or a fan-out makes them. */
function sameInstant(count: number): TokenRecord[] {
  return Array.from({ length: count }, (_, i) =>
    pendingToken({ destination, payload: { i } }, { mintedBy: 'edge', now: AT }),
  );
}

function statusIndexColumns(db: Database.Database): string[] {
  return db.prepare("SELECT name FROM pragma_index_info('tokens_by_status')").pluck().all() as string[];
}

describe('SQLite store: the status index', () => {
  it('pages through tokens minted in the same millisecond in id order, none skipped or repeated', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const tokens = sameInstant(23);
    await store.mint(tokens);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.listByStatus('pending', cursor ? { limit: 5, cursor } : { limit: 5 });
      seen.push(...page.items.map((t) => t.id));
      cursor = page.cursor;
    } while (cursor);
    expect(seen).toEqual(tokens.map((t) => t.id).sort());
    await store.close();
  });

  it('claims pending tokens of one millisecond in id order, and consumed ones list in id order too', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const tokens = sameInstant(12);
    await store.mint(tokens);
    const ids = tokens.map((t) => t.id).sort();
    const claimed = await store.claimPending({ mintedBefore: AT, now: AT + 1, leaseMs: 1_000, limit: 4 });
    expect(claimed.map((t) => t.id)).toEqual(ids.slice(0, 4));
    // Consumed in insertion order, which is not id order: the listing still sorts them by id.
    for (const token of tokens) {
      const result = await store.commit({
        consume: { tokenId: token.id, fingerprint: fingerprint(token.payload), consumedBy: 'e' },
        writes: [],
        mints: [],
        now: AT + 2,
      });
      expect(result.ok).toBe(true);
    }
    expect((await store.listByStatus('consumed', { limit: 100 })).items.map((t) => t.id)).toEqual(ids);
    await store.close();
  });

  it('gives a file made with the former (status, minted_at, id) index the new shape, keeping its tokens', async () => {
    const filename = join(mkdtempSync(join(tmpdir(), 'tollgate-status-index-')), 'old.db');
    const before = new SqliteTokenStore({ filename });
    const tokens = sameInstant(3);
    await before.mint(tokens);
    await before.close();
    const raw = new Database(filename);
    raw.exec('DROP INDEX tokens_by_status; CREATE INDEX tokens_by_status ON tokens (status, minted_at, id)');
    expect(statusIndexColumns(raw)).toEqual(['status', 'minted_at', 'id']);
    raw.close();

    const store = new SqliteTokenStore({ filename });
    expect((await store.listByStatus('pending')).items.map((t) => t.id)).toEqual(
      tokens.map((t) => t.id).sort(),
    );
    await store.close();
    const check = new Database(filename, { readonly: true });
    expect(statusIndexColumns(check)).toEqual(['status', 'minted_at']);
    check.close();
  });
});
