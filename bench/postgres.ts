/**
 * PostgreSQL benchmarks, on the local server (TOLLGATE_TEST_PG_HOST/PORT/DB/USER, default postgres@127.0.0.1:5432/test):
 *
 * 1. Raw floor vs Tollgate: one hop = consume a pre-minted token, write one row of a user table, mint one token.
 *    Tollgate runs `processSignal` on the PostgresTokenStore (its cheap-check read, then one transaction with the
 *    handler's `ctx.tx.query` inside); the floor sends the same statements in a plain BEGIN … COMMIT through `pg`.
 * 2. AMQP hop with the state in a user table: bench/amqp.ts's contenders on a PostgreSQL backend.
 * 3. DBOS Transact (bench/dbos.ts) on the same work: a workflow whose one transaction step writes the row, each
 *    signal started twice with the same workflow ID; against a Tollgate hop writing the row, each signal sent twice.
 *
 * Statements per signal are counted at the wire (see WireCounter), in separate untimed runs.
 * Every schema, database and queue made here is dropped at the end. Prints figures; never a pass/fail.
 *
 * Run: npm run bench -- postgres   (or npx tsx bench/postgres.ts [--hops=N] [--messages=N] [--signals=N])
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { newTokenId } from '../src/core/ids.js';
import { pendingToken } from '../src/core/mint.js';
import { processSignal } from '../src/core/processor.js';
import type { TokenStore } from '../src/core/store.js';
import type { Destination, TokenRecord } from '../src/core/token.js';
import { openStore } from '../src/stores/open.js';
import type { PgTx } from '../src/stores/postgres/postgres-store.js';
import { createOrders, ordersTable, runAmqpBench, upsertOrder } from './amqp.js';
import type { DbosPeer } from './dbos.js';
import { fmt, type Measurement, measure, printTable, ratio } from './measure.js';

const PG_HOST = process.env.TOLLGATE_TEST_PG_HOST ?? '127.0.0.1';
const PG_PORT = Number(process.env.TOLLGATE_TEST_PG_PORT ?? '5432');
const PG_DB = process.env.TOLLGATE_TEST_PG_DB ?? 'test';
const PG_USER = process.env.TOLLGATE_TEST_PG_USER ?? 'postgres';
const pgUrl = (database = PG_DB, port = PG_PORT) => `postgres://${PG_USER}@${PG_HOST}:${port}/${database}`;

/** Connections on every side: the store's pool, the raw floor's, DBOS's two. At least the highest concurrency. */
const POOL = 16;
const CONCURRENCIES = [1, 16] as const;

const destination: Destination = { medium: 'amqp', exchange: 'orders', routingKey: 'placed' };
const next: Destination = { medium: 'amqp', exchange: 'payments', routingKey: 'requested' };

type Row = Record<string, string | number>;

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
      'one statement, each simple-protocol Query one per `;`-separated statement; a round trip is a Sync or a Query. ' +
      'By first keyword: B BEGIN, C COMMIT, R ROLLBACK, S SELECT, I INSERT, U UPDATE, D DELETE, W WITH (a CTE).',
  );
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Raw floor vs Tollgate

const suffix = () => randomBytes(5).toString('hex');

async function withClient<T>(url: string, body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

async function mintBatch(store: TokenStore, count: number): Promise<TokenRecord[]> {
  const now = Date.now();
  const tokens = Array.from({ length: count }, (_, i) =>
    pendingToken({ destination, payload: { order: i, amount: 42 } }, { mintedBy: 'bench', now }),
  );
  for (let i = 0; i < tokens.length; i += 200) await store.mint(tokens.slice(i, i + 200));
  return tokens;
}

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

async function openPgStore(url: string, schema: string, createTables: boolean): Promise<TokenStore<PgTx>> {
  return (await openStore({
    kind: 'postgres',
    url,
    schema,
    poolSize: POOL,
    createTables,
  })) as TokenStore<PgTx>;
}

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
      if (concurrency === 16) floor16 = r.perSecond;
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
    `PostgreSQL: one hop = consume 1 token + write 1 user-table row + mint 1 token, pool ${POOL} on both sides; Tollgate includes its cheap-check read (target: ratio >= 0.9)`,
    rows,
  );
  printTable('PostgreSQL hop: statements per signal (counted at the wire)', counts);
  return floor16;
}

/** A measurement with this process's CPU time per op (driver, client library and, for DBOS, its runtime). */
interface Timed extends Measurement {
  cpuMs: number;
}

async function timed(
  total: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<Timed> {
  const cpu = process.cpuUsage();
  const measured = await measure(total, concurrency, op);
  const { user, system } = process.cpuUsage(cpu);
  return { ...measured, cpuMs: (user + system) / 1000 / total };
}

function best<T extends Measurement>(current: T | undefined, run: T): T {
  return !current || run.perSecond > current.perSecond ? run : current;
}

function countRow(name: string, counted: Counted, signals: number): Row {
  return {
    contender: name,
    'statements/signal': fmt(counted.statements / signals, 1),
    'round trips/signal': fmt(counted.roundTrips / signals, 1),
    'by kind, per signal': breakdown(counted.byKind, signals),
  };
}

const KIND_LETTERS: Record<string, string> = {
  BEGIN: 'B',
  COMMIT: 'C',
  ROLLBACK: 'R',
  SELECT: 'S',
  INSERT: 'I',
  UPDATE: 'U',
  DELETE: 'D',
  WITH: 'W',
};

function breakdown(byKind: ReadonlyMap<string, number>, signals: number): string {
  return [...byKind]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([kind, n]) => `${KIND_LETTERS[kind] ?? kind} ${fmt(n / signals, 1)}`)
    .join(', ');
}

// ---------------------------------------------------------------------------------------------------------------
// 3. DBOS Transact on the same work

async function dbosPeer(wire: WireCounter, signals: number): Promise<void> {
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
      if (t && d) summary.push(`c=${concurrency}: ${ratio(t.perSecond, d.perSecond)}`);
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

// ---------------------------------------------------------------------------------------------------------------
// Counting statements at the wire

interface Counted {
  statements: number;
  roundTrips: number;
  /** Statements by first keyword (BEGIN, SELECT, ...). */
  byKind: ReadonlyMap<string, number>;
}

/**
 * A TCP proxy in front of PostgreSQL that reads the client → server half of the protocol and counts what is
 * executed: each extended-protocol Execute is one statement (the one its portal was bound to, by the Parse that
 * named it), each simple-protocol Query one per `;`-separated statement; a round trip is a Sync or a Query. It
 * does not depend on the client library (node-postgres here, whatever DBOS runs inside) and needs nothing on the
 * server (pg_stat_statements is not preloaded on it). Only for untimed runs: it adds a hop to every round trip.
 */
class WireCounter {
  readonly #sockets = new Set<Socket>();
  #counting = false;
  #byKind = new Map<string, number>();
  #roundTrips = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<WireCounter> {
    const accepted: Socket[] = [];
    let counter: WireCounter | undefined;
    const server = createServer((client) => {
      if (counter) counter.#accept(client, target);
      else accepted.push(client);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('counting proxy has no port');
    counter = new WireCounter(server, address.port);
    for (const client of accepted) counter.#accept(client, target);
    return counter;
  }

  /** Counts what every connection sends while `body` runs. */
  async count(body: () => Promise<void>): Promise<Counted> {
    this.#byKind = new Map();
    this.#roundTrips = 0;
    this.#counting = true;
    try {
      await body();
    } finally {
      this.#counting = false;
    }
    return {
      statements: [...this.#byKind.values()].reduce((a, b) => a + b, 0),
      roundTrips: this.#roundTrips,
      byKind: this.#byKind,
    };
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  #accept(client: Socket, target: { host: string; port: number }): void {
    const upstream = tcpConnect(target.port, target.host);
    this.#sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.#sockets.delete(client);
      this.#sockets.delete(upstream);
    };
    for (const socket of [client, upstream]) socket.on('error', end).on('close', end);
    upstream.on('data', (chunk) => client.write(chunk));
    const parser = new FrontendParser(
      (kind) => {
        if (this.#counting) this.#byKind.set(kind, (this.#byKind.get(kind) ?? 0) + 1);
      },
      () => {
        if (this.#counting) this.#roundTrips += 1;
      },
    );
    client.on('data', (chunk) => {
      upstream.write(chunk);
      parser.push(chunk);
    });
  }
}

/** Frames the frontend (client → server) messages of one connection; reports statements and round trips. */
class FrontendParser {
  #buffer: Buffer = Buffer.alloc(0);
  #started = false;
  readonly #statements = new Map<string, string>();
  readonly #portals = new Map<string, string>();

  constructor(
    private readonly onStatement: (kind: string) => void,
    private readonly onRoundTrip: () => void,
  ) {}

  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      if (!this.#started) {
        // Start-up messages carry no type byte: SSLRequest / GSSENCRequest, then the StartupMessage (protocol 3.0).
        if (this.#buffer.length < 8) return;
        const length = this.#buffer.readInt32BE(0);
        if (this.#buffer.length < length) return;
        if (this.#buffer.readInt32BE(4) === 196608) this.#started = true;
        this.#buffer = this.#buffer.subarray(length);
        continue;
      }
      if (this.#buffer.length < 5) return;
      const length = this.#buffer.readInt32BE(1);
      if (this.#buffer.length < length + 1) return;
      const type = String.fromCharCode(this.#buffer[0] as number);
      const body = this.#buffer.subarray(5, length + 1);
      this.#buffer = this.#buffer.subarray(length + 1);
      this.#message(type, body);
    }
  }

  #message(type: string, body: Buffer): void {
    switch (type) {
      case 'Q': // simple query: one round trip, maybe several statements
        this.onRoundTrip();
        for (const statement of cString(body, 0).value.split(';')) {
          if (statement.trim() !== '') this.onStatement(kindOf(statement));
        }
        break;
      case 'P': {
        // Parse: statement name, text
        const name = cString(body, 0);
        this.#statements.set(name.value, cString(body, name.next).value);
        break;
      }
      case 'B': {
        // Bind: portal name, statement name
        const portal = cString(body, 0);
        this.#portals.set(portal.value, this.#statements.get(cString(body, portal.next).value) ?? '?');
        break;
      }
      case 'E': // Execute: portal name
        this.onStatement(kindOf(this.#portals.get(cString(body, 0).value) ?? '?'));
        break;
      case 'S': // Sync: the end of an extended-protocol round trip
        this.onRoundTrip();
        break;
      default:
        break;
    }
  }
}

function cString(buffer: Buffer, start: number): { value: string; next: number } {
  const end = buffer.indexOf(0, start);
  return { value: buffer.toString('utf8', start, end), next: end + 1 };
}

/** The statement's first keyword, past comments. */
function kindOf(sql: string): string {
  const word = /^\s*(?:--[^\n]*\n\s*|\/\*[\s\S]*?\*\/\s*)*([A-Za-z]+)/.exec(sql)?.[1];
  return word ? word.toUpperCase() : '?';
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const flag = (name: string) => {
    const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
    return arg ? { [name]: Number(arg.slice(name.length + 3)) } : {};
  };
  await runPostgresBench({ ...flag('hops'), ...flag('messages'), ...flag('signals') });
}
