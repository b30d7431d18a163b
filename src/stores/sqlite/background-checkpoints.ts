import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** Writes before the worker starts: a store that writes little never needs it (and tests open hundreds). */
const START_AFTER_WRITES = 1_000;
/** How often the worker copies the WAL into the database file. */
const INTERVAL_MS = 200;
/** How long close waits for the worker to close its connection before stopping it outright. */
const CLOSE_GRACE_MS = 2_000;

/**
 * The worker's code, run with `eval` so that it loads the same way from `src` under tsx or vitest and from `dist`:
 * a separate .ts entry would need a loader in the worker. It opens its own connection to the file and checkpoints
 * PASSIVE: it copies what it can without waiting for, or blocking, the store's readers and writers.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.filename, { fileMustExist: true });
db.pragma('busy_timeout = 0');
db.pragma('synchronous = NORMAL');
const checkpoint = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} };
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', () => { clearInterval(timer); db.close(); parentPort.close(); });
`;

/**
 * WAL checkpoints on a worker thread. A checkpoint copies the pages written since the last one into the database
 * file and syncs both files. Run by SQLite's auto-checkpoint on the connection that committed, it stopped the
 * event loop for the sync: about 50 ms per 40 MB of WAL (the store's threshold) on this repository's benchmark
 * machine, against 3 ms for the copying alone, and no request or delivery moved meanwhile. The worker copies and
 * syncs beside the event loop. The store's own auto-checkpoint stays as the backstop: it copies what the worker
 * has not yet, so it finds little to copy or sync, and it lets the next write restart the WAL from its beginning
 * (only a writer can).
 */
export class BackgroundCheckpoints {
  private writes = 0;
  private worker: Worker | undefined;
  private exited: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly filename: string) {}

  /** Counts a write transaction; the worker starts with the START_AFTER_WRITES-th. */
  wrote(): void {
    if (this.worker || this.stopped || ++this.writes < START_AFTER_WRITES) return;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        filename: this.filename,
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        intervalMs: INTERVAL_MS,
      },
    });
    // A worker that fails (the file gone, no threads) leaves the checkpoints to the store's connection, as before.
    worker.on('error', () => {});
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.unref();
    this.worker = worker;
  }

  /** Whether the worker has been started (for tests). */
  get running(): boolean {
    return this.worker !== undefined && !this.stopped;
  }

  /** Lets the worker close its connection, then stops it. */
  async stop(): Promise<void> {
    this.stopped = true;
    const worker = this.worker;
    if (!worker) return;
    worker.postMessage('close');
    const timer = setTimeout(() => void worker.terminate(), CLOSE_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }
}
