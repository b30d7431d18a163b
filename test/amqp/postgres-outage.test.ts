import type { GetMessage } from 'amqplib';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FaultProxy, ProxyMode } from '../../soak/fault-proxy.js';
import { newTokenId } from '../../src/core/ids.js';
import { type PgTx, PostgresTokenStore } from '../../src/stores/postgres/postgres-store.js';
import type { AmqpConsumer } from '../../src/transports/amqp/consumer.js';
import { queueDestination } from '../../src/transports/amqp/destination.js';
import { AmqpHeaders, headerText } from '../../src/transports/amqp/headers.js';
import { type AmqpTollgate, createAmqpTollgate } from '../../src/transports/amqp/tollgate.js';
import { deadLetterNames, declareConsumerQueue } from '../../src/transports/amqp/topology.js';
import { deferred } from '../http/support.js';
import { freshSchemaName, POSTGRES_TEST_URL, postgresBehindProxy } from '../support/postgres.js';
import { stderrLogger } from './fixtures/scenario.js';
import { AMQP_URL, BrokerProbe, statusesOf, uniqueName, waitFor } from './support.js';

/**
 * PostgreSQL going away under a running AMQP consumer, made real: the consumer's store reaches PostgreSQL through a
 * TCP fault proxy that resets or blackholes every connection for a few seconds, or PostgreSQL itself terminates
 * the backends of hops in the middle of their transactions. The producer mints over a direct connection (its own
 * path to PostgreSQL is fine), so messages keep flowing through the outage; the test reads back over direct
 * connections too.
 */

interface Order {
  n: number;
}

const TOTAL = 60;
const BEFORE_OUTAGE = 20;
const OUTAGE_MS = 4_000;
/** Several statement timeouts long, so that hops stuck in the blackhole are cut and held. */
const BLACKHOLE_MS = 8_000;

describe('AMQP consumer on PostgreSQL (own table via ctx.tx) through a PostgreSQL outage', {
  timeout: 240_000,
}, () => {
  /** Tollgate's schema, shared by the proxied store (the consumer's) and the direct one (producer, checks). */
  const schema = freshSchemaName();
  /** The application's own schema (dropped after the file, with Tollgate's). */
  const shop = freshSchemaName();
  let admin: pg.Pool;
  let direct: PostgresTokenStore;

  let proxy: FaultProxy;
  /** The test PostgreSQL's URL through the proxy. */
  let proxyUrl: string;
  let store: PostgresTokenStore;
  let broker: BrokerProbe;
  let producer: AmqpTollgate<PgTx> | undefined;
  let consumerSide: AmqpTollgate<PgTx> | undefined;
  const queues: string[] = [];
  const extraStores: PostgresTokenStore[] = [];

  beforeAll(async () => {
    admin = new pg.Pool({ connectionString: POSTGRES_TEST_URL, max: 2 });
    await admin.query(`CREATE SCHEMA ${shop}`);
    direct = await PostgresTokenStore.open({ url: POSTGRES_TEST_URL, schema, createTables: true });
  });

  afterAll(async () => {
    await direct?.close();
    await admin?.end();
  });

  beforeEach(async () => {
    ({ proxy, url: proxyUrl } = await postgresBehindProxy());
    store = await PostgresTokenStore.open({
      url: proxyUrl,
      schema,
      // A statement unanswered this long cuts its connection (a blackhole gives no other sign).
      connectTimeoutMs: 1_000,
      statementTimeoutMs: 2_000,
    });
    broker = await BrokerProbe.open();
  });

  afterEach(async () => {
    proxy.setMode({ kind: 'pass' });
    await consumerSide?.close();
    consumerSide = undefined;
    await producer?.close();
    producer = undefined;
    await store.close();
    for (const extra of extraStores.splice(0)) await extra.close();
    await proxy.close();
    await broker.cleanUp(queues.splice(0));
    await broker.close();
  });

  interface Run {
    queue: string;
    downstream: string;
    /** Bare name of the own table (also how its hops' backends are found in pg_stat_activity). */
    tableName: string;
    consumer: AmqpConsumer<Order, void, PgTx>;
    ids: string[];
    publish(from: number, to: number, pauseMs?: number): Promise<void>;
    state(): Promise<Record<string, unknown>>;
  }

  interface RunOptions {
    /** The consumer's store. Default: the proxied store of the test. */
    on?: PostgresTokenStore;
    /** Messages published before the consumer starts. */
    first?: number;
    /** Awaited by the handler after its INSERT, inside the hop's transaction. */
    inside?: () => Promise<void>;
  }

  /**
   * A consumer on the proxied store whose handler inserts a row into its own table through `ctx.tx` (no unique
   * key: a doubled row would show as a second row) and emits one signal to a downstream queue.
   */
  async function start({ on = store, first = BEFORE_OUTAGE, inside }: RunOptions = {}): Promise<Run> {
    const suffix = newTokenId()
      .replace(/[^A-Za-z0-9]/g, '')
      .slice(0, 10)
      .toLowerCase();
    const tableName = `applied_${suffix}`;
    const table = `${shop}.${tableName}`;
    await admin.query(
      `CREATE TABLE ${table} (n integer NOT NULL, token_id text NOT NULL, attempt integer NOT NULL)`,
    );
    const queue = uniqueName('pg-outage');
    const downstream = `${queue}.shipments`;
    queues.push(queue, downstream);
    await declareConsumerQueue(broker.channel, queue, {});
    await declareConsumerQueue(broker.channel, downstream, {});

    const sender = await createAmqpTollgate({
      url: AMQP_URL,
      store: direct,
      relay: false,
      logger: stderrLogger(),
    });
    producer = sender;
    consumerSide = await createAmqpTollgate({
      url: AMQP_URL,
      store: on,
      relay: false,
      logger: stderrLogger(),
    });
    const ids: string[] = [];
    const publish = async (from: number, to: number, pauseMs = 0) => {
      for (let n = from; n < to; n++) {
        ids.push(await sender.publisher.publish({ exchange: '', routingKey: queue }, { n }));
        if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    };
    await publish(0, first);

    const consumer = await consumerSide.consume<Order, void>(
      queue,
      async (ctx) => {
        await ctx.tx.query(`INSERT INTO ${table} (n, token_id, attempt) VALUES ($1, $2, $3)`, [
          ctx.payload.n,
          ctx.token.id,
          ctx.attempt,
        ]);
        await inside?.();
        ctx.emit(queueDestination(downstream), { n: ctx.payload.n });
      },
      {
        concurrency: 4,
        outageHoldMs: 120_000,
        attempts: { attempts: 5, baseDelayMs: 100, maxDelayMs: 500 },
        // Few store retries inside a run, so that a few seconds of outage mean many failed runs.
        storeRetry: {
          versionConflict: { attempts: 8, baseDelayMs: 5, maxDelayMs: 200 },
          transient: { attempts: 2, baseDelayMs: 20, maxDelayMs: 50 },
        },
      },
    );
    const state = async () => ({
      stats: { ...consumer.stats },
      published: ids.length,
      statuses: await statusesOf(direct, ids),
      ready: await broker.messageCount(queue),
      dead: await broker.messageCount(deadLetterNames(queue).queue),
      proxy: { ...proxy.stats },
    });
    return { queue, downstream, tableName, consumer, ids, publish, state };
  }

  /** Takes the downstream queue's messages until `count` came, then waits a little for any extra copy. */
  async function shipmentsOf(run: Run, count: number): Promise<Array<string | undefined>> {
    let shipments: GetMessage[] = [];
    await waitFor(`${count} shipments`, async () => {
      shipments = [...shipments, ...(await broker.drain(run.downstream))];
      return shipments.length >= count;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    shipments = [...shipments, ...(await broker.drain(run.downstream))];
    return shipments.map((message) => headerText(message.properties.headers, AmqpHeaders.token));
  }

  /**
   * The outcome whatever the outage did: every message's own row exactly once, its token consumed, its one
   * emitted token minted exactly once; nothing requeued, dead-lettered or left on the queue; every signal sent is
   * a committed hop's, sent once.
   */
  async function expectExactlyOnce(run: Run, total = TOTAL): Promise<Array<string | undefined>> {
    const { consumer, ids, state } = run;
    // Settled either way, so that a delivery taken for a duplicate fails the check below rather than the wait.
    await waitFor(
      'every delivery settled',
      () => consumer.stats.processed + consumer.stats.dropped === total,
      {
        timeoutMs: 90_000,
        intervalMs: 100,
        describe: state,
      },
    );
    expect(ids).toHaveLength(total);
    // A delivery whose own earlier run committed, unbeknown to it, is still processed: never counted as dropped.
    expect(consumer.stats).toMatchObject({ processed: total, dropped: 0, requeued: 0, deadLettered: 0 });
    expect(await statusesOf(direct, ids)).toEqual({ consumed: total });

    const { rows } = await admin.query<{ n: number; rows: number; token: string }>(
      `SELECT n, count(*)::integer AS rows, min(token_id) AS token FROM ${shop}.${run.tableName} GROUP BY n ORDER BY n`,
    );
    expect(rows.map((row) => row.n)).toEqual(Array.from({ length: total }, (_, n) => n));
    expect(rows.filter((row) => row.rows !== 1)).toEqual([]);
    // Each row is its own message's: the row of message n was written with message n's token.
    expect(rows.map((row) => row.token)).toEqual(ids);

    expect(await broker.messageCount(run.queue)).toBe(0);
    expect(await broker.messageCount(deadLetterNames(run.queue).queue)).toBe(0);

    // One emitted token per message, minted by the commit that consumed it.
    const minted = await admin.query<{ id: string; parent_id: string; status: string }>(
      `SELECT id, parent_id, status FROM ${schema}.tokens WHERE parent_id = ANY($1::text[])`,
      [ids],
    );
    expect(minted.rows).toHaveLength(total);
    expect(new Set(minted.rows.map((row) => row.parent_id))).toEqual(new Set(ids));
    for (const row of minted.rows) expect(row.status).toMatch(/^(pending|dispatched)$/);

    // Each processed hop sent its signal once; each sent signal is one of those tokens (not a lost run's).
    const shipped = await shipmentsOf(run, consumer.stats.processed);
    expect(shipped).toHaveLength(consumer.stats.processed);
    expect(new Set(shipped).size).toBe(shipped.length);
    const mintedIds = new Set(minted.rows.map((row) => row.id));
    expect(shipped.filter((id) => id === undefined || !mintedIds.has(id))).toEqual([]);
    return shipped;
  }

  async function throughProxyOutage(mode: ProxyMode, outageMs: number): Promise<Run> {
    const run = await start();
    await waitFor('the consumer to get going', () => run.consumer.stats.processed >= 5, {
      describe: run.state,
    });
    proxy.setMode(mode);
    const retriedBefore = run.consumer.stats.retried;
    // Messages keep coming while PostgreSQL is away from the consumer.
    const publishing = run.publish(BEFORE_OUTAGE, TOTAL, 20);
    await new Promise((resolve) => setTimeout(resolve, outageMs));
    const during = { ...run.consumer.stats };
    proxy.setMode({ kind: 'pass' });
    await publishing;
    // Held and re-run here, never handed back to the broker (each requeue counts toward its delivery limit).
    expect(during).toMatchObject({ requeued: 0, deadLettered: 0 });
    expect(during.retried - retriedBefore).toBeGreaterThanOrEqual(mode.kind === 'reset' ? 4 : 1);
    return run;
  }

  it('PostgreSQL connections reset for seconds: deliveries held and re-run, each row applied once', async () => {
    const run = await throughProxyOutage({ kind: 'reset' }, OUTAGE_MS);
    expect(proxy.stats.resets).toBeGreaterThan(0);
    await expectExactlyOnce(run);
  });

  it('PostgreSQL unreachable (blackholed) for seconds: stuck statements cut, deliveries held, each row applied once', async () => {
    const run = await throughProxyOutage({ kind: 'blackhole' }, BLACKHOLE_MS);
    await expectExactlyOnce(run);
  });

  it('PostgreSQL terminates hops’ backends mid-transaction, again and again: each row applied once', async () => {
    // The handler lingers in its transaction after its INSERT, so that there are backends to terminate.
    const run = await start({ inside: () => new Promise((resolve) => setTimeout(resolve, 30)) });
    await waitFor('the consumer to get going', () => run.consumer.stats.processed >= 5, {
      describe: run.state,
    });
    const publishing = run.publish(BEFORE_OUTAGE, TOTAL, 20);
    let terminated = 0;
    const until = Date.now() + OUTAGE_MS;
    while (Date.now() < until) {
      // Only this test's hops: a tollgate connection inside a transaction whose last statement named its table.
      const { rows } = await admin.query<{ done: boolean }>(
        `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
          WHERE application_name = 'tollgate' AND state <> 'idle' AND query ILIKE $1 AND pid <> pg_backend_pid()`,
        [`%${run.tableName}%`],
      );
      terminated += rows.filter((row) => row.done).length;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await publishing;
    expect(terminated).toBeGreaterThan(0);
    await expectExactlyOnce(run);
    expect(run.consumer.stats).toMatchObject({ processed: TOTAL, dropped: 0 });
    // The killed runs were run again: by the core on a fresh connection (attempt > 1), or held by the consumer.
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::integer AS n FROM ${shop}.${run.tableName} WHERE attempt > 1`,
    );
    expect(run.consumer.stats.retried + (rows[0]?.n ?? 0)).toBeGreaterThan(0);
  });

  it('a hop whose COMMIT landed but whose answer was lost, then held through the outage, is processed (not a duplicate) and sends its signal', async () => {
    // Statements are slowed here, never cut: the statement timeout stays far above the proxy's delay.
    const patient = await PostgresTokenStore.open({
      url: proxyUrl,
      schema,
      connectTimeoutMs: 1_000,
      statementTimeoutMs: 60_000,
    });
    extraStores.push(patient);
    const entered = deferred();
    const gate = deferred();
    let held = true;
    const run = await start({
      on: patient,
      first: 1,
      inside: async () => {
        if (!held) return;
        held = false;
        entered.resolve();
        await gate.promise;
      },
    });
    const [tokenId] = run.ids as [string];

    // The handler has written its row in the open transaction. From now on every byte takes 3 s each way, so
    // PostgreSQL commits seconds before its answer could reach the consumer...
    await entered.promise;
    proxy.setMode({ kind: 'delay', ms: 3_000 });
    gate.resolve();
    await waitFor(
      'PostgreSQL to commit the hop',
      async () => (await direct.getToken(tokenId))?.status === 'consumed',
      {
        intervalMs: 25,
      },
    );
    // ...and the answer is lost with the connection. PostgreSQL stays unreachable until the core's transient
    // budget is spent and the consumer holds the delivery.
    proxy.setMode({ kind: 'reset' });
    await waitFor('the consumer to hold the delivery', () => run.consumer.stats.retried >= 1, {
      describe: run.state,
    });
    proxy.setMode({ kind: 'pass' });

    const shipped = await expectExactlyOnce(run, 1);
    // The commit id kept on the tombstone is this delivery's own run: it was processed, and its signal goes out
    // now (this consumer runs no relay that would send it later).
    const emitted = await admin.query<{ status: string }>(
      `SELECT status FROM ${schema}.tokens WHERE parent_id = $1`,
      [tokenId],
    );
    expect(run.consumer.stats).toMatchObject({ processed: 1, dropped: 0 });
    expect(shipped, 'the committed hop’s signal, sent by the hop').toHaveLength(1);
    expect(emitted.rows, 'the emitted token, marked dispatched').toEqual([{ status: 'dispatched' }]);
  });
});
