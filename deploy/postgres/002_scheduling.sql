-- Tollgate token store for PostgreSQL, schema version 2: scheduled tokens.
-- Apply after 001_tollgate.sql with: psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/postgres/002_scheduling.sql
-- (or open the store with createTables: true, which runs this same text). Safe to run again.
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('tollgate schema ' || '"tollgate"'));
DO $migrate$
BEGIN
  IF (SELECT value FROM "tollgate".meta WHERE key = 'schema_version') = '1' THEN
    ALTER TABLE "tollgate".tokens ADD COLUMN IF NOT EXISTS due_at bigint;
    ALTER TABLE "tollgate".tokens DROP CONSTRAINT IF EXISTS tokens_status_check;
    ALTER TABLE "tollgate".tokens ADD CONSTRAINT tokens_status_check CHECK (status IN
      ('issued', 'scheduled', 'pending', 'dispatched', 'consumed', 'expired', 'revoked'));
    CREATE INDEX IF NOT EXISTS tokens_due ON "tollgate".tokens (due_at, id) WHERE status = 'scheduled';
    UPDATE "tollgate".meta SET value = '2' WHERE key = 'schema_version';
  END IF;
END
$migrate$;
COMMIT;
