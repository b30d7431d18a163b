import { type CustomTypesConfig, Pool, type PoolClient, types } from 'pg';
import {
  ClosedError,
  ConfigError,
  InvalidArgumentError,
  InvalidTransitionError,
  StoreFailureError,
  StoreSchemaMissingError,
  TokenExistsError,
  TollgateError,
  UnknownTokenError,
} from '../../core/errors.js';
import type { JsonValue } from '../../core/fingerprint.js';
import type {
  ClaimOptions,
  CommitFailure,
  CommitRequest,
  CommitResult,
  ConsumeRequest,
  HopWrites,
  InFlightStats,
  InteractiveOwnData,
  IssueResult,
  ListOptions,
  OpenTransaction,
  Page,
  StateItem,
  StateWrite,
  TokenStore,
} from '../../core/store.js';
import {
  IN_FLIGHT_STATUSES,
  LIVE_STATUSES,
  type StoredResponse,
  type TokenRecord,
  type TokenStatus,
} from '../../core/token.js';
import { decodeCursor, encodeCursor, pageLimit } from '../paging.js';
import {
  commitFailure,
  conflictIn,
  type ErrorContext,
  HOW_TO_CREATE,
  isRetriable,
  storeError,
  verdictOf,
} from './failures.js';
import { DEFAULT_SCHEMA, migrationSql, qualifier, SCHEMA_VERSION } from './schema.js';

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database (node-postgres connection string). */
  url: string;
  /** PostgreSQL schema (namespace) holding Tollgate's tables. Default 'tollgate'. */
  schema?: string;
  /** Connections in the pool. Default 10. A hop holds one while its handler runs. */
  poolSize?: number;
  /** Create the schema if missing (development, tests). Default false: production applies deploy/postgres. */
  createTables?: boolean;
  /** How long consumed, expired and revoked tokens are kept before purge. Default 24 h. */
  tombstoneRetentionMs?: number;
  /** How long to wait for a connection (a new one, or a free one from a busy pool). Default 5 s. */
  connectTimeoutMs?: number;
  /**
   * How long one statement may go unanswered before its connection is taken for dead and cut (the hop is then
   * re-run on another; the server rolls the cut one back). A partition that drops packets without a reset gives
   * no other sign. Applies to the handlers' own statements too. Default 60 s.
   */
  statementTimeoutMs?: number;
  /**
   * The server ends a transaction left idle this long (PostgreSQL's idle_in_transaction_session_timeout), so a
   * hop whose process vanished mid-transaction does not keep its token's row locked. A handler must not spend
   * longer than this between its own statements. Default 60 s.
   */
  idleInTransactionTimeoutMs?: number;
}

/**
 * `ctx.tx` of a handler on the PostgreSQL store: the hop's open transaction, on the connection that consumed the
 * incoming token. Whatever it changes commits with the consume, the state writes and the emitted tokens, or
 * rolls back with them.
 *
 * - Parameterised queries only: `query('UPDATE seats SET taken = taken + $1 WHERE flight = $2', [n, flight])`.
 *   Each call is one statement (the extended protocol); never build SQL text from values.
 * - Rows come back as node-postgres gives them by default (bigint as string, json parsed, ...).
 * - Transaction control is Tollgate's: BEGIN, COMMIT, ROLLBACK (other than ROLLBACK TO a savepoint), END,
 *   ABORT and PREPARE TRANSACTION are refused. SAVEPOINT, RELEASE and ROLLBACK TO are fine.
 * - The connection goes back to a pool afterwards: change session settings with SET LOCAL, not SET.
 * - Usable only while the handler runs; a query after it returned fails with ClosedError.
 */
export interface PgTx {
  query<R = Record<string, unknown>>(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: R[]; rowCount: number }>;
}

const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;
const DEFAULT_POOL_SIZE = 10;
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_STATEMENT_TIMEOUT_MS = 60_000;
const DEFAULT_IDLE_IN_TRANSACTION_MS = 60_000;
/** Idle time before TCP keepalive probes start (the OS default is 2 h). */
const KEEPALIVE_DELAY_MS = 10_000;
/** How long close() lets running hops finish before it cuts their connections. */
const CLOSE_GRACE_MS = 2000;
/** Rows one purge statement deletes: bounds the time its row locks are held and the WAL of one commit. */
const PURGE_BATCH = 1000;

const LIVE = `('${LIVE_STATUSES.join("','")}')`;
const IN_FLIGHT = `('${IN_FLIGHT_STATUSES.join("','")}')`;
const ENDED = "('consumed','expired','revoked')";

/**
 * How Tollgate's own statements parse columns: bigint (the instants, counts) as numbers, json as its text
 * (parsed here, so that a JSON `null` payload and an absent one stay apart). Set per statement rather than on the
 * pool, so the handler's queries on the same connection get node-postgres's defaults.
 */
const TYPES: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === types.builtins.INT8) return parseBigint;
    if (oid === types.builtins.JSON) return identity;
    return types.getTypeParser(oid, format ?? 'text');
  }) as CustomTypesConfig['getTypeParser'],
};

function parseBigint(text: string): number {
  return Number(text);
}
function identity(text: string): string {
  return text;
}

interface Statement {
  readonly name: string;
  readonly text: string;
}

interface Rows {
  rows: unknown[][];
  rowCount: number;
}

/**
 * The store for PostgreSQL (node-postgres). One transaction per hop: the conditional consume first (a
 * concurrent copy waits on the token's row lock, then finds it consumed), then the handler's state writes with
 * optimistic versions, then the emitted tokens. Handlers can run their own SQL inside that transaction
 * (`ownData`, `ctx.tx`). Statements are named (prepared once per connection) and schema-qualified: the
 * connection's search_path is left alone for the handlers' own SQL.
 */
export class PostgresTokenStore implements TokenStore<PgTx> {
  readonly kind = 'postgres';
  readonly ownData: InteractiveOwnData<PgTx>;
  readonly schema: string;
  private readonly pool: Pool;
  private readonly retentionMs: number;
  private readonly sql: ReturnType<typeof statements>;
  /** Clients whose connection reported an error: their errors are connection losses, and they are destroyed. */
  private readonly broken = new WeakSet<PoolClient>();
  /** Clients checked out of the pool, for close() to cut if a hop outlives it. */
  private readonly inUse = new Set<PoolClient>();
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(options: PostgresStoreOptions) {
    const url = checkUrl(options.url);
    this.schema = options.schema ?? DEFAULT_SCHEMA;
    const schema = qualifier(this.schema);
    const retention = options.tombstoneRetentionMs ?? DEFAULT_RETENTION_MS;
    if (!Number.isSafeInteger(retention) || retention < 0) {
      throw new ConfigError('tombstoneRetentionMs', 'must be a non-negative integer');
    }
    const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
    if (!Number.isSafeInteger(poolSize) || poolSize < 1) {
      throw new ConfigError('poolSize', 'must be a positive integer');
    }
    const connectTimeout = positive('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS);
    const statementTimeout = positive(
      'statementTimeoutMs',
      options.statementTimeoutMs,
      DEFAULT_STATEMENT_TIMEOUT_MS,
    );
    const idleInTransaction = positive(
      'idleInTransactionTimeoutMs',
      options.idleInTransactionTimeoutMs,
      DEFAULT_IDLE_IN_TRANSACTION_MS,
    );
    this.retentionMs = retention;
    this.sql = statements(schema);
    this.pool = new Pool({
      connectionString: url,
      max: poolSize,
      connectionTimeoutMillis: connectTimeout,
      application_name: 'tollgate',
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_DELAY_MS,
      idle_in_transaction_session_timeout: idleInTransaction,
    });
    this.pool.on('connect', (client) => {
      // Also keeps a connection error on a checked-out client (whose pool listener is detached) from being an
      // unhandled 'error' event.
      client.on('error', () => this.broken.add(client));
      cutWhenUnanswered(client, statementTimeout);
    });
    // An idle client's connection broke: the pool has already dropped it; the next checkout makes a new one.
    this.pool.on('error', () => {});
    this.ownData = {
      mode: 'interactive',
      transact: (consume, now, body) => this.transact(consume, now, body),
    };
  }

  /**
   * Connects and checks the schema: creates it if missing with `createTables`, and otherwise fails with
   * StoreSchemaMissingError (which says how to create it). An unreachable server fails with
   * StoreUnavailableError after `connectTimeoutMs`.
   */
  static async open(options: PostgresStoreOptions): Promise<PostgresTokenStore> {
    const store = new PostgresTokenStore(options);
    try {
      const version = await store.schemaVersion();
      if (version === undefined || version < SCHEMA_VERSION) {
        if (!options.createTables) {
          throw new StoreSchemaMissingError(
            version === undefined
              ? `PostgreSQL schema "${store.schema}" has no Tollgate tables: ${HOW_TO_CREATE}`
              : `PostgreSQL schema "${store.schema}" is at version ${version}, this Tollgate needs ${SCHEMA_VERSION}: ${HOW_TO_CREATE}`,
            { schema: store.schema, version: version ?? null, required: SCHEMA_VERSION },
          );
        }
        await store.ensureSchema();
      }
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /**
   * Creates or upgrades Tollgate's tables in the store's schema with the migrations shipped in deploy/postgres
   * (the same text). Safe to call from several processes at once and to call again.
   */
  async ensureSchema(): Promise<void> {
    await this.run('ensureSchema', async (client) => {
      for (let version = 1; version <= SCHEMA_VERSION; version++) {
        try {
          await client.query(migrationSql(version, this.schema));
        } catch (error) {
          // The migration's explicit transaction is left aborted: never hand this connection out again.
          this.broken.add(client);
          throw error;
        }
      }
    });
    const version = await this.schemaVersion();
    if (version !== SCHEMA_VERSION) {
      throw new StoreFailureError(
        `PostgreSQL schema "${this.schema}" did not reach version ${SCHEMA_VERSION}`,
        {
          schema: this.schema,
          version: version ?? null,
        },
      );
    }
  }

  async getToken(id: string): Promise<TokenRecord | undefined> {
    if (!isStorableText(id)) {
      this.ensureOpen();
      return undefined;
    }
    const { rows } = await this.run('getToken', (client) => exec(client, this.sql.getToken, [id]));
    const row = rows[0];
    return row ? fromTuple(row as TokenTuple) : undefined;
  }

  async readState(key: string): Promise<StateItem | undefined> {
    return this.run('readState', (client) => readStateOn(client, this.sql, key));
  }

  async mint(tokens: TokenRecord[]): Promise<void> {
    this.ensureOpen();
    if (tokens.length === 0) return;
    const duplicate = firstDuplicate(tokens.map((t) => t.id));
    if (duplicate !== undefined) throw new TokenExistsError(duplicate, 'id taken');
    // One INSERT is atomic on its own: all tokens or none, no transaction needed.
    await this.run('mint', async (client) => {
      try {
        await exec(client, this.sql.mint, tokenColumns(tokens));
      } catch (error) {
        if (verdictOf(error) !== 'duplicate') throw error;
        const ids = tokens.map((t) => t.id);
        const { rows } = await exec(client, this.sql.existingIds, [ids]);
        const taken = new Set(rows.map((row) => row[0] as string));
        throw new TokenExistsError(ids.find((id) => taken.has(id)) ?? (ids[0] as string), 'id taken');
      }
    });
  }

  async issue(token: TokenRecord): Promise<IssueResult> {
    return this.run('issue', async (client) => {
      // Insert unless taken, else read; a token purged between the two is inserted on the next round.
      for (let round = 0; round < 3; round++) {
        const inserted = await exec(client, this.sql.mintUnlessTaken, tokenColumns([token]));
        if (inserted.rowCount === 1) return { created: true, token };
        const { rows } = await exec(client, this.sql.getToken, [token.id]);
        if (rows[0]) return { created: false, existing: fromTuple(rows[0] as TokenTuple) };
      }
      throw new TokenExistsError(token.id, 'id kept being taken and purged');
    });
  }

  async commit(request: CommitRequest): Promise<CommitResult> {
    assertDistinctKeys(request.writes);
    const { consume, writes, mints, now } = request;
    let client: PoolClient;
    try {
      client = await this.acquire('commit');
    } catch (error) {
      return { ok: false, failure: commitFailure(error, { connecting: true }) };
    }
    let destroy = false;
    try {
      if (writes.length === 0 && mints.length === 0) {
        // The consume alone is one atomic statement: no transaction around it.
        const consumed = await exec(client, this.sql.consume, this.consumeValues(consume, now, true));
        if (consumed.rowCount === 1) return { ok: true };
        return { ok: false, failure: await classifyUnconsumable(client, this.sql, consume, now) };
      }
      await client.query('BEGIN');
      const failure =
        (await this.consume(client, consume, now, true)) ?? (await this.stage(client, writes, mints));
      if (failure) {
        await client.query('ROLLBACK');
        return { ok: false, failure };
      }
      return await commitOrFailure(client);
    } catch (error) {
      const failure = commitFailure(error, this.context(client));
      destroy = await this.abandon(client);
      return { ok: false, failure };
    } finally {
      this.release(client, destroy);
    }
  }

  async markDispatched(ids: string[], now: number): Promise<number> {
    if (ids.length === 0) {
      this.ensureOpen();
      return 0;
    }
    const { rowCount } = await this.run('markDispatched', (client) =>
      exec(client, this.sql.markDispatched, [ids, now]),
    );
    return rowCount;
  }

  async revoke(id: string, now: number): Promise<TokenRecord> {
    if (!isStorableText(id)) {
      this.ensureOpen();
      throw new UnknownTokenError(id);
    }
    return this.run('revoke', async (client) => {
      for (let round = 0; round < 3; round++) {
        const { rows } = await exec(client, this.sql.revoke, [id, now + this.retentionMs]);
        if (rows[0]) return fromTuple(rows[0] as TokenTuple);
        const check = await exec(client, this.sql.checkToken, [id]);
        const status = check.rows[0]?.[0] as TokenStatus | undefined;
        if (status === undefined) throw new UnknownTokenError(id);
        if (!LIVE_STATUSES.includes(status)) throw new InvalidTransitionError(id, status, 'revoked');
        // Minted between the two statements: try again.
      }
      throw new StoreFailureError(`token ${id} could not be revoked`, { tokenId: id });
    });
  }

  async expireIssued(now: number, limit = 1000): Promise<number> {
    const { rowCount } = await this.run('expireIssued', (client) =>
      exec(client, this.sql.expire, [now + this.retentionMs, now, limit]),
    );
    return rowCount;
  }

  async claimPending(options: ClaimOptions): Promise<TokenRecord[]> {
    const { mintedBefore, now, leaseMs, limit, medium } = options;
    const { rows } = await this.run('claimPending', (client) =>
      exec(client, this.sql.claim, [mintedBefore, now, medium ?? null, limit, now + leaseMs]),
    );
    // RETURNING follows no order: oldest first, as the other stores answer.
    return rows.map((row) => fromTuple(row as TokenTuple)).sort(byMintedAtThenId);
  }

  async releaseLease(id: string): Promise<void> {
    if (!isStorableText(id)) return this.ensureOpen();
    await this.run('releaseLease', (client) => exec(client, this.sql.releaseLease, [id]));
  }

  async listByStatus(status: TokenStatus, options: ListOptions = {}): Promise<Page<TokenRecord>> {
    return this.page(this.sql.byStatus, status, options);
  }

  async listConversation(conversationId: string, options: ListOptions = {}): Promise<Page<TokenRecord>> {
    return this.page(this.sql.byConversation, conversationId, options);
  }

  async inFlightStats(): Promise<InFlightStats> {
    const { rows } = await this.run('inFlightStats', (client) => exec(client, this.sql.inFlight, []));
    const [count, oldest] = (rows[0] ?? [0, null]) as [number, number | null];
    return oldest === null ? { count } : { count, oldestMintedAt: oldest };
  }

  async purge(now: number, limit = 10_000): Promise<number> {
    // Only a token minted at least one retention ago can be due (it ended after it was minted): bounding
    // minted_at lets the status index skip the tombstones still kept, whose number grows with traffic.
    // Deleted in batches, each its own short transaction.
    let purged = 0;
    while (purged < limit) {
      const batch = Math.min(PURGE_BATCH, limit - purged);
      const { rowCount } = await this.run('purge', (client) =>
        exec(client, this.sql.purge, [now - this.retentionMs, now, batch]),
      );
      purged += rowCount;
      if (rowCount < batch) break;
    }
    return purged;
  }

  async ping(): Promise<void> {
    await this.run('ping', (client) => client.query('SELECT 1'));
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

  /** The hop as one transaction, for `ownData.transact` (see InteractiveOwnData). */
  private async transact<T>(
    consume: ConsumeRequest,
    now: number,
    body: (open: OpenTransaction<PgTx>) => Promise<HopWrites<T>>,
  ): Promise<{ ok: true; value: T } | { ok: false; failure: CommitFailure }> {
    const client = await this.acquire('transact');
    const tx = new HopTransaction(client);
    let destroy = false;
    let token: TokenRecord;
    try {
      // 1. Consume first: from here on the token's row is locked until commit or rollback.
      try {
        await client.query('BEGIN');
        const consumed = await exec(client, this.sql.consumeReading, this.consumeValues(consume, now, false));
        const prior = consumed.rows[0] as TokenTuple | undefined;
        if (prior === undefined) {
          const failure = await classifyUnconsumable(client, this.sql, consume, now);
          await client.query('ROLLBACK');
          return { ok: false, failure };
        }
        token = fromTuple(prior);
      } catch (error) {
        const failure = commitFailure(error, this.context(client));
        destroy = await this.abandon(client);
        return { ok: false, failure };
      }

      // 2. The handler, inside the transaction.
      let hop: HopWrites<T>;
      try {
        hop = await body({
          token,
          handle: tx.handle,
          readState: (key) =>
            tx.run(
              () => readStateOn(client, this.sql, key),
              (error) => storeError(error, 'readState', this.context(client)),
            ),
        });
      } catch (error) {
        tx.close();
        const retry = this.retryCause(client, tx, error);
        destroy = await this.abandon(client);
        if (retry !== undefined) return { ok: false, failure: { kind: 'transient', cause: retry } };
        throw error;
      }
      tx.close();

      // 3. What the handler staged, then commit.
      try {
        assertDistinctKeys(hop.writes);
        const response = hop.response && { tokenId: consume.tokenId, value: hop.response };
        const failure = await this.stage(client, hop.writes, hop.mints, response);
        if (failure) {
          await client.query('ROLLBACK');
          return { ok: false, failure };
        }
        const committed = await commitOrFailure(client, tx.failure);
        return committed.ok ? { ok: true, value: hop.value } : committed;
      } catch (error) {
        // A statement refused because the handler left the transaction aborted: the handler's error says why.
        const cause =
          codeOf(error) === IN_FAILED_TRANSACTION && tx.failure !== undefined ? tx.failure : error;
        const failure = commitFailure(cause, this.context(client));
        destroy = await this.abandon(client);
        if (error instanceof TollgateError) throw error;
        return { ok: false, failure };
      }
    } finally {
      tx.close();
      this.release(client, destroy);
    }
  }

  /** The conditional consume; the reason it matched no row, if it did not. */
  private async consume(
    client: PoolClient,
    consume: ConsumeRequest,
    now: number,
    withResponse: boolean,
  ): Promise<CommitFailure | undefined> {
    const consumed = await exec(client, this.sql.consume, this.consumeValues(consume, now, withResponse));
    return consumed.rowCount === 1 ? undefined : classifyUnconsumable(client, this.sql, consume, now);
  }

  /**
   * What the handler staged, in one statement: the state writes (optimistic versions), the mints, and the
   * answer kept on the consumed token. Returns the first refusal, if any; the caller then rolls back, so it does
   * not matter that the statement's other parts ran.
   */
  private async stage(
    client: PoolClient,
    writes: readonly StateWrite[],
    mints: readonly TokenRecord[],
    response?: { tokenId: string; value: StoredResponse },
  ): Promise<CommitFailure | undefined> {
    if (writes.length === 0 && mints.length === 0 && response === undefined) return undefined;
    // In key order: two hops writing the same keys lock them in the same order.
    const ordered = writes.length > 1 ? [...writes].sort((a, b) => compareText(a.key, b.key)) : writes;
    const { rows } = await exec(client, this.sql.stage, [
      ordered.map((w) => w.key),
      ordered.map((w) => (w.value === undefined ? null : JSON.stringify(w.value))),
      ordered.map((w) => w.expectedVersion ?? null),
      ...tokenColumns(mints),
      response?.tokenId ?? null,
      response ? JSON.stringify(response.value) : null,
    ]);
    const [held, present, minted] = (rows[0] ?? [[], [], []]) as [string[], string[], string[]];
    for (const { key, value, expectedVersion } of ordered) {
      if (expectedVersion === undefined) continue;
      // A delete at version 0 holds if there is nothing to delete; every other conditional write if it wrote.
      const holds =
        value === undefined && expectedVersion === 0 ? !present.includes(key) : held.includes(key);
      if (!holds) return { kind: 'version-conflict', key };
    }
    if (minted.length === mints.length) return undefined;
    // The first token not inserted: its id was taken, or an earlier token of this commit has the same id.
    const inserted = new Set(minted);
    const seen = new Set<string>();
    for (const token of mints) {
      if (!inserted.has(token.id) || seen.has(token.id)) return { kind: 'mint-collision', tokenId: token.id };
      seen.add(token.id);
    }
    return { kind: 'mint-collision', tokenId: (mints[0] as TokenRecord).id };
  }

  private consumeValues(consume: ConsumeRequest, now: number, withResponse: boolean): unknown[] {
    return [
      consume.tokenId,
      now,
      consume.consumedBy,
      consume.commitId ?? null,
      withResponse && consume.response ? JSON.stringify(consume.response) : null,
      now + this.retentionMs,
      consume.fingerprint,
    ];
  }

  /** Whether a handler's error leaves the hop worth running again: the error that says so, if any. */
  private retryCause(client: PoolClient, tx: HopTransaction, error: unknown): unknown {
    if (this.broken.has(client)) return tx.failure ?? error;
    if (tx.failure !== undefined && isRetriable(verdictOf(tx.failure, this.context(client))))
      return tx.failure;
    return conflictIn(error);
  }

  private async page(
    statement: Statement,
    partition: string,
    options: ListOptions,
  ): Promise<Page<TokenRecord>> {
    const limit = pageLimit(options.limit);
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    const { rows } = await this.run('list', (client) =>
      exec(client, statement, [
        partition,
        options.mintedBefore ?? Number.MAX_SAFE_INTEGER,
        after?.mintedAt ?? -1,
        after?.id ?? '',
        limit + 1,
      ]),
    );
    const items = rows.slice(0, limit).map((row) => fromTuple(row as TokenTuple));
    const last = items[items.length - 1];
    return rows.length > limit && last ? { items, cursor: encodeCursor(last) } : { items };
  }

  private async schemaVersion(): Promise<number | undefined> {
    try {
      const { rows } = await this.run('schema check', (client) => exec(client, this.sql.schemaVersion, []));
      const value = rows[0]?.[0];
      return value === undefined ? undefined : Number(value);
    } catch (error) {
      if (error instanceof StoreSchemaMissingError) return undefined;
      throw error;
    }
  }

  private ensureOpen(): void {
    if (this.closed) throw new ClosedError('PostgreSQL token store');
  }

  private async acquire(operation: string): Promise<PoolClient> {
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
  private async abandon(client: PoolClient): Promise<boolean> {
    if (this.broken.has(client)) return true;
    if (client.getTransactionStatus() === 'I') return false;
    return !(await rollback(client));
  }

  private release(client: PoolClient, destroy: boolean): void {
    // A client still inside a transaction (or one whose connection broke) is never handed out again.
    this.inUse.delete(client);
    const broken = destroy || this.broken.has(client) || client.getTransactionStatus() !== 'I';
    client.release(broken || undefined);
  }

  private context(client: PoolClient): ErrorContext {
    return { connectionLost: this.broken.has(client) };
  }

  /** A unit of work on one pooled connection, its errors mapped to the store's vocabulary. */
  private async run<T>(operation: string, work: (client: PoolClient) => Promise<T>): Promise<T> {
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
}

function positive(setting: string, value: number | undefined, fallback: number): number {
  const chosen = value ?? fallback;
  if (!Number.isSafeInteger(chosen) || chosen < 1)
    throw new ConfigError(setting, 'must be a positive integer');
  return chosen;
}

/**
 * Cuts a client's connection when a statement on it goes unanswered for `timeoutMs`: the pending statement then
 * fails as a lost connection (ETIMEDOUT, "unavailable"), and the client is destroyed instead of pooled.
 * node-postgres's own query_timeout only stops waiting, leaving the statement queued on a dead connection.
 */
function cutWhenUnanswered(client: PoolClient, timeoutMs: number): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  const socket = (client as unknown as { connection?: { stream?: { destroy(error?: Error): void } } })
    .connection?.stream;
  if (!socket) return;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const pending = query(...args);
    if (!(pending instanceof Promise)) return pending;
    const timer = setTimeout(() => {
      socket.destroy(
        Object.assign(new Error(`no answer from PostgreSQL within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }),
      );
    }, timeoutMs);
    return pending.finally(() => clearTimeout(timer));
  };
}

/** SQLSTATE 25P02: a statement sent in a transaction that an earlier error aborted. */
const IN_FAILED_TRANSACTION = '25P02';

function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
}

/**
 * The open transaction lent to a handler: its handle (`ctx.tx`), usable while the handler runs, and the last
 * error a statement in it met, which decides what a later failure means (a deadlock in the handler's SQL makes
 * the hop worth re-running; a swallowed error explains why the transaction cannot commit).
 */
class HopTransaction {
  readonly handle: PgTx;
  failure: unknown;
  private open = true;

  constructor(private readonly client: PoolClient) {
    this.handle = {
      query: <R>(text: string, values?: unknown[]) => this.query<R>(text, values),
    };
  }

  close(): void {
    this.open = false;
  }

  /** Runs one of the store's own reads in the transaction, noting its error and wrapping it for the handler. */
  async run<T>(work: () => Promise<T>, wrap: (error: unknown) => Error): Promise<T> {
    this.ensureOpen();
    try {
      return await work();
    } catch (error) {
      this.note(error);
      throw wrap(error);
    }
  }

  private ensureOpen(): void {
    if (!this.open) throw new ClosedError("the hop's transaction (ctx.tx)");
  }

  /** "The transaction is aborted" only echoes an earlier error: keep that one. */
  private note(error: unknown): void {
    if (codeOf(error) !== IN_FAILED_TRANSACTION || this.failure === undefined) this.failure = error;
  }

  private async query<R>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number }> {
    this.ensureOpen();
    if (typeof text !== 'string')
      throw new InvalidArgumentError('ctx.tx.query takes the SQL text as a string');
    if (values !== undefined && !Array.isArray(values)) {
      throw new InvalidArgumentError('ctx.tx.query takes the parameter values as an array');
    }
    if (TRANSACTION_CONTROL.test(text.replace(LEADING_TRIVIA, ''))) {
      throw new InvalidArgumentError(
        "ctx.tx.query refuses transaction control: the hop's transaction commits or rolls back as a whole",
      );
    }
    try {
      // The extended protocol even without values: one statement per call, never a script.
      const config = { text, values: values ?? [], queryMode: 'extended' };
      const result = await this.client.query<Record<string, unknown>>(config);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
    } catch (error) {
      this.note(error);
      throw error;
    }
  }
}

/** Whitespace and comments before a statement's first keyword. */
const LEADING_TRIVIA = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/;
/** Statements that would end or split the hop's transaction. ROLLBACK TO (a savepoint) is allowed. */
const TRANSACTION_CONTROL =
  /^(?:begin|start|commit|end|abort|prepare\s+transaction)\b|^rollback\b(?!\s+(?:(?:work|transaction)\s+)?to\b)/i;

async function exec(client: PoolClient, statement: Statement, values: unknown[]): Promise<Rows> {
  const result = await client.query<unknown[]>({
    name: statement.name,
    text: statement.text,
    values,
    rowMode: 'array',
    types: TYPES,
  });
  return { rows: result.rows, rowCount: result.rowCount ?? 0 };
}

/** COMMIT, checking it did: PostgreSQL answers COMMIT in an aborted transaction with a rollback, not an error. */
async function commitOrFailure(
  client: PoolClient,
  handlerFailure?: unknown,
): Promise<{ ok: true } | { ok: false; failure: CommitFailure }> {
  const result = await client.query('COMMIT');
  if (result.command === 'COMMIT') return { ok: true };
  const cause =
    handlerFailure ??
    new StoreFailureError('PostgreSQL rolled the transaction back instead of committing it');
  return { ok: false, failure: commitFailure(cause) };
}

/** Rolls back; false if even that failed (the connection is then not reused). */
async function rollback(client: PoolClient): Promise<boolean> {
  try {
    await client.query('ROLLBACK');
    return true;
  } catch {
    return false;
  }
}

async function readStateOn(
  client: PoolClient,
  sql: ReturnType<typeof statements>,
  key: string,
): Promise<StateItem | undefined> {
  const { rows } = await exec(client, sql.getState, [key]);
  const row = rows[0] as [string, number] | undefined;
  return row ? { key, value: JSON.parse(row[0]) as JsonValue, version: row[1] } : undefined;
}

/**
 * Why the conditional consume matched no row; read only on that failure path, in the same transaction (the
 * same order of checks as the other stores).
 */
async function classifyUnconsumable(
  client: PoolClient,
  sql: ReturnType<typeof statements>,
  consume: ConsumeRequest,
  now: number,
): Promise<CommitFailure> {
  const { rows } = await exec(client, sql.checkToken, [consume.tokenId]);
  const row = rows[0] as [TokenStatus, string | null, number | null] | undefined;
  if (!row) return { kind: 'token-missing' };
  const [status, fingerprint, expiresAt] = row;
  const expired = expiresAt !== null && expiresAt <= now;
  if (!LIVE_STATUSES.includes(status) || expired) return { kind: 'token-not-live', status, expired };
  if (fingerprint !== null && fingerprint !== consume.fingerprint) return { kind: 'fingerprint-mismatch' };
  // Consumable now, not when the UPDATE ran (minted in between, read committed): the caller tries again.
  return {
    kind: 'transient',
    cause: new StoreFailureError(`token ${consume.tokenId} became consumable during the commit`),
  };
}

function checkUrl(url: string): string {
  let parsed: URL;
  try {
    if (typeof url !== 'string' || url === '') throw new TypeError('empty');
    parsed = new URL(url);
  } catch {
    throw new ConfigError('url', 'is not a URL; expected postgres://user:password@host:port/database');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigError('url', `must start with postgres:// or postgresql:// (got ${parsed.protocol}//)`);
  }
  return url;
}

/** PostgreSQL text cannot hold NUL: no stored id has one, so a lookup by such an id finds nothing. */
function isStorableText(value: string): boolean {
  return typeof value === 'string' && !value.includes('\0');
}

function assertDistinctKeys(writes: StateWrite[]): void {
  if (writes.length < 2) return;
  if (new Set(writes.map((w) => w.key)).size !== writes.length) {
    throw new InvalidArgumentError('a commit may write each state key once');
  }
}

function firstDuplicate(ids: string[]): string | undefined {
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(id)) return id;
    seen.add(id);
  }
  return undefined;
}

/** Code-unit order; ids are ASCII, where it is the byte order of COLLATE "C". */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byMintedAtThenId(a: TokenRecord, b: TokenRecord): number {
  return a.mintedAt !== b.mintedAt ? a.mintedAt - b.mintedAt : compareText(a.id, b.id);
}

/** The columns a token is inserted with. */
const INSERT_COLUMNS = `id, conversation_id, parent_id, minted_by, medium, destination, fingerprint, payload, headers,
  status, minted_at, dispatched_at, attempts, expires_at, consumed_at, consumed_by, commit_id, response, lease_until,
  retain_until`;

/** The SQL type of each of INSERT_COLUMNS. */
const INSERT_TYPES = [
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'bigint',
  'bigint',
  'integer',
  'bigint',
  'bigint',
  'text',
  'text',
  'text',
  'bigint',
  'bigint',
] as const;

/** A token's columns as INSERT_COLUMNS lists them: one array per column, one element per token. */
function tokenColumns(tokens: readonly TokenRecord[]): unknown[][] {
  const json = (value: unknown) => (value === undefined ? null : JSON.stringify(value));
  const columns: unknown[][] = INSERT_TYPES.map(() => []);
  for (const t of tokens) {
    const row = [
      t.id,
      t.conversationId,
      t.parentId ?? null,
      t.mintedBy,
      t.destination?.medium ?? null,
      json(t.destination),
      t.fingerprint ?? null,
      json(t.payload),
      json(t.headers),
      t.status,
      t.mintedAt,
      t.dispatchedAt ?? null,
      t.attempts,
      t.expiresAt ?? null,
      t.consumedAt ?? null,
      t.consumedBy ?? null,
      t.commitId ?? null,
      json(t.response),
      t.leaseUntil ?? null,
      t.retainUntil ?? null,
    ];
    for (const [i, value] of row.entries()) columns[i]?.push(value);
  }
  return columns;
}

/**
 * Token reads select these columns in array mode. Keep TokenTuple and fromTuple in this order.
 */
const TOKEN_COLUMNS = `id, conversation_id, parent_id, minted_by, destination, fingerprint, payload, headers, status,
  minted_at, dispatched_at, attempts, expires_at, consumed_at, consumed_by, response, lease_until, retain_until, commit_id`;

type TokenTuple = [
  id: string,
  conversationId: string,
  parentId: string | null,
  mintedBy: string,
  destination: string | null,
  fingerprint: string | null,
  payload: string | null,
  headers: string | null,
  status: TokenStatus,
  mintedAt: number,
  dispatchedAt: number | null,
  attempts: number,
  expiresAt: number | null,
  consumedAt: number | null,
  consumedBy: string | null,
  response: string | null,
  leaseUntil: number | null,
  retainUntil: number | null,
  commitId: string | null,
];

function fromTuple(row: TokenTuple): TokenRecord {
  const [
    id,
    conversationId,
    parentId,
    mintedBy,
    destination,
    fingerprint,
    payload,
    headers,
    status,
    mintedAt,
    dispatchedAt,
    attempts,
    expiresAt,
    consumedAt,
    consumedBy,
    response,
    leaseUntil,
    retainUntil,
    commitId,
  ] = row;
  const token: TokenRecord = { id, conversationId, mintedBy, status, mintedAt, attempts };
  if (parentId !== null) token.parentId = parentId;
  if (destination !== null) token.destination = JSON.parse(destination);
  if (fingerprint !== null) token.fingerprint = fingerprint;
  if (payload !== null) token.payload = JSON.parse(payload);
  if (headers !== null) token.headers = JSON.parse(headers);
  if (dispatchedAt !== null) token.dispatchedAt = dispatchedAt;
  if (expiresAt !== null) token.expiresAt = expiresAt;
  if (consumedAt !== null) token.consumedAt = consumedAt;
  if (consumedBy !== null) token.consumedBy = consumedBy;
  if (response !== null) token.response = JSON.parse(response);
  if (leaseUntil !== null) token.leaseUntil = leaseUntil;
  if (retainUntil !== null) token.retainUntil = retainUntil;
  if (commitId !== null) token.commitId = commitId;
  return token;
}

/** Every statement the store sends, named so that each connection parses and plans it once. */
function statements(s: string) {
  const statement = (name: string, text: string): Statement => ({ name: `tollgate_${name}`, text });
  // One array parameter per column, one element per token: the same statement for any number of tokens.
  const insertTokens = (first: number) => `INSERT INTO ${s}.tokens (${INSERT_COLUMNS})
    SELECT id, conversation_id, parent_id, minted_by, medium, destination::json, fingerprint, payload::json,
      headers::json, status, minted_at, dispatched_at, attempts, expires_at, consumed_at, consumed_by, commit_id,
      response::json, lease_until, retain_until
    FROM unnest(${INSERT_TYPES.map((type, i) => `$${first + i}::${type}[]`).join(', ')}) AS t(${INSERT_COLUMNS})`;
  const page = (column: string) =>
    `SELECT ${TOKEN_COLUMNS} FROM ${s}.tokens WHERE ${column} = $1 AND minted_at < $2
      AND (minted_at, id) > ($3, $4) ORDER BY minted_at, id LIMIT $5`;
  return {
    schemaVersion: statement('schema_version', `SELECT value FROM ${s}.meta WHERE key = 'schema_version'`),
    getToken: statement('get_token', `SELECT ${TOKEN_COLUMNS} FROM ${s}.tokens WHERE id = $1`),
    checkToken: statement(
      'check_token',
      `SELECT status, fingerprint, expires_at FROM ${s}.tokens WHERE id = $1`,
    ),
    existingIds: statement('existing_ids', `SELECT id FROM ${s}.tokens WHERE id = ANY($1::text[])`),
    mint: statement('mint', insertTokens(1)),
    mintUnlessTaken: statement(
      'mint_unless_taken',
      `${insertTokens(1)} ON CONFLICT (id) DO NOTHING RETURNING id`,
    ),
    // The conditional consume: exists, live, not expired, fingerprint matches. Under READ COMMITTED a concurrent
    // copy blocks on the row lock, then re-checks the condition on the committed row: it finds it consumed.
    // Tombstones drop payload and headers: the guarantee needs only the id and status.
    consume: statement(
      'consume',
      `UPDATE ${s}.tokens SET status = 'consumed', consumed_at = $2, consumed_by = $3, commit_id = $4,
        response = $5::json, retain_until = $6, payload = NULL, headers = NULL, lease_until = NULL
      WHERE id = $1 AND status IN ${LIVE} AND (expires_at IS NULL OR expires_at > $2)
        AND (fingerprint IS NULL OR fingerprint = $7)`,
    ),
    // The same consume, answering the token as it was before it: an interactive hop needs no read of its own.
    consumeReading: statement(
      'consume_reading',
      `UPDATE ${s}.tokens SET status = 'consumed', consumed_at = $2, consumed_by = $3, commit_id = $4,
        response = $5::json, retain_until = $6, payload = NULL, headers = NULL, lease_until = NULL
      FROM (SELECT ${TOKEN_COLUMNS} FROM ${s}.tokens WHERE id = $1 FOR UPDATE) AS prior
      WHERE ${s}.tokens.id = prior.id AND ${s}.tokens.status IN ${LIVE}
        AND (${s}.tokens.expires_at IS NULL OR ${s}.tokens.expires_at > $2)
        AND (${s}.tokens.fingerprint IS NULL OR ${s}.tokens.fingerprint = $7)
      RETURNING ${TOKEN_COLUMNS.split(',')
        .map((column) => `prior.${column.trim()}`)
        .join(', ')}`,
    ),
    getState: statement('get_state', `SELECT value, version FROM ${s}.state WHERE key = $1`),
    // What a handler staged, as one statement ($1-$3 the writes: key, value or NULL to delete, expected version
    // or NULL for a blind write; $4-$23 the tokens to mint; $24-$25 the consumed token and its stored answer).
    // Answers the keys whose conditional write held, the keys present that a delete at version 0 expected
    // absent, and the ids minted. Its parts touch distinct rows, so running them side by side is safe.
    stage: statement(
      'stage',
      `WITH w AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::integer[]) WITH ORDINALITY AS w(key, value, expected, n)
      ),
      put_blind AS (
        INSERT INTO ${s}.state AS st (key, value, version)
        SELECT key, value::json, 1 FROM w WHERE value IS NOT NULL AND expected IS NULL ORDER BY n
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = st.version + 1
      ),
      put_new AS (
        INSERT INTO ${s}.state (key, value, version)
        SELECT key, value::json, 1 FROM w WHERE value IS NOT NULL AND expected = 0 ORDER BY n
        ON CONFLICT (key) DO NOTHING RETURNING key
      ),
      put_at AS (
        UPDATE ${s}.state AS st SET value = w.value::json, version = st.version + 1 FROM w
        WHERE w.value IS NOT NULL AND w.expected > 0 AND st.key = w.key AND st.version = w.expected
        RETURNING st.key
      ),
      delete_blind AS (
        DELETE FROM ${s}.state AS st USING w WHERE w.value IS NULL AND w.expected IS NULL AND st.key = w.key
      ),
      delete_at AS (
        DELETE FROM ${s}.state AS st USING w
        WHERE w.value IS NULL AND w.expected > 0 AND st.key = w.key AND st.version = w.expected
        RETURNING st.key
      ),
      minted AS (
        ${insertTokens(4)}
        ON CONFLICT (id) DO NOTHING RETURNING id
      ),
      answered AS (
        UPDATE ${s}.tokens SET response = $25::text::json WHERE id = $24 AND $25::text IS NOT NULL
      )
      SELECT
        ARRAY(SELECT key FROM put_new UNION ALL SELECT key FROM put_at UNION ALL SELECT key FROM delete_at),
        ARRAY(SELECT st.key FROM ${s}.state AS st JOIN w ON st.key = w.key WHERE w.value IS NULL AND w.expected = 0),
        ARRAY(SELECT id FROM minted)`,
    ),
    // A row locked by a hop consuming it is skipped, not waited for: the hop ends it (consumed), or rolls back
    // and leaves it pending for the relay. Waiting would tie a sender to its receiver's handler.
    markDispatched: statement(
      'mark_dispatched',
      `UPDATE ${s}.tokens SET status = 'dispatched', dispatched_at = $2, lease_until = NULL
      WHERE status = 'pending' AND id IN (SELECT id FROM ${s}.tokens WHERE id = ANY($1::text[])
        AND status = 'pending' FOR UPDATE SKIP LOCKED)`,
    ),
    revoke: statement(
      'revoke',
      `UPDATE ${s}.tokens SET status = 'revoked', retain_until = $2, payload = NULL, headers = NULL,
        lease_until = NULL
      WHERE id = $1 AND status IN ${LIVE} RETURNING ${TOKEN_COLUMNS}`,
    ),
    expire: statement(
      'expire',
      `UPDATE ${s}.tokens SET status = 'expired', retain_until = $1, payload = NULL, headers = NULL
      WHERE status = 'issued' AND id IN (SELECT id FROM ${s}.tokens WHERE status = 'issued'
        AND expires_at IS NOT NULL AND expires_at <= $2 LIMIT $3 FOR UPDATE SKIP LOCKED)`,
    ),
    // Rows another relay (or a hop's consume) holds are skipped, not waited for.
    claim: statement(
      'claim',
      `UPDATE ${s}.tokens SET lease_until = $5, attempts = attempts + 1
      WHERE id IN (SELECT id FROM ${s}.tokens WHERE status = 'pending' AND minted_at <= $1
          AND (lease_until IS NULL OR lease_until < $2) AND ($3::text IS NULL OR medium = $3)
        ORDER BY minted_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
      RETURNING ${TOKEN_COLUMNS}`,
    ),
    releaseLease: statement('release_lease', `UPDATE ${s}.tokens SET lease_until = NULL WHERE id = $1`),
    byStatus: statement('by_status', page('status')),
    byConversation: statement('by_conversation', page('conversation_id')),
    inFlight: statement(
      'in_flight',
      `SELECT count(*), min(minted_at) FROM ${s}.tokens WHERE status IN ${IN_FLIGHT}`,
    ),
    purge: statement(
      'purge',
      `DELETE FROM ${s}.tokens WHERE id IN (SELECT id FROM ${s}.tokens WHERE status IN ${ENDED}
        AND minted_at <= $1 AND retain_until IS NOT NULL AND retain_until <= $2 LIMIT $3 FOR UPDATE SKIP LOCKED)`,
    ),
  };
}
