import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { log, POSTGRES_URL } from './options.js';

/* The harness's own PostgreSQL work: naming, creating and dropping the run's schemas; terminating backends. */

/** PostgreSQL schemas of soak runs: `soak_<creation time, base 36 seconds>_<random>`, and the same with `_app`. */
const SOAK_SCHEMA = /^soak_([0-9a-z]+)_[0-9a-f]{8}(?:_app)?$/;
/** Schemas left behind by a harness that was killed are dropped by a later run once they are this old. */
const STALE_SCHEMA_S = 6 * 60 * 60;

export function postgresSchemaNames(): { store: string; app: string } {
  const store = `soak_${Math.floor(Date.now() / 1000).toString(36)}_${randomBytes(4).toString('hex')}`;
  return { store, app: `${store}_app` };
}

export async function dropStaleSchemas(client: pg.Client): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  const { rows } = await client.query<{ nspname: string }>(
    "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'soak\\_%'",
  );
  for (const { nspname } of rows) {
    const created = Number.parseInt(SOAK_SCHEMA.exec(nspname)?.[1] ?? '', 36);
    if (Number.isFinite(created) && now - created > STALE_SCHEMA_S) {
      log(`dropping the schema ${nspname} left behind by an earlier run`);
      await client.query(`DROP SCHEMA IF EXISTS "${nspname}" CASCADE`);
    }
  }
}

/** A connection of the harness's own, straight to PostgreSQL (bounded: the end of a run must not hang on it). */
export async function postgresAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: POSTGRES_URL,
    connectionTimeoutMillis: 10_000,
    statement_timeout: 30_000,
    lock_timeout: 10_000,
    application_name: 'tollgate-soak-harness',
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
