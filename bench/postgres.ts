import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { newTokenId } from '../src/core/ids.js';
import { processSignal } from '../src/core/processor.js';
import type { TokenStore } from '../src/core/store.js';
import type { TokenRecord } from '../src/core/token.js';
import type { PgTx } from '../src/stores/postgres/postgres-store.js';
import { createOrders, ordersTable, runAmqpBench, upsertOrder } from './amqp.js';
import { fmt, printTable, ratio } from './measure.js';
import { dbosPeer } from './pg-dbos-peer.js';
import {
  best,
  CONCURRENCIES,
  mintBatch,
  next,
  openPgStore,
  PG_DB,
  PG_HOST,
  PG_PORT,
  POOL,
  pgUrl,
  type Row,
  suffix,
  type Timed,
  timed,
} from './pg-shared.js';
import { countRow, WireCounter } from './pg-wire.js';
import { recordTarget } from './results.js';

export interface PostgresBenchOptions {
  /** Hops per contender and round at concurrency 16 (a quarter of it at 1). Default 2000. */
  hops?: number;
  /** Messages per AMQP contender and round. Default 3000. */
  messages?: number;
  /** Signals per contender and round at concurrency 16 in the DBOS comparison (a fifth of it at 1). Default 500. */
  signals?: number;
}

export async function runPostgresBench(options: PostgresBenchOptions = {}): Promise<void> {
  const hops = options.hops ?? 2000;
  const wire = await WireCounter.start({ host: PG_HOST, port: PG_PORT });
  try {
    const rawFloor16 = await floorVsTollgate(wire, hops);
    await runAmqpBench({
      postgresUrl: pgUrl(),
      // runAmqpBench runs half its `messages` on PostgreSQL.
      sqlite: false,
      messages: 2 * (options.messages ?? 3000),
      rawFloors: { PostgreSQL: rawFloor16 },
    });
    await dbosPeer(wire, options.signals ?? 500);
  } finally {
    await wire.close();
  }
  console.log(
    '\nStatements were counted at the wire: a TCP proxy in front of PostgreSQL reads what the clients send, in a ' +
      'separate untimed run of sequential signals (no timed run goes through it). Each extended-protocol Execute is ' +
      'one statement, each simple-protocol Query one per `;`-separated statement; a round trip is a Sync or a Query ' +
      'sent while none before it awaits its answer (one sent behind another without waiting rides along). ' +
      'By first keyword: B BEGIN, C COMMIT, R ROLLBACK, S SELECT, I INSERT, U UPDATE, D DELETE, W WITH (a CTE).',
  );
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Raw floor vs Tollgate

/**
 * The same statements as the store's hop, without Tollgate: the conditional consume (its row count says whether
 * it won), the user row, the minted token, in one transaction on one pooled connection. The store's own statements
 * are named (prepared once per connection) here too; the user write is sent as the application sends it.
 */
function rawHop(pool: pg.Pool, schema: string) {
  const s = `"${schema}"`;
  const consume = {
    name: 'bench_raw_consume',
    text: `UPDATE ${s}.tokens SET status = 'consumed', consumed_at = $2, consumed_by = $3, commit_id = $4,
        response = NULL, retain_until = $5, payload = NULL, headers = NULL, lease_until = NULL
      WHERE id = $1 AND status IN ('issued', 'pending', 'dispatched') AND (expires_at IS NULL OR expires_at > $2)
        AND (fingerprint IS NULL OR fingerprint = $6)`,
  };
  const mint = {
    name: 'bench_raw_mint',
    text: `INSERT INTO ${s}.tokens (id, conversation_id, parent_id, minted_by, medium, destination, fingerprint,
        payload, status, minted_at, attempts) VALUES ($1, $2, $3, $4, 'amqp', $5::json, $6, $7::json, 'pending', $8, 0)`,
  };
  const upsert = upsertOrder(ordersTable(schema));
  const nextJson = JSON.stringify(next);
  return async (token: TokenRecord, key: string, i: number) => {
    const now = Date.now();
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const consumed = await client.query({
        ...consume,
        values: [token.id, now, 'bench', newTokenId(), now + 86_400_000, token.fingerprint],
      });
      if (consumed.rowCount !== 1) throw new Error('raw floor: token not live');
      await client.query(upsert, [key, 42]);
      await client.query({
        ...mint,
        values: [
          newTokenId(),
          token.conversationId,
          token.id,
          'bench',
          nextJson,
          'f'.repeat(64),
          JSON.stringify({ order: i, amount: 42 }),
          now,
        ],
      });
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  };
}

/** One Tollgate hop: cheap check, then consume + the handler's row + one emitted token in one transaction. */
function tollgateHop(store: TokenStore<PgTx>, schema: string) {
  const upsert = upsertOrder(ordersTable(schema));
  return async (token: TokenRecord, key: string, i: number) => {
    const outcome = await processSignal<{ order: number; amount: number }, void, PgTx>({
      store,
      endpoint: 'bench',
      tokenId: token.id,
      payload: { order: i, amount: 42 },
      handler: async (ctx) => {
        await ctx.tx.query(upsert, [key, 42]);
        ctx.emit(next, { order: i, amount: 42 });
      },
    });
    if (outcome.kind !== 'processed') throw new Error(`hop not processed: ${outcome.kind}`);
  };
}

type Hop = (token: TokenRecord, key: string, i: number) => Promise<void>;

async function floorVsTollgate(wire: WireCounter, hops: number): Promise<number> {
  const schema = `bench_pg_${suffix()}`;
  const store = await openPgStore(pgUrl(), schema, true);
  const pool = new pg.Pool({ connectionString: pgUrl(), max: POOL });
  const rows: Row[] = [];
  const counts: Row[] = [];
  let floor16 = 0;
  try {
    await pool.query(createOrders(ordersTable(schema)));
    const raw = rawHop(pool, schema);
    const tollgate = tollgateHop(store, schema);
    const run = async (hop: Hop, total: number, concurrency: number) => {
      const tokens = await mintBatch(store, total);
      const tag = suffix();
      return timed(total, concurrency, (i) => hop(tokens[i] as TokenRecord, `order/${tag}/${i}`, i));
    };
    for (const concurrency of CONCURRENCIES) {
      const total = concurrency === 1 ? Math.ceil(hops / 4) : hops;
      // Interleaved rounds, best of each kept, so warm-up and noise favour neither side.
      let bestRaw: Timed | undefined;
      let bestTollgate: Timed | undefined;
      for (let round = 0; round < 2; round++) {
        bestRaw = best(bestRaw, await run(raw, total, concurrency));
        bestTollgate = best(bestTollgate, await run(tollgate, total, concurrency));
      }
      const r = bestRaw as Timed;
      const t = bestTollgate as Timed;
      if (concurrency === 16) {
        floor16 = r.perSecond;
        recordTarget({
          id: 'postgres.hop.c16',
          title: 'PostgreSQL hop on an own table, c=16 / raw pg transaction',
          figure: `${fmt(t.perSecond)} vs ${fmt(r.perSecond)}/s, CPU ${fmt(t.cpuMs, 2)} vs ${fmt(r.cpuMs, 2)} ms`,
          value: t.perSecond / r.perSecond,
          unit: 'ratio',
          op: '>=',
          target: 0.9,
        });
      }
      rows.push({
        concurrency,
        'raw floor tx/s': fmt(r.perSecond),
        'raw p50/p99 ms': `${fmt(r.p50Ms, 1)} / ${fmt(r.p99Ms, 1)}`,
        'raw CPU ms/tx': fmt(r.cpuMs, 2),
        'Tollgate hops/s': fmt(t.perSecond),
        'Tollgate p50/p99 ms': `${fmt(t.p50Ms, 1)} / ${fmt(t.p99Ms, 1)}`,
        'Tollgate CPU ms/hop': fmt(t.cpuMs, 2),
        ratio: ratio(t.perSecond, r.perSecond),
      });
    }

    // Statements per hop, through the counting proxy: a second store and pool on the same schema.
    const countStore = await openPgStore(pgUrl(PG_DB, wire.port), schema, false);
    const countPool = new pg.Pool({ connectionString: pgUrl(PG_DB, wire.port), max: POOL });
    try {
      const sample = 50;
      for (const [name, hop] of [
        ['raw floor (pg, BEGIN … COMMIT)', rawHop(countPool, schema)],
        ['Tollgate (processSignal)', tollgateHop(countStore, schema)],
      ] as const) {
        await hop((await mintBatch(store, 1))[0] as TokenRecord, `order/warm/${suffix()}`, 0);
        const tokens = await mintBatch(store, sample);
        const tag = suffix();
        const counted = await wire.count(async () => {
          for (let i = 0; i < sample; i++) await hop(tokens[i] as TokenRecord, `order/${tag}/${i}`, i);
        });
        counts.push(countRow(name, counted, sample));
      }
    } finally {
      await countStore.close();
      await countPool.end();
    }
  } finally {
    await store.close();
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await pool.end();
  }
  printTable(
    `PostgreSQL: one hop = consume 1 token + write 1 user-table row + mint 1 token, pool ${POOL} on both sides; Tollgate reads the token as its consume returns it (target: ratio >= 0.9)`,
    rows,
  );
  printTable('PostgreSQL hop: statements per signal (counted at the wire)', counts);
  return floor16;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const flag = (name: string) => {
    const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
    return arg ? { [name]: Number(arg.slice(name.length + 3)) } : {};
  };
  await runPostgresBench({ ...flag('hops'), ...flag('messages'), ...flag('signals') });
}
