import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pendingToken } from '../src/core/mint.js';
import type { TokenStore } from '../src/core/store.js';
import type { Destination, TokenRecord } from '../src/core/token.js';
import { openStore } from '../src/stores/open.js';
import type { PgTx } from '../src/stores/postgres/postgres-store.js';
import { type Measurement, measure } from './measure.js';

/* What the parts of the PostgreSQL bench (bench/postgres.ts) share: the server, pools, helpers, timing. */

export const PG_HOST = process.env.TOLLGATE_TEST_PG_HOST ?? '127.0.0.1';
export const PG_PORT = Number(process.env.TOLLGATE_TEST_PG_PORT ?? '5432');
export const PG_DB = process.env.TOLLGATE_TEST_PG_DB ?? 'test';
export const PG_USER = process.env.TOLLGATE_TEST_PG_USER ?? 'postgres';

export const pgUrl = (database = PG_DB, port = PG_PORT) =>
  `postgres://${PG_USER}@${PG_HOST}:${port}/${database}`;

/** Connections on every side: the store's pool, the raw floor's, DBOS's two. At least the highest concurrency. */
export const POOL = 16;
export const CONCURRENCIES = [1, 16] as const;

export const destination: Destination = { medium: 'amqp', exchange: 'orders', routingKey: 'placed' };
export const next: Destination = { medium: 'amqp', exchange: 'payments', routingKey: 'requested' };

export type Row = Record<string, string | number>;

export const suffix = () => randomBytes(5).toString('hex');

export async function withClient<T>(url: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

export async function mintBatch(store: TokenStore, count: number): Promise<TokenRecord[]> {
  const now = Date.now();
  const tokens = Array.from({ length: count }, (_, i) =>
    pendingToken({ destination, payload: { order: i, amount: 42 } }, { mintedBy: 'bench', now }),
  );
  for (let i = 0; i < tokens.length; i += 200) await store.mint(tokens.slice(i, i + 200));
  return tokens;
}

export async function openPgStore(
  url: string,
  schema: string,
  createTables: boolean,
): Promise<TokenStore<PgTx>> {
  return (await openStore({
    kind: 'postgres',
    url,
    schema,
    poolSize: POOL,
    createTables,
  })) as TokenStore<PgTx>;
}

/** A measurement with this process's CPU time per op (driver, client library and, for DBOS, its runtime). */
export interface Timed extends Measurement {
  cpuMs: number;
}

export async function timed(
  total: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<Timed> {
  const cpu = process.cpuUsage();
  const measured = await measure(total, concurrency, op);
  const { user, system } = process.cpuUsage(cpu);
  return { ...measured, cpuMs: (user + system) / 1000 / total };
}

export function best<T extends Measurement>(current: T | undefined, run: T): T {
  return !current || run.perSecond > current.perSecond ? run : current;
}
