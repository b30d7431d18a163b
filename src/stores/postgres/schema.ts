import { ConfigError } from '../../core/errors.js';

/*
 * Tollgate's tables in PostgreSQL. The migration text below is the one source of truth: `deploy/postgres/`
 * ships it rendered for the default schema (a test keeps the two equal), and `ensureSchema()` /
 * `createTables: true` run the very same text for the configured schema. It lives here rather than being read
 * from deploy/ so that the compiled `dist/` (and the Docker image, which has no deploy/ folder) carries it.
 */

/** Bump when the schema changes, and add a migration to MIGRATIONS. */
export const SCHEMA_VERSION = 2;
export const DEFAULT_SCHEMA = 'tollgate';
/** The migration files under deploy/postgres, in order, rendered for DEFAULT_SCHEMA. */
export const MIGRATION_FILES: readonly string[] = ['001_tollgate.sql', '002_scheduling.sql'];

/**
 * Plain lower-case identifiers only: they need no thought when typed into psql, and one of 63 bytes or less is
 * never truncated by PostgreSQL. Statements quote it anyway, so a reserved word works too.
 */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function checkSchemaName(schema: string): string {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
    throw new ConfigError('schema', 'must be a lower-case PostgreSQL identifier (a-z, 0-9, _; at most 63)');
  }
  return schema;
}

/** The schema as it appears in statements: always quoted (the name is checked, so no escaping is needed). */
export function qualifier(schema: string): string {
  return `"${checkSchemaName(schema)}"`;
}

/**
 * Version 1. Safe to apply again and from several processes at once: everything is IF NOT EXISTS, inside one
 * transaction that first takes a transaction-scoped advisory lock keyed by the schema's name (without it, two
 * concurrent CREATE ... IF NOT EXISTS can both miss the other's object and one fails on a catalog unique key).
 *
 * - Ids and the columns sorted on are COLLATE "C": byte order, as the cursors and the other stores expect, and
 *   cheaper to compare than a linguistic collation.
 * - Instants are BIGINT milliseconds since the epoch, as in the TokenRecord.
 * - JSON columns are `json`, not `jsonb`: `json` keeps the text exactly as written (key order, every
 *   character), so a record reads back as it was minted; nothing queries inside them.
 * - tokens_by_status serves listings, sweeps, stats and the relay's claim (status = 'pending' is a prefix of
 *   it): a partial index on pending tokens would duplicate it and cost a write per mint and per dispatch.
 */
function migration1(s: string): string {
  return `-- Tollgate token store for PostgreSQL, schema version 1.
-- Apply with: psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/postgres/001_tollgate.sql
-- (or open the store with createTables: true, which runs this same text). Safe to run again.
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('tollgate schema ' || ${literal(s)}));
CREATE SCHEMA IF NOT EXISTS ${s};
CREATE TABLE IF NOT EXISTS ${s}.tokens (
  id text COLLATE "C" PRIMARY KEY,
  conversation_id text COLLATE "C" NOT NULL,
  parent_id text,
  minted_by text NOT NULL,
  medium text,
  destination json,
  fingerprint text,
  payload json,
  headers json,
  status text COLLATE "C" NOT NULL
    CHECK (status IN ('issued', 'pending', 'dispatched', 'consumed', 'expired', 'revoked')),
  minted_at bigint NOT NULL,
  dispatched_at bigint,
  attempts integer NOT NULL DEFAULT 0,
  expires_at bigint,
  consumed_at bigint,
  consumed_by text,
  commit_id text,
  response json,
  lease_until bigint,
  retain_until bigint
);
CREATE INDEX IF NOT EXISTS tokens_by_status ON ${s}.tokens (status, minted_at, id);
CREATE INDEX IF NOT EXISTS tokens_by_conversation ON ${s}.tokens (conversation_id, minted_at, id);
CREATE TABLE IF NOT EXISTS ${s}.state (
  key text COLLATE "C" PRIMARY KEY,
  value json NOT NULL,
  version integer NOT NULL
);
CREATE TABLE IF NOT EXISTS ${s}.meta (
  key text PRIMARY KEY,
  value text NOT NULL
);
INSERT INTO ${s}.meta (key, value) VALUES ('schema_version', '1') ON CONFLICT (key) DO NOTHING;
COMMIT;
`;
}

/**
 * Version 2: scheduled tokens. Same locking as version 1; its steps run only while the schema is still at
 * version 1, so applying it again costs the lock and one read.
 * - `due_at` is a nullable column: adding it rewrites no row.
 * - The status CHECK is replaced by one that admits 'scheduled' (checked against the existing rows once).
 * - tokens_due is partial: it holds only tokens still waiting, so the relay's "due now" and the `scheduled`
 *   listing read those alone, however many pending or ended tokens the table keeps. Building it scans the table
 *   once under a lock that holds writes back; on a large table create it first with
 *   CREATE INDEX CONCURRENTLY IF NOT EXISTS tokens_due ON tollgate.tokens (due_at, id) WHERE status = 'scheduled'
 *   and this migration then finds it there.
 */
function migration2(s: string): string {
  return `-- Tollgate token store for PostgreSQL, schema version 2: scheduled tokens.
-- Apply after 001_tollgate.sql with: psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/postgres/002_scheduling.sql
-- (or open the store with createTables: true, which runs this same text). Safe to run again.
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('tollgate schema ' || ${literal(s)}));
DO $migrate$
BEGIN
  IF (SELECT value FROM ${s}.meta WHERE key = 'schema_version') = '1' THEN
    ALTER TABLE ${s}.tokens ADD COLUMN IF NOT EXISTS due_at bigint;
    ALTER TABLE ${s}.tokens DROP CONSTRAINT IF EXISTS tokens_status_check;
    ALTER TABLE ${s}.tokens ADD CONSTRAINT tokens_status_check CHECK (status IN
      ('issued', 'scheduled', 'pending', 'dispatched', 'consumed', 'expired', 'revoked'));
    CREATE INDEX IF NOT EXISTS tokens_due ON ${s}.tokens (due_at, id) WHERE status = 'scheduled';
    UPDATE ${s}.meta SET value = '2' WHERE key = 'schema_version';
  END IF;
END
$migrate$;
COMMIT;
`;
}

const MIGRATIONS: Readonly<Record<number, (qualifiedSchema: string) => string>> = {
  1: migration1,
  2: migration2,
};

/** The SQL of one migration for a schema, exactly as deploy/postgres ships it for the default schema. */
export function migrationSql(version: number, schema: string = DEFAULT_SCHEMA): string {
  const render = MIGRATIONS[version];
  if (render === undefined) throw new RangeError(`no PostgreSQL migration ${version}`);
  return render(qualifier(schema));
}

/** A quoted identifier as a string literal (for the advisory lock key). */
function literal(quotedIdentifier: string): string {
  return `'${quotedIdentifier.replaceAll("'", "''")}'`;
}
