import Fastify, { type FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FaultProxy } from '../../soak/fault-proxy.js';
import { newTokenId } from '../../src/core/ids.js';
import type { RetryPolicy } from '../../src/core/processor.js';
import type { HandlerContext } from '../../src/core/unit-of-work.js';
import { type PgTx, PostgresTokenStore } from '../../src/stores/postgres/postgres-store.js';
import { tollgateOf, tollgatePlugin } from '../../src/transports/http/index.js';
import { freshSchemaName, POSTGRES_TEST_URL, postgresBehindProxy } from '../support/postgres.js';
import { type Answer, deferred, expectProblem, listen, mintFor, post, tokenHeader } from './support.js';

/**
 * PostgreSQL going away under an exactly-once fastify route, made real: the route's store reaches PostgreSQL
 * through a TCP fault proxy (resetting or blackholing every connection while told to), or PostgreSQL itself
 * kills the hop's backend in the middle of its transaction. What the tests read back (tokens, the route's own
 * table) they read over direct connections that no fault touches.
 */

interface OrderPayload {
  order: string;
  cents: number;
}

/** The store's transient budget is kept small, so that an outage turns into a 503 quickly. */
const SMALL_RETRY: RetryPolicy = {
  versionConflict: { attempts: 8, baseDelayMs: 1, maxDelayMs: 20 },
  transient: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
};

/** Polls `check` until it returns a value; fails saying `what` after `timeoutMs`. */
async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('exactly-once route on PostgreSQL while PostgreSQL goes away', () => {
  /** Tollgate's schema, shared by the proxied store (the route's) and the direct one (the test's). */
  const schema = freshSchemaName();
  /** The application's own schema (dropped after the file, with Tollgate's). */
  const shop = freshSchemaName();
  let admin: pg.Pool;
  let direct: PostgresTokenStore;

  let proxy: FaultProxy;
  let store: PostgresTokenStore;
  let app: FastifyInstance;
  let base: string;
  /** This test's own table, `<shop>.<name>`; its bare name also picks the hop's backend out of pg_stat_activity. */
  let table: string;
  let tableName: string;
  /** Handler runs, and what a test makes the handler do after its INSERT (run: 1 on the first run). */
  let runs: number;
  let afterInsert: ((work: HandlerContext<OrderPayload, PgTx>, run: number) => Promise<void>) | undefined;

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
    tableName = `orders_${newTokenId()
      .replace(/[^A-Za-z0-9]/g, '')
      .slice(0, 10)
      .toLowerCase()}`;
    table = `${shop}.${tableName}`;
    // No unique key: a doubled row must show as a second row, not as an error that hides it.
    await admin.query(`CREATE TABLE ${table} (order_id text NOT NULL, token_id text NOT NULL, cents integer NOT NULL,
      run integer NOT NULL)`);
    runs = 0;
    afterInsert = undefined;
    let url: string;
    ({ proxy, url } = await postgresBehindProxy());
    store = await PostgresTokenStore.open({
      url,
      schema,
      // Small, so that an outage turns into a 503 quickly: a statement unanswered this long cuts its connection.
      connectTimeoutMs: 2_000,
      statementTimeoutMs: 3_000,
    });
    app = Fastify({ logger: false });
    await app.register(tollgatePlugin, {
      store,
      endpoint: 'orders',
      retry: SMALL_RETRY,
      inProgress: { waitMs: 30_000 },
    });
    app.post('/orders', { config: { exactlyOnce: true } }, async (request, reply) => {
      const work = tollgateOf<OrderPayload, PgTx>(request);
      runs += 1;
      const run = runs;
      const { order, cents } = work.payload;
      await work.tx.query(`INSERT INTO ${table} (order_id, token_id, cents, run) VALUES ($1, $2, $3, $4)`, [
        order,
        work.token.id,
        cents,
        run,
      ]);
      await afterInsert?.(work, run);
      // Its own SQL again, after whatever happened meanwhile: what this transaction sees of the order.
      const { rows } = await work.tx.query<{ n: number }>(
        `SELECT count(*)::integer AS n FROM ${table} WHERE order_id = $1`,
        [order],
      );
      reply.code(201).header('location', `/orders/${order}`);
      return { order, cents, rowsSeen: rows[0]?.n };
    });
    base = await listen(app);
  });

  afterEach(async () => {
    proxy.setMode({ kind: 'pass' });
    await app.close();
    await store.close();
    await proxy.close();
  });

  const ordersUrl = () => `${base}/orders`;

  async function rowsFor(tokenId: string): Promise<number> {
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::integer AS n FROM ${table} WHERE token_id = $1`,
      [tokenId],
    );
    return rows[0]?.n ?? -1;
  }

  async function statusOf(tokenId: string): Promise<string | undefined> {
    return (await direct.getToken(tokenId))?.status;
  }

  function expectUnavailable(answer: Answer, tokenId: string): void {
    expectProblem(answer, 503, 'store-unavailable');
    expect(answer.headers.get('retry-after')).toBe('1');
    expect(answer.json).toMatchObject({ code: 'TOLLGATE_ERR_STORE_UNAVAILABLE', tokenId });
  }

  /** After the outage: the same request is processed once, and a further copy is a duplicate of it. */
  async function expectCompletesOnce(
    payload: OrderPayload,
    tokenId: string,
    already?: Answer,
  ): Promise<void> {
    let processed = already;
    if (!processed) {
      processed = await post(ordersUrl(), payload, tokenHeader(tokenId));
      expect(processed.status, processed.body).toBe(201);
      expect(processed.headers.get('exactly-once-status')).toBe('processed');
    }
    expect(processed.json).toEqual({ ...payload, rowsSeen: 1 });
    const again = await post(ordersUrl(), payload, tokenHeader(tokenId));
    expect(again.status).toBe(201);
    expect(again.headers.get('exactly-once-status')).toBe('duplicate');
    expect(again.headers.get('location')).toBe(`/orders/${payload.order}`);
    expect(again.body).toBe(processed.body);
    expect(await rowsFor(tokenId)).toBe(1);
    expect(await direct.getToken(tokenId)).toMatchObject({ status: 'consumed', consumedBy: 'orders' });
  }

  /** The backend of this test's hop: a tollgate connection inside a transaction that touched its table. */
  async function hopBackend(): Promise<number> {
    return eventually('the hop’s backend in pg_stat_activity', async () => {
      const { rows } = await admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
          WHERE application_name = 'tollgate' AND state <> 'idle' AND query ILIKE $1 AND pid <> pg_backend_pid()`,
        [`%${tableName}%`],
      );
      return rows.length === 1 ? rows[0]?.pid : undefined;
    });
  }

  async function terminate(pid: number): Promise<void> {
    const { rows } = await admin.query<{ done: boolean }>('SELECT pg_terminate_backend($1) AS done', [pid]);
    expect(rows[0]?.done).toBe(true);
  }

  it('answers 503 store-unavailable while PostgreSQL resets every connection; the token waits, then applies once', async () => {
    const payload = { order: 'o-reset', cents: 1200 };
    const token = await mintFor(direct, ordersUrl(), payload);

    proxy.setMode({ kind: 'reset' });
    const refused = await post(ordersUrl(), payload, tokenHeader(token.id));
    expectUnavailable(refused, token.id);
    expect(proxy.stats.resets).toBeGreaterThan(0);
    expect(await statusOf(token.id)).toBe('pending');
    expect(await rowsFor(token.id)).toBe(0);

    proxy.setMode({ kind: 'pass' });
    await expectCompletesOnce(payload, token.id);
    expect(runs).toBe(1);
  });

  it('rolls back the handler’s own row when the connection is reset mid-transaction, answers 503, then applies once', async () => {
    const payload = { order: 'o-mid-reset', cents: 300 };
    const token = await mintFor(direct, ordersUrl(), payload);
    const inside = deferred();
    const proceed = deferred();
    afterInsert = async (_work, run) => {
      if (run !== 1) return;
      inside.resolve();
      await proceed.promise;
    };

    const answer = post(ordersUrl(), payload, tokenHeader(token.id));
    await inside.promise;
    // The hop's transaction is open, its own row written but not committed, the token's row locked.
    expect(await rowsFor(token.id)).toBe(0);
    proxy.setMode({ kind: 'reset' });
    proceed.resolve();
    expectUnavailable(await answer, token.id);
    expect(await statusOf(token.id)).toBe('pending');
    expect(await rowsFor(token.id)).toBe(0);

    proxy.setMode({ kind: 'pass' });
    await expectCompletesOnce(payload, token.id);
  });

  it('answers 503 store-unavailable, rather than hanging, while PostgreSQL is unreachable (a blackhole); then applies once', async () => {
    // A live service: the pool holds idle connections from earlier requests when the network partitions.
    const warm = { order: 'o-warm', cents: 1 };
    const warmToken = await mintFor(direct, ordersUrl(), warm);
    expect((await post(ordersUrl(), warm, tokenHeader(warmToken.id))).status).toBe(201);

    const payload = { order: 'o-blackhole', cents: 700 };
    const token = await mintFor(direct, ordersUrl(), payload);
    proxy.setMode({ kind: 'blackhole' });
    const answer = post(ordersUrl(), payload, tokenHeader(token.id));
    // Generous: two store attempts, each bounded by the store's statement (3 s) or connect (2 s) timeout.
    const bound = 45_000;
    const during = await Promise.race([
      answer,
      new Promise<'no answer'>((resolve) => setTimeout(() => resolve('no answer'), bound).unref()),
    ]);
    const stuck = during === 'no answer';
    // Soft: the test goes on, to show what the stuck request does once the network heals.
    expect.soft(stuck, `no answer within ${bound} ms while PostgreSQL was unreachable`).toBe(false);
    if (stuck) {
      expect(await statusOf(token.id)).toBe('pending');
      expect(await rowsFor(token.id)).toBe(0);
      proxy.setMode({ kind: 'pass' });
      const late = await answer;
      expect(late.status, late.body).toBe(201);
      expect(late.headers.get('exactly-once-status')).toBe('processed');
      await expectCompletesOnce(payload, token.id, late);
      return;
    }
    expectUnavailable(during as Answer, token.id);
    expect(await statusOf(token.id)).toBe('pending');
    expect(await rowsFor(token.id)).toBe(0);
    proxy.setMode({ kind: 'pass' });
    await expectCompletesOnce(payload, token.id);
  });

  it('PostgreSQL kills the hop’s backend between the handler’s statements: processed on a fresh connection or 503, never twice', async () => {
    const payload = { order: 'o-killed-idle', cents: 450 };
    const token = await mintFor(direct, ordersUrl(), payload);
    const inside = deferred();
    const proceed = deferred();
    afterInsert = async (_work, run) => {
      if (run !== 1) return;
      inside.resolve();
      await proceed.promise;
    };

    const answer = post(ordersUrl(), payload, tokenHeader(token.id));
    await inside.promise;
    await terminate(await hopBackend());
    proceed.resolve();
    const first = await answer;
    expect(first.status === 201 || first.status === 503, first.body).toBe(true);
    expect(await rowsFor(token.id)).toBeLessThanOrEqual(1);
    if (first.status === 201) {
      // The core ran the hop again on a fresh connection: the first run's row went with its transaction.
      expect(first.headers.get('exactly-once-status')).toBe('processed');
      expect(runs).toBe(2);
      const { rows } = await admin.query<{ run: number }>(`SELECT run FROM ${table} WHERE token_id = $1`, [
        token.id,
      ]);
      expect(rows).toEqual([{ run: 2 }]);
      await expectCompletesOnce(payload, token.id, first);
    } else {
      expectUnavailable(first, token.id);
      expect(await statusOf(token.id)).toBe('pending');
      expect(await rowsFor(token.id)).toBe(0);
      await expectCompletesOnce(payload, token.id);
    }
  });

  it('PostgreSQL kills the hop’s backend while the handler’s own statement runs: processed on a fresh connection or 503, never twice', async () => {
    const payload = { order: 'o-killed-active', cents: 650 };
    const token = await mintFor(direct, ordersUrl(), payload);
    afterInsert = async (work, run) => {
      if (run !== 1) return;
      // Still running (its text names the table) when the backend is terminated.
      await work.tx.query(`SELECT pg_sleep(60) FROM ${table} WHERE token_id = $1`, [work.token.id]);
    };

    const answer = post(ordersUrl(), payload, tokenHeader(token.id));
    const pid = await eventually('the handler’s pg_sleep to run', async () => {
      const { rows } = await admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
          WHERE application_name = 'tollgate' AND state = 'active' AND query ILIKE $1 AND query ILIKE '%pg_sleep%'`,
        [`%${tableName}%`],
      );
      return rows[0]?.pid;
    });
    await terminate(pid);
    const first = await answer;
    expect(first.status === 201 || first.status === 503, first.body).toBe(true);
    expect(await rowsFor(token.id)).toBeLessThanOrEqual(1);
    if (first.status === 201) {
      expect(first.headers.get('exactly-once-status')).toBe('processed');
      expect(runs).toBe(2);
      await expectCompletesOnce(payload, token.id, first);
    } else {
      expectUnavailable(first, token.id);
      expect(await statusOf(token.id)).toBe('pending');
      expect(await rowsFor(token.id)).toBe(0);
      await expectCompletesOnce(payload, token.id);
    }
  });
});
