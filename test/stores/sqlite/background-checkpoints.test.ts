import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { newTokenId } from '../../../src/core/ids.js';
import type { TokenRecord } from '../../../src/core/token.js';
import { SqliteTokenStore } from '../../../src/stores/sqlite/sqlite-store.js';
import { until } from '../../support/until.js';

/*
 * The database file itself grows only when a checkpoint copies pages into it from the WAL. A thousand small
 * writes stay far below the store's own auto-checkpoint (10 000 pages), so a file that grows was written by the
 * worker.
 */

const WRITES = 1_200;

function token(): TokenRecord {
  return {
    id: newTokenId(),
    conversationId: newTokenId(),
    mintedBy: 't',
    status: 'pending',
    mintedAt: Date.now(),
    attempts: 0,
  };
}

async function writeMany(store: SqliteTokenStore): Promise<void> {
  // One after the other: each mint is a write transaction of its own.
  for (let i = 0; i < WRITES; i++) await store.mint([token()]);
}

describe('SQLite checkpoints on a worker thread', () => {
  it('copies the WAL into the database file beside the event loop once the store has written a thousand times', async () => {
    const filename = join(mkdtempSync(join(tmpdir(), 'tollgate-ckpt-')), 'store.db');
    const store = new SqliteTokenStore({ filename });
    const before = statSync(filename).size;
    await writeMany(store);
    await until(
      'the worker to copy pages into the file',
      async () => statSync(filename).size > before + 100 * 1024,
    );
    expect((await store.statusCounts()).pending).toBe(WRITES);
    await store.close();
    // The store's connection closed last, checkpointed everything and removed the WAL.
    expect(existsSync(`${filename}-wal`)).toBe(false);
    const reopened = new SqliteTokenStore({ filename });
    expect((await reopened.statusCounts()).pending).toBe(WRITES);
    await reopened.close();
  });

  it('leaves the checkpoints to the store’s connection when turned off', async () => {
    const filename = join(mkdtempSync(join(tmpdir(), 'tollgate-ckpt-')), 'store.db');
    const store = new SqliteTokenStore({ filename, backgroundCheckpoints: false });
    const before = statSync(filename).size;
    await writeMany(store);
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(statSync(filename).size).toBe(before);
    expect(statSync(`${filename}-wal`).size).toBeGreaterThan(100 * 1024);
    await store.close();
  });
});
