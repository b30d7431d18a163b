import pg from 'pg';
import { afterAll } from 'vitest';
import { FaultProxy } from '../../soak/fault-proxy.js';
import { newTokenId } from '../../src/core/ids.js';

/** The PostgreSQL the tests use (scripts/setup.sh starts one with trust auth and a `test` database). */
export const POSTGRES_TEST_URL =
  process.env.TOLLGATE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Test schemas are named `tgt_<creation time, base 36 seconds>_<random>`, so stale ones can be told apart. */
const PREFIX = 'tgt_';
/** Schemas left behind by a run that was killed are dropped by a later run once they are this old. */
const STALE_AFTER_S = 6 * 60 * 60;

/** Exactly the names freshSchemaName gives; nothing else is ever dropped as stale. */
const TEST_SCHEMA = /^tgt_([0-9a-z]{6})_[0-9a-z]{10}$/;
const SINCE_2024_S = 1_704_067_200;

const created = new Set<string>();

/** A schema name no other test uses; dropped (with everything in it) after the test file. */
export function freshSchemaName(): string {
  const seconds = Math.floor(Date.now() / 1000).toString(36);
  const random = newTokenId()
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, 10)
    .toLowerCase();
  const name = `${PREFIX}${seconds}_${random}`;
  created.add(name);
  return name;
}

/** Runs `work` with a client of its own (outside any store), closing it afterwards. */
export async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_TEST_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export async function schemaExists(schema: string): Promise<boolean> {
  return withAdmin(async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    return rowCount === 1;
  });
}

async function dropSchemas(): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  await withAdmin(async (client) => {
    const { rows } = await client.query<{ nspname: string }>(
      "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'tgt\\_%'",
    );
    const stale = rows
      .map((row) => row.nspname)
      .filter((name) => {
        const stamp = TEST_SCHEMA.exec(name)?.[1];
        const seconds = stamp === undefined ? Number.NaN : Number.parseInt(stamp, 36);
        return seconds > SINCE_2024_S && now - seconds > STALE_AFTER_S;
      });
    for (const schema of new Set([...created, ...stale])) {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }
  });
  created.clear();
}

// Registered on the importing test file: its schemas go when the file is done.
afterAll(async () => {
  if (created.size > 0) await dropSchemas();
});

/**
 * A fault proxy in front of the test PostgreSQL (delay, reset, blackhole), and the test URL pointed through it.
 * The caller closes the proxy.
 */
export async function postgresBehindProxy(): Promise<{ proxy: FaultProxy; url: string }> {
  const target = new URL(POSTGRES_TEST_URL);
  const proxy = await FaultProxy.start({
    name: 'postgres',
    targetHost: target.hostname,
    targetPort: Number(target.port || 5432),
  });
  const proxied = new URL(POSTGRES_TEST_URL);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  return { proxy, url: proxied.toString() };
}
