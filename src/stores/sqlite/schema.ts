import type { Database } from 'better-sqlite3';
import { StoreFailureError } from '../../core/errors.js';

/** Bump when the schema changes, and add a step to MIGRATIONS. */
export const SCHEMA_VERSION = 2;

/**
 * The status index is (status, minted_at), without the id: ties on minted_at are then in rowid order, the order
 * tokens were inserted. With the id as its last column, consuming tokens minted in the same millisecond (a bulk
 * mint, a fan-out) deleted and inserted their entries at random places of the index, dirtying two random pages
 * per hop: the HTTP bench's hop paid some 20 % more CPU for it (231 against 181 µs per request, median of four
 * rounds). Listings still return (minted_at, id) order: SQLite sorts each run of equal minted_at on its own.
 */
const STATUS_INDEX_COLUMNS = 'status, minted_at';

const MIGRATIONS: Record<number, string> = {
  // tokens is a rowid table with a UNIQUE index on the random id, not a WITHOUT ROWID table: its rows are large
  // (payload, headers, destination) and minted in time order, so new rows are appended at the tail and only
  // the small id index takes inserts at random places.
  1: `
    CREATE TABLE tokens (
      id TEXT NOT NULL UNIQUE,
      conversation_id TEXT NOT NULL,
      parent_id TEXT,
      minted_by TEXT NOT NULL,
      medium TEXT,
      destination TEXT,
      fingerprint TEXT,
      payload TEXT,
      headers TEXT,
      status TEXT NOT NULL,
      minted_at INTEGER NOT NULL,
      dispatched_at INTEGER,
      attempts INTEGER NOT NULL DEFAULT 0,
      expires_at INTEGER,
      consumed_at INTEGER,
      consumed_by TEXT,
      commit_id TEXT,
      response TEXT,
      lease_until INTEGER,
      retain_until INTEGER
    );
    CREATE INDEX tokens_by_status ON tokens (${STATUS_INDEX_COLUMNS});
    CREATE INDEX tokens_by_conversation ON tokens (conversation_id, minted_at, id);
    CREATE TABLE state (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL,
      version INTEGER NOT NULL
    ) WITHOUT ROWID;
  `,
  // Scheduled tokens. Adding a nullable column rewrites no row. The partial index holds only tokens still
  // waiting (a token leaves it when claimed), so "what is due now" reads only those, however many ended tokens
  // the table keeps.
  2: `
    ALTER TABLE tokens ADD COLUMN due_at INTEGER;
    CREATE INDEX tokens_due ON tokens (due_at, id) WHERE status = 'scheduled';
  `,
};

/**
 * Creates or upgrades the schema. Runs under an IMMEDIATE transaction so that several processes opening
 * the same file at once migrate it exactly once.
 */
export function migrate(db: Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS tollgate_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
  const upgrade = db.transaction(() => {
    const row = db.prepare("SELECT value FROM tollgate_meta WHERE key = 'schema_version'").get() as
      | { value: string }
      | undefined;
    const current = row ? Number(row.value) : 0;
    if (current > SCHEMA_VERSION) {
      throw new StoreFailureError(
        `database schema version ${current} is newer than this Tollgate understands (${SCHEMA_VERSION})`,
        { current, supported: SCHEMA_VERSION },
      );
    }
    for (let version = current + 1; version <= SCHEMA_VERSION; version++) {
      db.exec(MIGRATIONS[version] as string);
    }
    reshapeStatusIndex(db);
    db.prepare(
      "INSERT INTO tollgate_meta (key, value) VALUES ('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    ).run(String(SCHEMA_VERSION));
  });
  upgrade.immediate();
}

/**
 * A file made before the status index lost its id column gets the new shape. Not a schema version: both shapes
 * serve the same queries, so a process of the previous release keeps working on an upgraded file (and the reverse).
 */
function reshapeStatusIndex(db: Database): void {
  const columns = db.prepare("SELECT name FROM pragma_index_info('tokens_by_status')").pluck().all();
  if (columns.join(', ') === STATUS_INDEX_COLUMNS) return;
  db.exec(`DROP INDEX tokens_by_status; CREATE INDEX tokens_by_status ON tokens (${STATUS_INDEX_COLUMNS})`);
}
