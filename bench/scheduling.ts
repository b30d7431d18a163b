/**
 * Scheduled signals: npm run bench -- scheduling   (or npx tsx bench/scheduling.ts)
 * - Lateness: 10 000 scheduled tokens fall due evenly over 3 s; one relay with its default intervals sends them to
 *   a recording sender. Lateness = send time - due time, p50/p99/max, and the relay's store calls per fired
 *   signal (counted through a thin wrapper of the store). SQLite, and PostgreSQL when it is reachable.
 * - A process step (tollgate/process processHandler) against a plain exactly-once hop (processSignal) that makes
 *   the same write, with and without scheduling a timeout.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dispatcher, type SignalSender } from '../src/core/dispatcher.js';
import type { JsonValue } from '../src/core/fingerprint.js';
import { pendingToken } from '../src/core/mint.js';
import { type Handler, processSignal } from '../src/core/processor.js';
import { Relay } from '../src/core/relay.js';
import { scheduledToken } from '../src/core/scheduling.js';
import type { TokenStore } from '../src/core/store.js';
import type { Destination, TokenRecord } from '../src/core/token.js';
import { defineProcess, instanceKey } from '../src/process/define.js';
import { processHandler } from '../src/process/handler.js';
import { openStore, type StoreConfig } from '../src/stores/open.js';
import { fmt, measure, percentile, printTable, ratio } from './measure.js';
import { pgUrl, suffix, withClient } from './pg-shared.js';
import { recordTarget } from './results.js';

const SIGNALS = 10_000;
/** The due times spread evenly over this window. */
const SPREAD_MS = 3_000;
/** Due times start this long after the mint begins; the relay starts shortly before the first. */
const LEAD_MS = 3_000;
const timeouts: Destination = { medium: 'amqp', exchange: 'payments', routingKey: 'timed-out' };
const orders: Destination = { medium: 'amqp', exchange: 'orders', routingKey: 'placed' };

type Row = Record<string, string | number>;

interface Backend {
  name: string;
  config: StoreConfig;
  /** After the tokens are minted, before the relay starts. */
  afterMint?(): Promise<void>;
  cleanUp(): Promise<void>;
}

/** Counts every call the relay and its dispatcher make on the store, by method, and the time spent in them. */
function countingStore(store: TokenStore): {
  store: TokenStore;
  calls: Map<string, number>;
  busyMs: () => number;
} {
  const calls = new Map<string, number>();
  let busy = 0;
  const wrapped = new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        calls.set(String(property), (calls.get(String(property)) ?? 0) + 1);
        const started = performance.now();
        try {
          return await value.apply(target, args);
        } finally {
          busy += performance.now() - started;
        }
      };
    },
  });
  return { store: wrapped, calls, busyMs: () => busy };
}

async function latenessRow(backend: Backend, dueIntervalMs?: number): Promise<Row> {
  const store = await openStore(backend.config);
  try {
    const mintStart = Date.now();
    const firstDue = mintStart + LEAD_MS;
    const tokens = Array.from({ length: SIGNALS }, (_, i) =>
      scheduledToken(
        { destination: timeouts, payload: { order: i } },
        { mintedBy: 'bench', now: mintStart },
        firstDue + Math.floor((i * SPREAD_MS) / SIGNALS),
      ),
    );
    for (let i = 0; i < tokens.length; i += 200) await store.mint(tokens.slice(i, i + 200));
    await backend.afterMint?.();
    const minted = Date.now();
    if (minted > firstDue - 300)
      console.warn(`${backend.name}: minting took ${minted - mintStart} ms, past the lead`);

    const lateness: number[] = [];
    const recorder: SignalSender = {
      medium: 'amqp',
      send: async (token) => {
        lateness.push(Date.now() - (token.dueAt as number));
      },
    };
    const counted = countingStore(store);
    const relay = new Relay({
      store: counted.store,
      dispatcher: new Dispatcher({ store: counted.store, senders: [recorder] }),
      ...(dueIntervalMs === undefined ? {} : { dueIntervalMs }),
    });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, firstDue - 300 - Date.now())));
    relay.start();
    const deadline = Date.now() + LEAD_MS + SPREAD_MS + 30_000;
    while (lateness.length < SIGNALS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await relay.stop();

    const sorted = [...lateness].sort((a, b) => a - b);
    if (dueIntervalMs === undefined)
      recordTarget({
        id: `scheduling.${backend.name.toLowerCase()}.p99`,
        title: `Scheduled signals on ${backend.name}, lateness p99 with the default due timer`,
        figure: `p50 ${fmt(percentile(sorted, 0.5))} ms, max ${fmt(sorted.at(-1) ?? 0)} ms, ${relay.stats.due} / ${SIGNALS} fired`,
        value: percentile(sorted, 0.99),
        unit: 'ms',
        op: '<=',
        target: 1000,
      });
    const fired = relay.stats.due;
    const claims = counted.calls.get('claimDue') ?? 0;
    const total = [...counted.calls.values()].reduce((sum, n) => sum + n, 0);
    return {
      store: backend.name,
      'due timer ms': dueIntervalMs ?? '250 (default)',
      fired: `${fired} / ${SIGNALS}`,
      'lateness p50 ms': fmt(percentile(sorted, 0.5)),
      'p99 ms': fmt(percentile(sorted, 0.99)),
      'max ms': fmt(sorted.at(-1) ?? 0),
      'claimDue (reads) / fired': fmt(claims / Math.max(1, fired), 4),
      'store calls / fired': fmt(total / Math.max(1, fired), 3),
      'store ms / fired': fmt(counted.busyMs() / Math.max(1, fired), 3),
      calls: [...counted.calls].map(([name, n]) => `${name} ${n}`).join(', '),
    };
  } finally {
    await store.close();
    await backend.cleanUp();
  }
}

type StepSignal = { type: 'OrderPlaced'; run: string; order: number; timeout: boolean };
type StepState = { placed: number };

/** One step of a new instance: its state, and (with `timeout`) a payment timeout an hour ahead. */
const orderProcess = defineProcess<StepState, StepSignal>({
  name: 'bench-order',
  correlate: (signal) => `${signal.run}-${signal.order}`,
  initial: () => ({ placed: 0 }),
  on: {
    OrderPlaced: (state, signal) => ({
      state: { placed: state.placed + 1 },
      ...(signal.timeout
        ? {
            schedule: [
              {
                name: 'payment',
                destination: timeouts,
                payload: { type: 'PaymentTimedOut', order: signal.order },
                afterMs: 3_600_000,
              },
            ],
          }
        : {}),
    }),
  },
});

/** The same write by hand: the instance record under the same key, and (with `timeout`) the same timeout. */
const plainHop: Handler<JsonValue, void> = async (ctx) => {
  const signal = ctx.payload as StepSignal;
  const key = instanceKey(orderProcess.name, `${signal.run}-${signal.order}`);
  const before = (await ctx.get<{ state: StepState }>(key))?.state ?? { placed: 0 };
  const timeoutIds: Record<string, string> = {};
  if (signal.timeout) {
    const when = { afterMs: 3_600_000 };
    timeoutIds.payment = ctx.schedule(timeouts, { type: 'PaymentTimedOut', order: signal.order }, when).id;
  }
  ctx.put(key, {
    state: { placed: before.placed + 1 },
    timeouts: timeoutIds,
    conversationId: ctx.conversationId,
    startedAt: Date.now(),
  });
};

async function mintSignals(store: TokenStore, count: number, timeout: boolean): Promise<TokenRecord[]> {
  const now = Date.now();
  const run = suffix();
  const tokens = Array.from({ length: count }, (_, i) =>
    pendingToken(
      { destination: orders, payload: { type: 'OrderPlaced', order: i, timeout, run } },
      { mintedBy: 'bench', now },
    ),
  );
  for (let i = 0; i < tokens.length; i += 200) await store.mint(tokens.slice(i, i + 200));
  return tokens;
}

async function stepRows(backend: Backend, total: number): Promise<Row[]> {
  const store = await openStore(backend.config);
  const step = processHandler(orderProcess);
  const rows: Row[] = [];
  try {
    for (const timeout of [false, true]) {
      for (const concurrency of [1, 16]) {
        // Interleaved twice, best kept, so warm-up and noise favour neither.
        const best = { plain: 0, process: 0 };
        for (let round = 0; round < 2; round++) {
          for (const [name, handler] of [
            ['plain', plainHop],
            ['process', step],
          ] as const) {
            const tokens = await mintSignals(store, total, timeout);
            // A fresh instance per signal: its id carries the run of the mint.
            const run = await measure(total, concurrency, async (i) => {
              const token = tokens[i] as TokenRecord;
              const outcome = await processSignal({
                store,
                endpoint: 'bench',
                tokenId: token.id,
                payload: token.payload as JsonValue,
                handler: handler as Handler<JsonValue, unknown>,
              });
              if (outcome.kind !== 'processed') throw new Error(`${name} hop not processed: ${outcome.kind}`);
            });
            best[name] = Math.max(best[name], run.perSecond);
          }
        }
        rows.push({
          store: backend.name,
          step: timeout ? 'state + schedule 1 timeout' : 'state only',
          concurrency,
          'plain hop/s': fmt(best.plain),
          'process step/s': fmt(best.process),
          'process / plain': ratio(best.process, best.plain),
        });
      }
    }
  } finally {
    await store.close();
    await backend.cleanUp();
  }
  return rows;
}

function sqliteBackend(): Backend {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-scheduling-'));
  return {
    name: 'SQLite',
    config: { kind: 'sqlite', filename: join(dir, `${suffix()}.db`) },
    async cleanUp() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function postgresBackend(): Promise<Backend | undefined> {
  const url = pgUrl();
  try {
    await withClient(url, (client) => client.query('SELECT 1'));
  } catch (error) {
    console.log(`PostgreSQL rows skipped: ${url} unreachable (${(error as Error).message})`);
    return undefined;
  }
  const schema = `bench_sched_${suffix()}`;
  return {
    name: 'PostgreSQL',
    config: { kind: 'postgres', url, schema, createTables: true, poolSize: 16 },
    // A tokens table in service has statistics (autovacuum analyzes it after so many new rows); this one is seconds
    // old. Without them the planner guessed a handful of due rows and read and sorted the whole backlog on every
    // claim, instead of reading the due index in order up to the batch.
    async afterMint() {
      await withClient(url, (client) => client.query(`ANALYZE "${schema}".tokens`));
    },
    async cleanUp() {
      await withClient(url, (client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    },
  };
}

export async function runSchedulingBench(options: { stepTotal?: number } = {}): Promise<void> {
  const stepTotal = options.stepTotal ?? 2_000;
  // The default due timer, then a shorter one: what the timer contributes to the lateness shows in the difference.
  const lateness: Row[] = [];
  for (const dueIntervalMs of [undefined, 50]) {
    lateness.push(await latenessRow(sqliteBackend(), dueIntervalMs));
    const pg = await postgresBackend();
    if (pg) lateness.push(await latenessRow(pg, dueIntervalMs));
  }
  printTable(
    `Scheduled signals: ${SIGNALS} due evenly over ${SPREAD_MS / 1000} s, one relay (batch 100, due timer ±20%) ` +
      'sending to a recording sender; lateness = send - due (target p99 < 1 s with the default timer)',
    lateness,
  );

  const steps = await stepRows(sqliteBackend(), stepTotal);
  const pgSteps = await postgresBackend();
  if (pgSteps) steps.push(...(await stepRows(pgSteps, stepTotal)));
  printTable('Process step (processHandler) against a plain exactly-once hop with the same write', steps);
}

if (import.meta.url === `file://${process.argv[1]}`) await runSchedulingBench();
