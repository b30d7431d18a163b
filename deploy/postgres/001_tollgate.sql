-- Tollgate token store for PostgreSQL, schema version 1.
-- Apply with: psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/postgres/001_tollgate.sql
-- (or open the store with createTables: true, which runs this same text). Safe to run again.
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('tollgate schema ' || '"tollgate"'));
CREATE SCHEMA IF NOT EXISTS "tollgate";
CREATE TABLE IF NOT EXISTS "tollgate".tokens (
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
CREATE INDEX IF NOT EXISTS tokens_by_status ON "tollgate".tokens (status, minted_at, id);
CREATE INDEX IF NOT EXISTS tokens_by_conversation ON "tollgate".tokens (conversation_id, minted_at, id);
CREATE TABLE IF NOT EXISTS "tollgate".state (
  key text COLLATE "C" PRIMARY KEY,
  value json NOT NULL,
  version integer NOT NULL
);
CREATE TABLE IF NOT EXISTS "tollgate".meta (
  key text PRIMARY KEY,
  value text NOT NULL
);
INSERT INTO "tollgate".meta (key, value) VALUES ('schema_version', '1') ON CONFLICT (key) DO NOTHING;
COMMIT;
