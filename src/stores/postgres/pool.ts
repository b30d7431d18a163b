import { Pool, type PoolClient } from 'pg';
import { ClosedError, TollgateError } from '../../core/errors.js';
import { cutWhenUnanswered, rollback } from './connection.js';
import { type ErrorContext, storeError } from './failures.js';

/** Idle time before TCP keepalive probes start (the OS default is 2 h). */
const KEEPALIVE_DELAY_MS = 10_000;
/** How long close() lets running hops finish before it cuts their connections. */
const CLOSE_GRACE_MS = 2000;

export interface PoolSettings {
  url: string;
  poolSize: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  idleInTransactionTimeoutMs: number;
}

/**
 * The store's connections: checks them out and back, tells a broken one from a healthy one (a broken or
 * mid-transaction client is never handed out again), maps errors to the store's vocabulary, and closes.
 */
export class StoreConnections {
  private readonly pool: Pool;
  /** Clients whose connection reported an error: their errors are connection losses, and they are destroyed. */
  private readonly broken = new WeakSet<PoolClient>();
  /** Clients checked out of the pool, for close() to cut if a hop outlives it. */
  private readonly inUse = new Set<PoolClient>();
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(settings: PoolSettings) {
    this.pool = new Pool({
      connectionString: settings.url,
      max: settings.poolSize,
      connectionTimeoutMillis: settings.connectTimeoutMs,
      application_name: 'tollgate',
      // Statements sent without waiting for the one before go out at once (a hop's BEGIN and consume).
      pipeline: true,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
      idle_in_transaction_session_timeout: settings.idleInTransactionTimeoutMs,
    });
    this.pool.on('connect', (client) => {
      // Also keeps a connection error on a checked-out client (whose pool listener is detached) from being an
      // unhandled 'error' event.
      client.on('error', () => this.broken.add(client));
      cutWhenUnanswered(client, settings.statementTimeoutMs);
    });
    // An idle client's connection broke: the pool has already dropped it; the next checkout makes a new one.
    this.pool.on('error', () => {});
  }

  ensureOpen(): void {
    if (this.closed) throw new ClosedError('PostgreSQL token store');
  }

  isBroken(client: PoolClient): boolean {
    return this.broken.has(client);
  }

  /** Marks a client never to be handed out again (its connection is in a state nobody should inherit). */
  markBroken(client: PoolClient): void {
    this.broken.add(client);
  }

  async acquire(operation: string): Promise<PoolClient> {
    this.ensureOpen();
    try {
      const client = await this.pool.connect();
      this.inUse.add(client);
      return client;
    } catch (error) {
      throw storeError(error, `${operation} (connect)`, { connecting: true });
    }
  }

  /**
   * After an error inside a transaction: rolls back if the connection still works. Returns whether the client
   * must be destroyed instead of going back to the pool.
   */
  async abandon(client: PoolClient): Promise<boolean> {
    if (this.broken.has(client)) return true;
    if (client.getTransactionStatus() === 'I') return false;
    return !(await rollback(client));
  }

  release(client: PoolClient, destroy: boolean): void {
    // A client still inside a transaction (or one whose connection broke) is never handed out again.
    this.inUse.delete(client);
    const broken = destroy || this.broken.has(client) || client.getTransactionStatus() !== 'I';
    client.release(broken || undefined);
  }

  context(client: PoolClient): ErrorContext {
    return { connectionLost: this.broken.has(client) };
  }

  /** A unit of work on one pooled connection, its errors mapped to the store's vocabulary. */
  async run<T>(operation: string, work: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.acquire(operation);
    let destroy = false;
    try {
      return await work(client);
    } catch (error) {
      if (error instanceof TollgateError) throw error;
      destroy = this.broken.has(client);
      throw storeError(error, operation, this.context(client));
    } finally {
      this.release(client, destroy);
    }
  }

  /**
   * Closes the pool. Work already running gets its answer; a hop still running after CLOSE_GRACE_MS (one its
   * transport gave up on) has its connection cut, which rolls its transaction back: nothing of it is written.
   */
  async close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    const ended = this.pool.end();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const client of this.inUse) {
          this.broken.add(client);
          client.end().catch(() => {});
        }
        resolve();
      }, CLOSE_GRACE_MS);
    });
    this.closing = Promise.race([ended, grace]).finally(() => clearTimeout(timer));
    return this.closing;
  }
}
