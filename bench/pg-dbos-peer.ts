import pg from 'pg';
import { pendingToken } from '../src/core/mint.js';
import { processSignal } from '../src/core/processor.js';
import type { TokenStore } from '../src/core/store.js';
import type { TokenRecord } from '../src/core/token.js';
import type { PgTx } from '../src/stores/postgres/postgres-store.js';
import { createOrders, ordersTable, upsertOrder } from './amqp.js';
import type { DbosPeer } from './dbos.js';
import { fmt, printTable, ratio } from './measure.js';
import {
  best,
  CONCURRENCIES,
  destination,
  openPgStore,
  PG_DB,
  POOL,
  pgUrl,
  type Row,
  suffix,
  type Timed,
  timed,
  withClient,
} from './pg-shared.js';
import { countRow, type WireCounter } from './pg-wire.js';
import { recordTarget } from './results.js';

/* Part 3 of the PostgreSQL bench (bench/postgres.ts): DBOS Transact and Tollgate on the same work. */

export async function dbosPeer(wire: WireCounter, signals: number): Promise<void> {
  const id = suffix();
  const appDb = `dbos_bench_app_${id}`;
  const sysDb = `dbos_bench_sys_${id}`;
  const schema = `bench_peer_${id}`;
  const rows: Row[] = [];
  const counts: Row[] = [];
  const summary: string[] = [];
  const admin = new pg.Pool({ connectionString: pgUrl(), max: 2 });
  let store: TokenStore<PgTx> | undefined;
  let peer: DbosPeer | undefined;
  try {
    await admin.query(`CREATE DATABASE ${appDb}`);
    await admin.query(`CREATE DATABASE ${sysDb}`);
    await withClient(pgUrl(appDb), (client) => client.query(createOrders('bench_orders')));
    store = await openPgStore(pgUrl(), schema, true);
    await admin.query(createOrders(ordersTable(schema)));
    const tollgateUpsert = upsertOrder(ordersTable(schema));
    const benchStore = store;

    // Tollgate: a hop that consumes the signal's token and writes the row; the signal is sent twice.
    const tollgateSignal = (target: TokenStore<PgTx>) => async (token: TokenRecord, key: string) => {
      for (const expected of ['processed', 'dropped'] as const) {
        const outcome = await processSignal<{ key: string }, void, PgTx>({
          store: target,
          endpoint: 'bench',
          tokenId: token.id,
          payload: { key },
          handler: async (ctx) => {
            await ctx.tx.query(tollgateUpsert, [key, 42]);
          },
        });
        if (outcome.kind !== expected) throw new Error(`Tollgate delivery: ${outcome.kind}, not ${expected}`);
      }
    };
    const mintSignals = async (keys: readonly string[]) => {
      const now = Date.now();
      const tokens = keys.map((key) =>
        pendingToken({ destination, payload: { key } }, { mintedBy: 'bench', now }),
      );
      for (let i = 0; i < tokens.length; i += 200) await benchStore.mint(tokens.slice(i, i + 200));
      return tokens;
    };

    let dbosError: string | undefined;
    try {
      const { openDbosPeer } = await import('./dbos.js');
      peer = await openDbosPeer({
        appUrl: pgUrl(appDb),
        systemUrl: pgUrl(sysDb),
        poolSize: POOL,
        upsert: upsertOrder('bench_orders'),
      });
    } catch (error) {
      dbosError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
    // DBOS: the signal's id (its token's, on the Tollgate side) is the workflow ID; the signal is started twice,
    // and the second start finds the workflow by that ID and returns its recorded result.
    const dbosSignal = async (id: string, key: string) => {
      await peer?.deliver(id, key);
      await peer?.deliver(id, key);
    };

    const expectedRows = { tollgate: 0, dbos: 0 };
    const bestOf: Record<string, Timed> = {};
    for (const concurrency of CONCURRENCIES) {
      const total = concurrency === 1 ? Math.ceil(signals / 5) : signals;
      for (let round = 0; round < 2; round++) {
        const keys = Array.from({ length: total }, (_, i) => `order/${suffix()}/${i}`);
        const tokens = await mintSignals(keys);
        const signal = tollgateSignal(benchStore);
        const t = await timed(total, concurrency, (i) => signal(tokens[i] as TokenRecord, keys[i] as string));
        expectedRows.tollgate += total;
        bestOf[`tollgate${concurrency}`] = best(bestOf[`tollgate${concurrency}`], t);
        if (peer) {
          const d = await timed(total, concurrency, (i) =>
            dbosSignal((tokens[i] as TokenRecord).id, keys[i] as string),
          );
          expectedRows.dbos += total;
          bestOf[`dbos${concurrency}`] = best(bestOf[`dbos${concurrency}`], d);
        }
      }
    }

    // Exactly once: every row written by exactly one of its signal's two deliveries.
    const written = async (url: string, table: string) =>
      withClient(url, async (client) => {
        const { rows: r } = await client.query<{ n: string; once: string }>(
          `SELECT count(*) AS n, count(*) FILTER (WHERE version = 1) AS once FROM ${table}`,
        );
        return { rows: Number(r[0]?.n), once: Number(r[0]?.once) };
      });
    const onceTollgate = await written(pgUrl(), ordersTable(schema));
    const onceDbos = peer ? await written(pgUrl(appDb), 'bench_orders') : undefined;
    const onceText = (w: { rows: number; once: number } | undefined, expected: number) =>
      w === undefined
        ? 'n/a'
        : w.rows === expected && w.once === expected
          ? 'yes'
          : `NO (${w.once}/${expected})`;

    // Statements per signal, through the counting proxy (DBOS relaunched on it, Tollgate on a second store).
    const sample = 30;
    const keys = Array.from({ length: sample + 1 }, (_, i) => `order/${suffix()}/${i}`);
    const tokens = await mintSignals(keys);
    const countStore = await openPgStore(pgUrl(PG_DB, wire.port), schema, false);
    try {
      const once = tollgateSignal(countStore);
      await once(tokens[sample] as TokenRecord, keys[sample] as string);
      const counted = await wire.count(async () => {
        for (let i = 0; i < sample; i++) await once(tokens[i] as TokenRecord, keys[i] as string);
      });
      counts.push(countRow('Tollgate (processSignal, sent twice)', counted, sample));
    } finally {
      await countStore.close();
    }
    if (peer) {
      await peer.relaunch({ appUrl: pgUrl(appDb, wire.port), systemUrl: pgUrl(sysDb, wire.port) });
      // The same signals, each its own workflow: the Tollgate side wrote its rows in another database.
      const signal = (i: number) => dbosSignal((tokens[i] as TokenRecord).id, keys[i] as string);
      await signal(sample);
      const counted = await wire.count(async () => {
        for (let i = 0; i < sample; i++) await signal(i);
      });
      counts.push(countRow('DBOS (workflow + transaction step, started twice)', counted, sample));
    }

    for (const concurrency of CONCURRENCIES) {
      const t = bestOf[`tollgate${concurrency}`];
      const d = bestOf[`dbos${concurrency}`];
      const row = (contender: string, m: Timed | undefined, once: string): Row => ({
        concurrency,
        contender,
        'signals/s': m ? fmt(m.perSecond) : 'n/a',
        'p50 ms': m ? fmt(m.p50Ms, 1) : 'n/a',
        'p99 ms': m ? fmt(m.p99Ms, 1) : 'n/a',
        'CPU ms/signal': m ? fmt(m.cpuMs, 2) : 'n/a',
        'written once': once,
      });
      rows.push(row('Tollgate hop (PostgresTokenStore)', t, onceText(onceTollgate, expectedRows.tollgate)));
      if (dbosError === undefined)
        rows.push(row('DBOS Transact workflow', d, onceText(onceDbos, expectedRows.dbos)));
      if (t && d) {
        summary.push(`c=${concurrency}: ${ratio(t.perSecond, d.perSecond)}`);
        if (concurrency === 16)
          recordTarget({
            id: 'peer.dbos.c16',
            title: 'PostgreSQL peer, each signal twice, c=16: Tollgate / DBOS Transact',
            figure: `${fmt(t.perSecond)} vs ${fmt(d.perSecond)} signals/s, p99 ${fmt(t.p99Ms, 1)} vs ${fmt(d.p99Ms, 1)} ms`,
            value: t.perSecond / d.perSecond,
            unit: 'ratio',
            op: '>=',
            target: 2,
          });
      }
    }
    printTable(
      `Peer: one signal = one row written, delivered twice (the second must change nothing); pool ${POOL} per side; latency covers both deliveries; best of 2`,
      rows,
    );
    if (dbosError !== undefined) console.log(`DBOS Transact row unavailable: ${dbosError}`);
    else {
      console.log(`Tollgate / DBOS throughput: ${summary.join(', ')} (goal >= 2)`);
      console.log(
        `DBOS: @dbos-inc/dbos-sdk ${peer?.version}, own application and system databases, the step on bench/dbos.ts's node-postgres data source (SDK 5's data-source contract; the registry has no PostgreSQL data source for SDK 5).`,
      );
    }
    printTable('Peer: statements per signal, both deliveries (counted at the wire)', counts);
  } finally {
    await peer?.close().catch(() => undefined);
    await store?.close();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    for (const db of [appDb, sysDb]) {
      await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
    }
    await admin.end();
  }
}
