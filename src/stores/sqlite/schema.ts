import type { Database } from 'better-sqlite3';
import { StoreFailureError } from '../../core/errors.js';

/** Bump when the schema changes, and add a step to MIGRATIONS. */
export const SCHEMA_VERSION = 2;

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
    CREATE INDEX tokens_by_status ON tokens (status, minted_at, id);
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
    db.prepare(
      "INSERT INTO tollgate_meta (key, value) VALUES ('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    ).run(String(SCHEMA_VERSION));
  });
  upgrade.immediate();
}
