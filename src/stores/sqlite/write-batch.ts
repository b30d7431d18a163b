import type Database from 'better-sqlite3';
import { PerTurn } from '../per-turn.js';

/**
 * A unit of work: a better-sqlite3 transaction function (so that inside a batch it runs as a savepoint, and
 * alone as a transaction of its own) with its arguments.
 */
interface Job {
  tx: Database.Transaction<(...args: never[]) => unknown>;
  args: unknown[];
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** The bodies of transaction functions made by `batchable`, which a batch may run without their savepoint. */
const bodies = new WeakMap<object, (...args: never[]) => unknown>();

/**
 * `db.transaction(body)`, with its body known to WriteBatch: a batch first runs such bodies bare, one after the
 * other in its transaction, and pays for savepoints only when one of them throws.
 */
export function batchable<F extends (...args: never[]) => unknown>(
  db: Database.Database,
  body: F,
): Database.Transaction<F> {
  const tx = db.transaction(body);
  bodies.set(tx, body);
  return tx;
}

/** Thrown out of a bare run to roll it back when one of its writes failed: the batch then runs with savepoints. */
class WriteFailed {}

/**
 * Group commit: the writes asked for in one turn of the event loop (the requests or deliveries that arrived
 * together) run in one IMMEDIATE transaction. A write that throws fails alone: the batch then runs again with each
 * write in its own savepoint, which rolls back only that write; the others commit together. Nobody hears back before the COMMIT, so each caller gets
 * exactly what a transaction of its own would have given it, and the writes stay in their arrival order.
 *
 * Why: a commit pays a fixed cost (the lock, BEGIN/COMMIT, and the WAL frames of every page it dirties) that
 * writes landing on the same pages (the newest tokens, an index's tail) share when they commit together.
 */
export class WriteBatch {
  private readonly queued = new PerTurn<Job>((jobs) => this.run(jobs));
  private readonly runAll: Database.Transaction<(jobs: Job[]) => Outcome[]>;
  private readonly runBare: Database.Transaction<(jobs: Job[]) => unknown[]>;

  constructor(
    db: Database.Database,
    private readonly maxJobs = 64,
  ) {
    this.runAll = db.transaction((jobs: Job[]) =>
      jobs.map((job): Outcome => {
        try {
          return { ok: true, value: call(job) };
        } catch (error) {
          // Some errors (disk full, I/O) make SQLite roll back the whole transaction, not just the savepoint:
          // then every job of the batch failed, and none may run on outside the transaction.
          if (!db.inTransaction) throw error;
          return { ok: false, error };
        }
      }),
    );
    // SAVEPOINT and RELEASE around every write cost a hop a few µs of CPU, and a write in a batch rarely fails
    // (the duplicate check ran before it). So the batch runs without them first; if a write throws, the whole
    // transaction rolls back and the batch runs again with them, so that only that write fails.
    this.runBare = db.transaction((jobs: Job[]) =>
      jobs.map((job) => {
        let value: unknown;
        try {
          value = call(job, 'bare');
        } catch (error) {
          if (!db.inTransaction) throw error;
          throw new WriteFailed();
        }
        // A body that ended the transaction itself would leave the next writes outside of any.
        if (!db.inTransaction) throw new WriteFailed();
        return value;
      }),
    );
  }

  /**
   * Runs `tx(...args)` (a transaction function of the same database) in the next batch. Resolves with its
   * result once the batch is committed; rejects with what it threw, or with what made the whole batch fail
   * (the lock, or COMMIT).
   */
  submit<A extends unknown[], T>(tx: Database.Transaction<(...args: A) => T>, ...args: A): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queued.add({
        tx: tx as unknown as Job['tx'],
        args,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
    });
  }

  /** One transaction for `jobs`: bare, or with a savepoint per write once one of them failed. */
  private runBareFirst(jobs: Job[]): Outcome[] {
    try {
      return this.runBare.immediate(jobs).map((value) => ({ ok: true, value }));
    } catch (error) {
      if (!(error instanceof WriteFailed)) throw error;
      return this.runAll.immediate(jobs);
    }
  }

  /** Runs everything queued now (also used by close, so that no caller is left waiting). */
  flush(): void {
    this.queued.flush();
  }

  private run(queue: Job[]): void {
    if (queue.length === 1) {
      // Alone in its turn (a sequential caller): its own transaction, without a savepoint around it.
      const job = queue[0]!;
      try {
        job.resolve(call(job, 'immediate'));
      } catch (error) {
        job.reject(error);
      }
      return;
    }
    for (let start = 0; start < queue.length; start += this.maxJobs) {
      const jobs = queue.slice(start, start + this.maxJobs);
      let outcomes: Outcome[];
      try {
        outcomes = this.runBareFirst(jobs);
      } catch (error) {
        // BEGIN (busy past the timeout) or COMMIT failed: the transaction is rolled back, nothing was written.
        for (const job of jobs) job.reject(error);
        continue;
      }
      outcomes.forEach((outcome, i) => {
        const job = jobs[i]!;
        if (outcome.ok) job.resolve(outcome.value);
        else job.reject(outcome.error);
      });
    }
  }
}

function call(job: Job, mode?: 'immediate' | 'bare'): unknown {
  const tx =
    mode === 'immediate' ? job.tx.immediate : mode === 'bare' ? (bodies.get(job.tx) ?? job.tx) : job.tx;
  return (tx as (...args: unknown[]) => unknown)(...job.args);
}
