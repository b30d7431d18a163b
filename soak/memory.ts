/**
 * Memory over a long run: N signals through two exactly-once hops on one SQLite store, with the relay a
 * production process runs, sampling the token rows by status (tombstones included), the state rows, the file
 * sizes and this process's RSS and heap over time. Writes the samples as CSV and JSON and the curve as SVG and
 * PNG (soak/memory-plot.ts). A script, not a test: a million signals take several minutes.
 *
 *   npm run soak:memory -- [--signals 1000000] [--retention-s 60] [--concurrency 32] [--sample-ms 2000]
 *     [--out docs/soak-memory] [--no-png]
 *
 * One signal: an edge mints its token (in batches of 500, as an edge client would ahead of the sends); hop 1
 * consumes it, writes one state item (the key space is bounded: 10 000 orders) and emits one signal to hop 2; an
 * in-process sender takes it as a broker would and the dispatcher marks it dispatched; hop 2 consumes it and writes
 * one state item. So each signal leaves two token rows, each a tombstone once consumed, kept for the retention,
 * then purged by the relay's housekeeping (every 30th pass, about a minute). The token rows must stay under the
 * in-flight tokens plus 2 × signals per second × (retention + a minute) tombstones, and RSS must level off.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { machine, sourceCommit } from '../bench/results.js';
import { Dispatcher, type SignalSender } from '../src/core/dispatcher.js';
import { pendingToken } from '../src/core/mint.js';
import { processSignal } from '../src/core/processor.js';
import { Relay } from '../src/core/relay.js';
import type { Destination, TokenRecord } from '../src/core/token.js';
import { SqliteTokenStore } from '../src/stores/sqlite/sqlite-store.js';
import { renderPlot } from './memory-plot.js';

const { values: args } = parseArgs({
  options: {
    signals: { type: 'string', default: '1000000' },
    'retention-s': { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '32' },
    'sample-ms': { type: 'string', default: '2000' },
    out: { type: 'string', default: 'docs/soak-memory' },
    'no-png': { type: 'boolean', default: false },
  },
});

const SIGNALS = Number(args.signals);
const RETENTION_MS = Number(args['retention-s']) * 1000;
const CONCURRENCY = Number(args.concurrency);
const SAMPLE_MS = Number(args['sample-ms']);
const MINT_BATCH = 500;
const ORDERS = 10_000;
/** The relay's housekeeping period with its defaults: every 30th pass, passes 2 s apart. */
const HOUSEKEEPING_S = 60;
const STATUSES = ['scheduled', 'issued', 'pending', 'dispatched', 'consumed', 'expired', 'revoked'] as const;

export interface Sample {
  /** Seconds since the first signal. */
  t: number;
  /** Signals through both hops so far. */
  signals: number;
  /** Token rows by status. */
  rows: Record<(typeof STATUSES)[number], number>;
  totalRows: number;
  stateRows: number;
  rssMb: number;
  heapUsedMb: number;
  dbMb: number;
  walMb: number;
  /** Tombstones purged by the relay so far. */
  purged: number;
}

export interface MemoryRun {
  command: string;
  commit: string;
  machine: ReturnType<typeof machine>;
  startedAt: string;
  options: { signals: number; retentionS: number; concurrency: number; sampleMs: number };
  summary: {
    seconds: number;
    signalsPerSecond: number;
    /**
     * The most token rows the retention allows at the run's rate: in flight + 2 × rate × (retention + the relay's
     * housekeeping period, 30 passes of 2 s), since a tombstone waits for the next housekeeping once its retention
     * has passed.
     */
    expectedSteadyRows: number;
    peakRows: number;
    /** Mean of the samples in the last third of the run (the plateau). */
    plateauRows: number;
    peakRssMb: number;
    plateauRssMb: number;
    finalRows: Record<string, number>;
  };
  samples: Sample[];
}

const hop2: Destination = { medium: 'amqp', exchange: 'soak', routingKey: 'hop2' };
const edge: Destination = { medium: 'amqp', exchange: 'soak', routingKey: 'hop1' };

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-soak-memory-'));
  const filename = join(dir, 'soak.db');
  const store = new SqliteTokenStore({ filename, tombstoneRetentionMs: RETENTION_MS });
  // A sender that takes the signal as a broker would (the hop behind it runs in this loop).
  const sender: SignalSender = { medium: 'amqp', send: async () => undefined };
  const dispatcher = new Dispatcher({ store, senders: [sender] });
  // The relay a production process runs, with its defaults: re-sends, and every 30th pass expires and purges.
  const relay = new Relay({ store, dispatcher });
  const reader = new Database(filename, { readonly: true });
  const countByStatus = reader.prepare('SELECT status, COUNT(*) AS n FROM tokens GROUP BY status');
  const countState = reader.prepare('SELECT COUNT(*) AS n FROM state');

  const samples: Sample[] = [];
  let done = 0;
  const started = performance.now();
  const fileMb = (path: string) => {
    try {
      return statSync(path).size / 2 ** 20;
    } catch {
      return 0;
    }
  };
  const sample = () => {
    const rows = Object.fromEntries(STATUSES.map((status) => [status, 0])) as Sample['rows'];
    for (const { status, n } of countByStatus.all() as Array<{ status: string; n: number }>)
      rows[status as keyof Sample['rows']] = n;
    const memory = process.memoryUsage();
    const s: Sample = {
      t: (performance.now() - started) / 1000,
      signals: done,
      rows,
      totalRows: Object.values(rows).reduce((sum, n) => sum + n, 0),
      stateRows: (countState.get() as { n: number }).n,
      rssMb: memory.rss / 2 ** 20,
      heapUsedMb: memory.heapUsed / 2 ** 20,
      dbMb: fileMb(filename),
      walMb: fileMb(`${filename}-wal`),
      purged: relay.stats.purged,
    };
    samples.push(s);
    return s;
  };
  const progress = (s: Sample) =>
    console.log(
      `${s.t.toFixed(0).padStart(5)} s  ${String(s.signals).padStart(8)} signals  rows ${s.totalRows} ` +
        `(consumed ${s.rows.consumed}, in flight ${s.rows.pending + s.rows.dispatched})  purged ${s.purged}  ` +
        `RSS ${s.rssMb.toFixed(0)} MB  heap ${s.heapUsedMb.toFixed(0)} MB  db ${s.dbMb.toFixed(0)} + wal ${s.walMb.toFixed(0)} MB`,
    );

  // Edge minting ahead of the hops, one batch at a time, in order.
  const batches = new Map<number, Promise<TokenRecord[]>>();
  const batchOf = (b: number): Promise<TokenRecord[]> => {
    let batch = batches.get(b);
    if (!batch) {
      const now = Date.now();
      const tokens = Array.from({ length: Math.min(MINT_BATCH, SIGNALS - b * MINT_BATCH) }, (_, k) =>
        pendingToken(
          { destination: edge, payload: { order: (b * MINT_BATCH + k) % ORDERS } },
          { mintedBy: 'edge', now },
        ),
      );
      batch = store.mint(tokens).then(() => tokens);
      batches.set(b, batch);
    }
    return batch;
  };

  const oneSignal = async (i: number) => {
    const b = Math.floor(i / MINT_BATCH);
    const root = (await batchOf(b))[i % MINT_BATCH] as TokenRecord;
    // Mint the next batch while this one is worked through; forget the batches behind.
    if (i % MINT_BATCH === 0) {
      if ((b + 1) * MINT_BATCH < SIGNALS) void batchOf(b + 1);
      batches.delete(b - 1);
    }
    const first = await processSignal<{ order: number }, void>({
      store,
      endpoint: 'hop1',
      tokenId: root.id,
      payload: root.payload as { order: number },
      handler: (ctx) => {
        ctx.put(`order/${ctx.payload.order}`, { placed: true, by: 'hop1' });
        ctx.emit(hop2, { order: ctx.payload.order });
      },
    });
    if (first.kind !== 'processed') throw new Error(`hop 1 of signal ${i}: ${first.kind}`);
    const report = await dispatcher.dispatch(first.emitted, 'hop');
    if (report.failed.length > 0) throw new Error(`dispatch of signal ${i} failed`);
    const child = first.emitted[0] as TokenRecord;
    const second = await processSignal<{ order: number }, void>({
      store,
      endpoint: 'hop2',
      tokenId: child.id,
      payload: child.payload as { order: number },
      handler: (ctx) => {
        ctx.put(`payment/${ctx.payload.order}`, { requested: true });
      },
    });
    if (second.kind !== 'processed') throw new Error(`hop 2 of signal ${i}: ${second.kind}`);
    done += 1;
  };

  relay.start();
  let lastPrint = 0;
  const timer = setInterval(() => {
    const s = sample();
    if (s.t - lastPrint >= 30) {
      lastPrint = s.t;
      progress(s);
    }
  }, SAMPLE_MS);
  sample();
  try {
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let i = next++; i < SIGNALS; i = next++) await oneSignal(i);
      }),
    );
  } finally {
    clearInterval(timer);
    await relay.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  const last = sample();
  progress(last);
  reader.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });

  const rate = SIGNALS / seconds;
  const tail = samples.filter((s) => s.t >= seconds * (2 / 3));
  const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / Math.max(1, values.length);
  const run: MemoryRun = {
    command: `npm run soak:memory -- ${process.argv.slice(2).join(' ')}`.trim(),
    commit: sourceCommit(),
    machine: machine(),
    startedAt: new Date(Date.now() - seconds * 1000).toISOString(),
    options: {
      signals: SIGNALS,
      retentionS: RETENTION_MS / 1000,
      concurrency: CONCURRENCY,
      sampleMs: SAMPLE_MS,
    },
    summary: {
      seconds,
      signalsPerSecond: rate,
      expectedSteadyRows: Math.round(CONCURRENCY * 2 + rate * 2 * (RETENTION_MS / 1000 + HOUSEKEEPING_S)),
      peakRows: Math.max(...samples.map((s) => s.totalRows)),
      plateauRows: Math.round(mean(tail.map((s) => s.totalRows))),
      peakRssMb: Math.max(...samples.map((s) => s.rssMb)),
      plateauRssMb: mean(tail.map((s) => s.rssMb)),
      finalRows: last.rows,
    },
    samples,
  };
  const out = resolve(args.out);
  writeFileSync(`${out}.json`, `${JSON.stringify(run, null, 1)}\n`);
  writeFileSync(`${out}.csv`, toCsv(samples));
  const svg = renderPlot(run);
  writeFileSync(`${out}.svg`, svg);
  console.log(
    `\n${SIGNALS} signals in ${seconds.toFixed(0)} s (${rate.toFixed(0)}/s); token rows peak ${run.summary.peakRows}, ` +
      `plateau ${run.summary.plateauRows} (bound: in flight + 2 × rate × (retention + 60 s) ≈ ${run.summary.expectedSteadyRows}); ` +
      `RSS peak ${run.summary.peakRssMb.toFixed(0)} MB, plateau ${run.summary.plateauRssMb.toFixed(0)} MB`,
  );
  console.log(`wrote ${out}.json, ${out}.csv, ${out}.svg`);
  if (!args['no-png']) {
    const { screenshotSvg } = await import('./memory-plot.js');
    await screenshotSvg(`${out}.svg`, `${out}.png`);
    console.log(`wrote ${out}.png`);
  }
}

function toCsv(samples: readonly Sample[]): string {
  const header = [
    't_s',
    'signals',
    ...STATUSES.map((s) => `rows_${s}`),
    'rows_total',
    'state_rows',
    'rss_mb',
    'heap_used_mb',
    'db_mb',
    'wal_mb',
    'purged',
  ];
  const lines = samples.map((s) =>
    [
      s.t.toFixed(1),
      s.signals,
      ...STATUSES.map((status) => s.rows[status]),
      s.totalRows,
      s.stateRows,
      s.rssMb.toFixed(1),
      s.heapUsedMb.toFixed(1),
      s.dbMb.toFixed(1),
      s.walMb.toFixed(1),
      s.purged,
    ].join(','),
  );
  return `${[header.join(','), ...lines].join('\n')}\n`;
}

await main();
