/** Small shared helpers for the benchmarks: timing loops, percentiles, table printing. */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Database from 'better-sqlite3';
import { recordTable } from './results.js';

export interface Measurement {
  ops: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * Runs `op(i)` for i = 0..total-1 on `concurrency` async lanes and measures throughput and per-op latency.
 * The op index lets callers use pre-built inputs (pre-minted tokens), so setup is never timed.
 */
export async function measure(
  total: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<Measurement> {
  const latencies = new Float64Array(total);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < total; i = next++) {
        const t0 = performance.now();
        await op(i);
        latencies[i] = performance.now() - t0;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const sorted = Array.from(latencies).sort((a, b) => a - b);
  return {
    ops: total,
    seconds,
    perSecond: total / seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
  };
}

export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

export function printTable(title: string, rows: Array<Record<string, string | number>>): void {
  console.log(`\n${title}`);
  console.table(rows);
  recordTable(title, rows);
}

export const fmt = (n: number, digits = 0) => n.toFixed(digits);
export const ratio = (a: number, b: number) => (b === 0 ? 'n/a' : (a / b).toFixed(2));

/**
 * Clears what a round's setup left behind before its clock starts, so that the round pays only for its own work:
 * the WAL pages the setup wrote to a SQLite file (checkpointed through `sqlite`, an open connection or the file's
 * name), which the store's checkpoint worker would otherwise copy during the round on the same two cores, and the
 * setup's garbage (its pre-minted token records), which V8 would otherwise collect then.
 */
export function settle(sqlite?: Database.Database | string): void {
  if (typeof sqlite === 'string') {
    const db = new Database(sqlite, { fileMustExist: true });
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } finally {
      db.close();
    }
  } else sqlite?.pragma('wal_checkpoint(PASSIVE)');
  collectGarbage();
}

let gc: (() => void) | undefined;

/** A full collection, through V8's `gc` exposed for this process on first use (the benches run without --expose-gc). */
function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}
