import type Database from 'better-sqlite3';

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

/**
 * Group commit: the writes asked for in one turn of the event loop (the requests or deliveries that arrived
 * together) run in one IMMEDIATE transaction, each in its own savepoint. A write that throws rolls back only
 * its savepoint; the others commit together. Nobody hears back before the COMMIT, so each caller gets
 * exactly what a transaction of its own would have given it, and the writes stay in their arrival order.
 *
 * Why: a commit pays a fixed cost (the lock, BEGIN/COMMIT, and the WAL frames of every page it dirties) that
 * writes landing on the same pages (the newest tokens, an index's tail) share when they commit together.
 */
export class WriteBatch {
  private queue: Job[] = [];
  private scheduled = false;
  private readonly runAll: Database.Transaction<(jobs: Job[]) => Outcome[]>;

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
  }

  /**
   * Runs `tx(...args)` (a transaction function of the same database) in the next batch. Resolves with its
   * result once the batch is committed; rejects with what it threw, or with what made the whole batch fail
   * (the lock, or COMMIT).
   */
  submit<A extends unknown[], T>(tx: Database.Transaction<(...args: A) => T>, ...args: A): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        tx: tx as unknown as Job['tx'],
        args,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
      if (!this.scheduled) {
        this.scheduled = true;
        // setImmediate, not a microtask: it runs after the poll phase, once every connection that had data
        // in this turn has reached its commit.
        setImmediate(() => this.flush());
      }
    });
  }

  /** Runs everything queued now (also used by close, so that no caller is left waiting). */
  flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      if (this.queue.length === 1) {
        // Alone in its turn (a sequential caller): its own transaction, without a savepoint around it.
        const job = this.queue.pop()!;
        try {
          job.resolve(call(job, 'immediate'));
        } catch (error) {
          job.reject(error);
        }
        return;
      }
      const jobs = this.queue.splice(0, this.maxJobs);
      let outcomes: Outcome[];
      try {
        outcomes = this.runAll.immediate(jobs);
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

function call(job: Job, mode?: 'immediate'): unknown {
  const tx = mode ? job.tx.immediate : job.tx;
  return (tx as (...args: unknown[]) => unknown)(...job.args);
}
