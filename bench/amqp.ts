/**
 * AMQP hop benchmark: one hop = consume a message, write one state item, emit one message (publisher confirm),
 * ack. Exactly-once through Tollgate against an at-least-once baseline in plain amqplib doing the same state
 * write on the same kind of store, through the same quorum queues, in one run.
 *
 * On PostgreSQL (the `postgres` bench, bench/postgres.ts) the state is a row of a user table instead: Tollgate's
 * handler writes it with `ctx.tx.query` inside the hop's transaction, the baseline with one plain `pg` statement.
 *
 * Run: npx tsx bench/amqp.ts [--dynamodb] [--messages=N]   (or through bench/run.ts)
 * Needs RabbitMQ (TOLLGATE_TEST_AMQP_URL, default amqp://guest:guest@127.0.0.1:5672).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { type Channel, type ChannelModel, type ConsumeMessage, connect } from 'amqplib';
import Database from 'better-sqlite3';
import pg from 'pg';
import { newTokenId } from '../src/core/ids.js';
import { pendingToken } from '../src/core/mint.js';
import type { TokenStore } from '../src/core/store.js';
import type { TokenRecord } from '../src/core/token.js';
import type { HandlerContext } from '../src/core/unit-of-work.js';
import { openStore, type StoreConfig } from '../src/stores/open.js';
import type { PgTx } from '../src/stores/postgres/postgres-store.js';
import { queueDestination } from '../src/transports/amqp/destination.js';
import { messageForToken } from '../src/transports/amqp/message.js';
import { createAmqpTollgate } from '../src/transports/amqp/tollgate.js';
import { declareConsumerQueue } from '../src/transports/amqp/topology.js';
import { fmt, percentile, printTable, ratio, settle } from './measure.js';
import { profiled } from './profile.js';
import { recordTarget } from './results.js';

const AMQP_URL = process.env.TOLLGATE_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
/** Messages in flight at once: enough to keep both contenders busy, small enough that latency means something. */
const WINDOW = 64;
const CONCURRENCY = 16;

export interface AmqpBenchOptions {
  /** Also run both contenders on DynamoDB (Local) at this endpoint. */
  dynamoEndpoint?: string;
  /** Also run both contenders on PostgreSQL at this URL, the state in a user table (a schema per run, dropped). */
  postgresUrl?: string;
  /** Run the SQLite contenders. Default true. */
  sqlite?: boolean;
  /** Measured messages per contender and round on SQLite (a quarter of it on DynamoDB, half on PostgreSQL). Default 8000: shorter runs (under a second) vary by ±10%. */
  messages?: number;
  /** Raw transaction floors from the core bench, by store name, to print the hop's ratio against them. */
  rawFloors?: Record<string, number>;
}

interface HopResult {
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of this process per hop (driver included, the same for both): where the difference is spent. */
  cpuMsPerHop: number;
}

/** Both contenders start their round settled: the backend's own leavings cleared, or the garbage alone. */
function settleRound(backend: Backend, config: StoreConfig): void {
  if (backend.settle) backend.settle(config);
  else settle();
}

/** One contender: consumes `inQueue`, does the hop, emits to `outQueue`. */
interface Contender {
  /** The input message for hop i (for Tollgate: carrying a pre-minted token; minting is not timed). */
  input(i: number): { body: Buffer; headers: Record<string, string> };
  close(): Promise<void>;
}

/** The exactly-once handler's state write for hop i. */
type HopWrite = (ctx: HandlerContext<{ i: number }, unknown>, i: number) => Promise<void> | void;

interface Backend {
  name: string;
  config(): StoreConfig;
  /** The baseline's state write, without Tollgate. */
  plainWriter(config: StoreConfig): {
    write(key: string, value: string): Promise<void>;
    close(): Promise<void> | void;
  };
  /** Tollgate's handler write; default a key-value `ctx.put`. */
  hopWrite?(config: StoreConfig): HopWrite;
  /** Creates what the writes need besides the store's own tables (called once the store has opened). */
  prepare?(config: StoreConfig): Promise<void>;
  /** Clears what the setup wrote before the clock starts (`settle`); default: the garbage only. */
  settle?(config: StoreConfig): void;
  /** Drops everything the backend's configs created. */
  cleanup?(): Promise<void>;
}

function sqliteBackend(dir: string): Backend {
  return {
    name: 'SQLite',
    config: () => ({ kind: 'sqlite', filename: join(dir, `${newTokenId()}.db`) }),
    settle(config) {
      if (config.kind === 'sqlite') settle(config.filename);
    },
    plainWriter(config) {
      if (config.kind !== 'sqlite') throw new Error('expected a SQLite config');
      // The same file settings as SqliteTokenStore, so the comparison is about Tollgate, not about SQLite tuning.
      const db = new Database(config.filename);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(
        'CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL, version INTEGER NOT NULL)',
      );
      const upsert = db.prepare(
        'INSERT INTO state (key, value, version) VALUES (?, ?, 1) ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = version + 1',
      );
      return {
        async write(key, value) {
          db.transaction(() => upsert.run(key, value)).immediate();
        },
        close: () => {
          db.close();
        },
      };
    },
  };
}

/** The user table of the PostgreSQL benches, in a bench schema: one row per order. */
export const ordersTable = (schema: string) => `"${schema}".bench_orders`;
export const createOrders = (table: string) =>
  `CREATE TABLE IF NOT EXISTS ${table} (id text PRIMARY KEY, paid boolean NOT NULL, amount integer NOT NULL, version integer NOT NULL)`;
/** The application's write, the same text on every side: `$1` the row's key, `$2` the amount. */
export const upsertOrder = (table: string) =>
  `INSERT INTO ${table} (id, paid, amount, version) VALUES ($1, true, $2, 1) ON CONFLICT (id) DO UPDATE SET paid = excluded.paid, amount = excluded.amount, version = ${table}.version + 1`;

function postgresBackend(url: string): Backend {
  const schemas: string[] = [];
  const schemaOf = (config: StoreConfig) => {
    if (config.kind !== 'postgres' || !config.schema)
      throw new Error('expected a PostgreSQL config with a schema');
    return config.schema;
  };
  const admin = () => new pg.Client({ connectionString: url });
  return {
    name: 'PostgreSQL',
    config: () => {
      const schema = `bench_amqp_${newTokenId()
        .replace(/[^A-Za-z0-9]/g, '')
        .toLowerCase()
        .slice(0, 12)}`;
      schemas.push(schema);
      return { kind: 'postgres', url, schema, poolSize: CONCURRENCY, createTables: true };
    },
    async prepare(config) {
      const client = admin();
      await client.connect();
      try {
        await client.query(createOrders(ordersTable(schemaOf(config))));
      } finally {
        await client.end();
      }
    },
    plainWriter(config) {
      // The same pool size as the store's; one autocommitted statement, as an at-least-once consumer writes.
      const pool = new pg.Pool({ connectionString: url, max: CONCURRENCY });
      const upsert = upsertOrder(ordersTable(schemaOf(config)));
      return {
        async write(key) {
          await pool.query(upsert, [key, 42]);
        },
        close: () => pool.end(),
      };
    },
    hopWrite(config) {
      const upsert = upsertOrder(ordersTable(schemaOf(config)));
      return async (ctx, i) => {
        await (ctx.tx as PgTx).query(upsert, [`order/${i}`, 42]);
      };
    },
    async cleanup() {
      const client = admin();
      await client.connect();
      try {
        for (const schema of schemas.splice(0))
          await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}

function dynamoBackend(endpoint: string): Backend {
  const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  return {
    name: 'DynamoDB Local',
    config: () => {
      const prefix = `bench_${newTokenId().replace(/[^A-Za-z0-9]/g, '')}`;
      return {
        kind: 'dynamodb',
        endpoint,
        region: 'us-east-1',
        credentials,
        tokensTable: `${prefix}_tokens`,
        stateTable: `${prefix}_state`,
        createTables: true,
      };
    },
    plainWriter(config) {
      if (config.kind !== 'dynamodb') throw new Error('expected a DynamoDB config');
      const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials });
      return {
        async write(key, value) {
          await client.send(
            new UpdateItemCommand({
              TableName: config.stateTable,
              Key: { key: { S: key } },
              UpdateExpression: 'SET #v = :v, version = if_not_exists(version, :zero) + :one',
              ExpressionAttributeNames: { '#v': 'value' },
              ExpressionAttributeValues: { ':v': { S: value }, ':zero': { N: '0' }, ':one': { N: '1' } },
            }),
          );
        },
        close: () => client.destroy(),
      };
    },
  };
}

async function exactlyOnce(
  backend: Backend,
  inQueue: string,
  outQueue: string,
  total: number,
): Promise<Contender> {
  const config = backend.config();
  const store: TokenStore = await openStore(config);
  await backend.prepare?.(config);
  const write: HopWrite =
    backend.hopWrite?.(config) ?? ((ctx, i) => ctx.put(`order/${i}`, { paid: true, order: i }));
  const tokens: TokenRecord[] = Array.from({ length: total }, (_, i) =>
    pendingToken(
      { destination: queueDestination(inQueue), payload: { i } },
      { mintedBy: 'bench', now: Date.now() },
    ),
  );
  for (let i = 0; i < tokens.length; i += 50) {
    const batch = tokens.slice(i, i + 50);
    await store.mint(batch);
    // As the upstream hop would once it had published them: otherwise the relay re-publishes inputs the driver
    // has not sent yet when a run lasts longer than its delay (10 s), and their outputs arrive "before" the send.
    await store.markDispatched(
      batch.map((token) => token.id),
      Date.now(),
    );
  }
  settleRound(backend, config);
  const tollgate = await createAmqpTollgate({ url: AMQP_URL, store, name: 'tollgate-bench' });
  await tollgate.consume<{ i: number }>(
    inQueue,
    async (ctx) => {
      await write(ctx, ctx.payload.i);
      ctx.emit(queueDestination(outQueue), { i: ctx.payload.i });
    },
    { concurrency: CONCURRENCY },
  );
  return {
    input(i) {
      const message = messageForToken(tokens[i] as TokenRecord, '', inQueue);
      return { body: message.body, headers: message.properties.headers as Record<string, string> };
    },
    async close() {
      await tollgate.close();
      await store.close();
    },
  };
}

async function atLeastOnce(backend: Backend, inQueue: string, outQueue: string): Promise<Contender> {
  const config = backend.config();
  // Opening the store once creates its files or tables; the baseline then writes to them without Tollgate.
  await (await openStore(config)).close();
  await backend.prepare?.(config);
  const writer = backend.plainWriter(config);
  settleRound(backend, config);
  const connection = await connect(AMQP_URL);
  const channel = await connection.createConfirmChannel();
  let closing = false;
  await channel.prefetch(CONCURRENCY);
  await channel.consume(inQueue, (message) => {
    if (!message) return;
    void (async () => {
      const { i } = JSON.parse(message.content.toString('utf8')) as { i: number };
      await writer.write(`order/${i}`, JSON.stringify({ paid: true, order: i }));
      await new Promise<void>((resolve, reject) =>
        channel.publish(
          '',
          outQueue,
          Buffer.from(JSON.stringify({ i })),
          { persistent: true, mandatory: true },
          (err) => (err ? reject(err) : resolve()),
        ),
      );
      channel.ack(message);
    })().catch((error: unknown) => {
      // At shutdown the last confirms race the close; any other failure would stall the run, so say so.
      if (!closing) console.error('baseline hop failed', error);
    });
  });
  return {
    input: (i) => ({ body: Buffer.from(JSON.stringify({ i })), headers: {} }),
    async close() {
      closing = true;
      await connection.close();
      await writer.close();
    },
  };
}

/** Keeps WINDOW messages in flight; a hop's latency runs from its input's publish to its output's arrival. */
async function drive(
  driver: Channel,
  contender: Contender,
  inQueue: string,
  outQueue: string,
  total: number,
) {
  const sentAt = new Float64Array(total);
  const latencies: number[] = [];
  let next = 0;
  const send = () => {
    const i = next++;
    if (i >= total) return;
    const { body, headers } = contender.input(i);
    sentAt[i] = performance.now();
    driver.publish('', inQueue, body, { persistent: true, headers, contentType: 'application/json' });
  };
  const started = performance.now();
  const cpu = process.cpuUsage();
  await new Promise<void>((resolve) => {
    void driver.consume(
      outQueue,
      (message: ConsumeMessage | null) => {
        if (!message) return;
        const { i } = JSON.parse(message.content.toString('utf8')) as { i: number };
        latencies.push(performance.now() - (sentAt[i] as number));
        if (latencies.length === total) resolve();
        else send();
      },
      { noAck: true },
    );
    for (let k = 0; k < WINDOW; k++) send();
  });
  const seconds = (performance.now() - started) / 1000;
  const { user, system } = process.cpuUsage(cpu);
  latencies.sort((a, b) => a - b);
  return {
    perSecond: total / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    cpuMsPerHop: (user + system) / 1000 / total,
  };
}

async function runContender(
  model: ChannelModel,
  make: (inQueue: string, outQueue: string) => Promise<Contender>,
  total: number,
): Promise<HopResult> {
  const suffix = newTokenId()
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, 8);
  const inQueue = `tollgate-bench.in.${suffix}`;
  const outQueue = `tollgate-bench.out.${suffix}`;
  const driver = await model.createChannel();
  await declareConsumerQueue(driver, inQueue, {});
  await declareConsumerQueue(driver, outQueue, {});
  const contender = await make(inQueue, outQueue);
  try {
    return await drive(driver, contender, inQueue, outQueue, total);
  } finally {
    await contender.close();
    for (const queue of [inQueue, outQueue]) {
      await driver.deleteQueue(queue);
      await driver.deleteQueue(`${queue}.dead`);
      await driver.deleteExchange(`${queue}.dlx`);
    }
    await driver.close();
  }
}

const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

async function benchBackend(model: ChannelModel, backend: Backend, total: number) {
  // Interleaved rounds, best of each kept, so warm-up and noise favour neither contender.
  const best = { baseline: undefined as HopResult | undefined, tollgate: undefined as HopResult | undefined };
  const rss = { baseline: 0, tollgate: 0 };
  const keep = (current: HopResult | undefined, run: HopResult) =>
    !current || run.perSecond > current.perSecond ? run : current;
  for (let round = 0; round < 2; round++) {
    best.baseline = keep(
      best.baseline,
      await runContender(model, (i, o) => atLeastOnce(backend, i, o), total),
    );
    rss.baseline = peakRssMb();
    const hop = () => runContender(model, (i, o) => exactlyOnce(backend, i, o, total), total);
    best.tollgate = keep(
      best.tollgate,
      round === 0
        ? await profiled(`amqp-hop-${backend.name.split(' ')[0]!.toLowerCase()}`, hop)
        : await hop(),
    );
    rss.tollgate = peakRssMb();
  }
  const row = (name: string, result: HopResult | undefined, peak: number) => ({
    store: backend.name,
    contender: name,
    'msgs/s': fmt(result?.perSecond ?? 0),
    'p50 ms': fmt(result?.p50Ms ?? 0, 1),
    'p99 ms': fmt(result?.p99Ms ?? 0, 1),
    'CPU ms/hop': fmt(result?.cpuMsPerHop ?? 0, 2),
    'peak RSS MB (process)': fmt(peak),
  });
  return {
    rows: [
      row('at-least-once (plain amqplib)', best.baseline, rss.baseline),
      row('exactly-once (Tollgate)', best.tollgate, rss.tollgate),
    ],
    ratio: ratio(best.tollgate?.perSecond ?? 0, best.baseline?.perSecond ?? 0),
    tollgatePerSecond: best.tollgate?.perSecond ?? 0,
    baseline: best.baseline,
    tollgate: best.tollgate,
  };
}

/** The targets for the AMQP hop: on SQLite against the baseline, on DynamoDB against the raw floor. */
function recordAmqpTargets(
  store: string,
  tollgate: HopResult | undefined,
  baseline: HopResult | undefined,
  floor: number | undefined,
): void {
  if (!tollgate || !baseline) return;
  const figure = `${fmt(tollgate.perSecond)} vs ${fmt(baseline.perSecond)} msgs/s, p99 ${fmt(tollgate.p99Ms, 1)} vs ${fmt(baseline.p99Ms, 1)} ms, CPU ${fmt(tollgate.cpuMsPerHop, 2)} vs ${fmt(baseline.cpuMsPerHop, 2)} ms/hop`;
  if (store === 'SQLite') {
    recordTarget({
      id: 'amqp.sqlite.throughput',
      title: 'AMQP hop on SQLite, exactly-once / plain amqplib at-least-once',
      figure,
      value: tollgate.perSecond / baseline.perSecond,
      unit: 'ratio',
      op: '>=',
      target: 1,
    });
    recordTarget({
      id: 'amqp.sqlite.p99',
      title: 'AMQP hop on SQLite, p99 exactly-once / at-least-once',
      figure,
      value: tollgate.p99Ms / baseline.p99Ms,
      unit: 'ratio',
      op: '<=',
      target: 2,
    });
  }
  if (store === 'DynamoDB Local' && floor !== undefined) {
    recordTarget({
      id: 'amqp.dynamodb.floor',
      title: 'AMQP hop on DynamoDB Local / raw TransactWriteItems floor (c=16)',
      figure: `${fmt(tollgate.perSecond)} msgs/s vs floor ${fmt(floor)} tx/s, p99 ${fmt(tollgate.p99Ms, 1)} ms`,
      value: tollgate.perSecond / floor,
      unit: 'ratio',
      op: '>=',
      target: 0.9,
    });
  }
}

export async function runAmqpBench(options: AmqpBenchOptions = {}): Promise<void> {
  const total = options.messages ?? 8_000;
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-amqp-bench-'));
  const model = await connect(AMQP_URL);
  const backends = [
    ...(options.sqlite === false ? [] : [sqliteBackend(dir)]),
    ...(options.dynamoEndpoint ? [dynamoBackend(options.dynamoEndpoint)] : []),
    ...(options.postgresUrl ? [postgresBackend(options.postgresUrl)] : []),
  ];
  try {
    for (const backend of backends) {
      const messages =
        backend.name === 'SQLite'
          ? total
          : backend.name === 'PostgreSQL'
            ? Math.ceil(total / 2)
            : Math.ceil(total / 4);
      const result = await benchBackend(model, backend, messages);
      printTable(
        `AMQP hop on ${backend.name} (consume, 1 state write, emit 1 message; ${messages} messages, ${WINDOW} in flight, ${CONCURRENCY} handlers; quorum queues; best of 2)`,
        result.rows,
      );
      console.log(`exactly-once / at-least-once throughput on ${backend.name}: ${result.ratio}`);
      const floor = options.rawFloors?.[backend.name];
      if (floor !== undefined) {
        console.log(
          `exactly-once hop / raw transaction floor of the core bench (${fmt(floor)}/s) on ${backend.name}: ${ratio(result.tollgatePerSecond, floor)}`,
        );
      }
      recordAmqpTargets(backend.name, result.tollgate, result.baseline, floor);
    }
  } finally {
    await model.close();
    for (const backend of backends) await backend.cleanup?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const messagesFlag = process.argv.find((arg) => arg.startsWith('--messages='));
  const messages = messagesFlag ? Number(messagesFlag.slice('--messages='.length)) : undefined;
  let stopDynamo: (() => Promise<void>) | undefined;
  let dynamoEndpoint: string | undefined;
  if (process.argv.includes('--dynamodb')) {
    const { startDynamoDbLocal } = await import('../test/support/dynamodb-local.js');
    const dynamo = await startDynamoDbLocal();
    dynamoEndpoint = dynamo.endpoint;
    stopDynamo = () => dynamo.stop();
  }
  try {
    await runAmqpBench({ ...(dynamoEndpoint ? { dynamoEndpoint } : {}), ...(messages ? { messages } : {}) });
  } finally {
    await stopDynamo?.();
  }
}
