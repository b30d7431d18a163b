/** What the soak harness (soak/run.ts) and its worker processes (soak/worker.ts) agree on. */
import type { Logger } from '../src/core/observer.js';
import type { StoreConfig } from '../src/stores/open.js';

export type Role = 'ingress' | 'hop2' | 'hop3' | 'system-b';
export const ROLES: readonly Role[] = ['ingress', 'hop2', 'hop3', 'system-b'];

/** The payload of every signal of a soak conversation. */
export interface SoakPayload {
  /** The logical signal, e.g. "s42". */
  id: string;
  /** Poison: the first AMQP handler (hop2) always throws on it, so it must end dead-lettered. */
  poison?: boolean;
}

export interface WorkerSpec {
  role: Role;
  /** Slot name, e.g. "hop2-1": stable across restarts. */
  name: string;
  storeConfig: StoreConfig;
  /**
   * PostgreSQL: the schema of the application's own table (`soak_applied`, see ownTableSql), where every hop
   * counts its applications with `ctx.tx.query` in the token's transaction. Absent: the key-value state
   * (`ctx.put` of `applied/<role>/<id>`), as on the other stores.
   */
  ownSchema?: string;
  /** Through the AMQP fault proxy, with the soak's own vhost. */
  amqpUrl: string;
  /** HTTP roles: the fixed port the slot listens on (kept across restarts). */
  port?: number;
  queues: { hop2: string; hop3: string };
  /** URLs of system B's processes; hop3 picks one per signal. */
  systemBUrls: string[];
  /**
   * Negative control (`--bug fresh-token`): system B ignores the incoming token and consumes a fresh one it
   * mints itself, as a receiver that skips the protocol would. The soak must then fail.
   */
  bug?: 'fresh-token';
}

/**
 * What the harness prints as `SOAK RESULT {json}` (and, shortened, as text); the test suite reads it back.
 * A run that fails before its checks prints only seed, store, ok (false), violations and logs.
 */
export interface SoakReport {
  seed: string;
  store: string | undefined;
  /** The commit the workers ran (`+changes` when the tree differed). */
  commit: string;
  ok: boolean;
  violations: string[];
  logicalSignals: number;
  poison: number;
  copies: Record<string, number>;
  faults: Record<string, number>;
  faultsTotal: number;
  appliedPerHop: Record<Role, number>;
  expectedPerHop: Record<Role, number>;
  lost: number;
  doubleApplications: number;
  tokensLeftInFlight: number;
  deadLettered: { signals: number; messages: number; hop3Queue: number };
  store_: {
    tokenRows: number;
    expectedTokenRows: number;
    byStatus: Partial<Record<string, number>>;
    rowsPerSignal: number;
  };
  /** Worker processes: restarts, and those that died on their own (not killed by the harness). */
  workers: { slots: number; starts: number; exitedOnTheirOwn: string[]; startupFailures: number };
  timing: Record<string, number>;
}

/** Crash points each role passes through (TOLLGATE_CRASH_AT). */
export const CRASH_POINTS: Readonly<Record<Role, readonly string[]>> = {
  ingress: ['before-commit', 'after-commit', 'after-dispatch', 'before-respond'],
  hop2: ['before-commit', 'after-commit', 'after-dispatch', 'before-ack'],
  hop3: ['before-commit', 'after-commit', 'before-send', 'after-dispatch', 'before-ack'],
  'system-b': ['before-commit', 'after-commit', 'before-respond'],
};

/** Per-hop totals are spread over shards, so competing handlers rarely contend on one state item. */
export const TOTAL_SHARDS = 32;

export function appliedKey(role: Role, id: string): string {
  return `applied/${role}/${id}`;
}

/**
 * PostgreSQL: the application's own table, in a schema of its own next to the store's. One row per hop and
 * signal; a second application of a signal at a hop shows as `applications = 2`.
 */
export function ownTableSql(schema: string): { create: string[]; record: string; readAll: string } {
  const table = `"${schema}".soak_applied`;
  return {
    create: [
      `CREATE SCHEMA IF NOT EXISTS "${schema}"`,
      `CREATE TABLE IF NOT EXISTS ${table} (hop text NOT NULL, signal text NOT NULL, applications integer NOT NULL,
        PRIMARY KEY (hop, signal))`,
    ],
    // An upsert, not a read then a write: two applications count 2 whatever their interleaving.
    record: `INSERT INTO ${table} AS a (hop, signal, applications) VALUES ($1, $2, 1)
      ON CONFLICT (hop, signal) DO UPDATE SET applications = a.applications + 1`,
    readAll: `SELECT hop, signal, applications FROM ${table}`,
  };
}

export function shardOf(id: string): number {
  let hash = 2166136261;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 16777619) >>> 0;
  return hash % TOTAL_SHARDS;
}

export function totalKey(role: Role, shard: number): string {
  return `total/${role}/${shard}`;
}

/** sfc32 seeded from a string: every random choice of a run comes from such a stream, so a seed replays it. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: string) {
    let h = 1779033703 ^ seed.length;
    const next = () => {
      h = Math.imul(h ^ (h >>> 16), 2246822507);
      h = Math.imul(h ^ (h >>> 13), 3266489909);
      h ^= h >>> 16;
      return h >>> 0;
    };
    for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 3432918353);
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 15; i++) this.next();
  }

  /** [0, 1) */
  next(): number {
    this.a >>>= 0;
    this.b >>>= 0;
    this.c >>>= 0;
    this.d >>>= 0;
    let t = (this.a + this.b) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.d = (this.d + 1) | 0;
    t = (t + this.d) | 0;
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }

  /** Exponentially distributed, with this mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }
}

/** Warnings and errors as one line each on stderr (the harness writes them to a per-worker log file). */
export function lineLogger(bindings: Record<string, unknown> = {}): Logger {
  const write = (level: string) => (obj: object, msg?: string) => {
    const err = (obj as { err?: unknown }).err;
    const detail = err instanceof Error ? ` ${err.name}: ${err.message}` : '';
    process.stderr.write(
      `${new Date().toISOString()} [${level}] ${msg ?? ''} ${JSON.stringify({ ...bindings, ...obj, err: undefined })}${detail}\n`,
    );
  };
  return {
    debug: () => undefined,
    info: () => undefined,
    warn: write('warn'),
    error: write('error'),
    child: (more) => lineLogger({ ...bindings, ...more }),
  };
}
