import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import {
  ClosedError,
  InvalidArgumentError,
  InvalidTransitionError,
  StoreFailureError,
  StoreUnavailableError,
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
  DueClaimOptions,
  InFlightStats,
  IssueResult,
  ListOptions,
  Page,
  StagedOwnData,
  StateItem,
  StateWrite,
  TokenClaimOptions,
  TokenStore,
} from '../../core/store.js';
import {
  IN_FLIGHT_STATUSES,
  LIVE_STATUSES,
  sourcesOf,
  type TokenRecord,
  type TokenStatus,
} from '../../core/token.js';
import { decodeCursor, encodeCursor, pageLimit } from '../paging.js';
import { statusCountsOf } from '../status-counts.js';
import {
  fromTuple,
  INSERT_COLUMN_LIST,
  INSERT_COLUMNS,
  TOKEN_COLUMNS,
  type TokenTuple,
  tokenValues,
} from '../token-tuple.js';
import { BackgroundCheckpoints } from './background-checkpoints.js';
import { isBusy } from './busy.js';
import { SqliteOwnData, type SqliteTx } from './own-data.js';
import { ReadBatch } from './read-batch.js';
import { SqliteScheduling } from './scheduling.js';
import { migrate } from './schema.js';
import { batchable, WriteBatch } from './write-batch.js';

export interface SqliteStoreOptions {
  /** Database file; ':memory:' for a private in-memory store (tests). Parent folders are created. */
  filename: string;
  /** How long consumed, expired and revoked tokens are kept before purge. Default 24 h. */
  tombstoneRetentionMs?: number;
  /** How long a writer waits for another process's transaction. Default 5 s. */
  busyTimeoutMs?: number;
  /**
   * Copy the WAL into the database file on a worker thread, so that the event loop does not stop for the sync
   * (`BackgroundCheckpoints`). Default true; it starts once the store has written a thousand times.
   */
  backgroundCheckpoints?: boolean;
}

/** What a failed consume or revoke reads to say why. */
interface CheckRow {
  status: TokenStatus;
  fingerprint: string | null;
  expires_at: number | null;
}

/** Thrown inside a transaction to roll it back and report a structured reason. */
class Abort {
  constructor(readonly failure: CommitFailure) {}
}

/** Pages of WAL after which a committing connection checkpoints (SQLite's default is 1000). */
const WAL_AUTOCHECKPOINT_PAGES = 10_000;

const LIVE = `('${LIVE_STATUSES.join("','")}')`;
const IN_FLIGHT = `('${IN_FLIGHT_STATUSES.join("','")}')`;
const ENDED = "('consumed','expired','revoked')";
const REVOCABLE = sourcesOf('revoked');

/**
 * The embedded default store. Writes run in IMMEDIATE transactions (so concurrent writers from several
 * processes queue on the file lock instead of failing late), grouped: the commits, mints and dispatch marks
 * asked for in one turn of the event loop share one transaction, each in its own savepoint (`WriteBatch`).
 * Token and state reads of one turn share one read transaction (`ReadBatch`).
 * WAL, so readers never block writers.
 *
 * Handlers reach the application's own tables in the same database file through `ownData` (`ctx.tx`, a
 * SqliteTx): reads run at once, writes are staged and run in the hop's commit, in its savepoint.
 */
export class SqliteTokenStore implements TokenStore<SqliteTx> {
  readonly kind = 'sqlite';
  /** The handler's own tables, in the same file: reads now, writes staged into the hop's commit. */
  readonly ownData: StagedOwnData<SqliteTx>;
  private readonly own: SqliteOwnData;
  private readonly db: Database.Database;
  private readonly retentionMs: number;
  private closed = false;
  private readonly sql;
  // Transaction functions are built once: better-sqlite3's db.transaction() is not free.
  private readonly mintTx;
  private readonly issueTx;
  private readonly commitTx;
  private readonly markTx;
  private readonly revokeTx;
  private readonly claimTx;
  private readonly writes: WriteBatch;
  private readonly reads: ReadBatch;
  private readonly scheduling: SqliteScheduling;
  private readonly checkpoints: BackgroundCheckpoints | undefined;

  constructor(options: SqliteStoreOptions) {
    if (options.filename !== ':memory:') mkdirSync(dirname(options.filename), { recursive: true });
    this.db = new Database(options.filename);
    this.retentionMs = options.tombstoneRetentionMs ?? 24 * 60 * 60 * 1000;
    this.db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    this.db.pragma('journal_mode = WAL');
    // NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the last commits.
    this.db.pragma('synchronous = NORMAL');
    // Checkpoint every ~40 MB of WAL instead of every 4 MB (the default 1000 pages). A checkpoint syncs the WAL
    // and the database file and copies every page written since the last one; a commit dirties ~10 pages, so
    // with the default a commit paid for ~1 % of a checkpoint. Durability is unchanged: commits are in the WAL
    // either way. The WAL file keeps its high-water size (~40 MB) on disk.
    this.db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    migrate(this.db);
    if (options.filename !== ':memory:' && options.backgroundCheckpoints !== false) {
      this.checkpoints = new BackgroundCheckpoints(options.filename);
    }
    this.sql = prepare(this.db);
    const sql = this.sql;
    const retentionMs = this.retentionMs;
    const own = new SqliteOwnData(this.db, () => this.ensureOpen());
    this.own = own;
    this.ownData = own;
    const scheduling = new SqliteScheduling(this.db, retentionMs);
    this.scheduling = scheduling;

    this.mintTx = batchable(this.db, (tokens: TokenRecord[]): void => {
      for (const token of tokens) {
        if (sql.insertToken.run(tokenValues(token)).changes === 0)
          throw new TokenExistsError(token.id, 'id taken');
      }
    });

    this.issueTx = batchable(this.db, (token: TokenRecord): IssueResult => {
      if (sql.insertToken.run(tokenValues(token)).changes === 1) return { created: true, token };
      return { created: false, existing: fromTuple(sql.getToken.get(token.id) as TokenTuple) };
    });

    this.commitTx = batchable(this.db, (request: CommitRequest): void => {
      const { consume, writes, mints, now } = request;
      // Consume first, conditionally: on the success path the token's row is read and written once. Statement
      // order inside the transaction is free, since any Abort below rolls all of it back.
      const consumed = sql.consume.run({
        id: consume.tokenId,
        now,
        fingerprint: consume.fingerprint,
        consumedBy: consume.consumedBy,
        commitId: consume.commitId ?? null,
        response: consume.response ? JSON.stringify(consume.response) : null,
        retainUntil: now + retentionMs,
      });
      if (consumed.changes === 0)
        throw new Abort(classifyUnconsumable(sql, consume.tokenId, consume.fingerprint, now));
      for (const write of writes) {
        if (write.expectedVersion !== undefined) {
          const current = (sql.getVersion.get(write.key) as { version: number } | undefined)?.version ?? 0;
          if (current !== write.expectedVersion)
            throw new Abort({ kind: 'version-conflict', key: write.key });
        }
        if (write.value === undefined) sql.deleteState.run(write.key);
        else sql.upsertState.run(write.key, JSON.stringify(write.value));
      }
      // Cancelled tokens, each conditioned on the status the handler read.
      const revokeFailure = scheduling.revoke(request.revokes, now);
      if (revokeFailure) throw new Abort(revokeFailure);
      // The handler's own statements, after Tollgate's checks (a stale read shows as a version conflict, which
      // re-runs the handler, rather than as the failure of a statement written against stale state) and before
      // the mints, which do not depend on them. A failure throws Abort: this savepoint (or transaction) rolls
      // back, and in a group commit only this commit fails.
      const ownFailure = own.apply(request.own);
      if (ownFailure) throw new Abort(ownFailure);
      for (const token of mints) {
        if (sql.insertToken.run(tokenValues(token)).changes === 0) {
          throw new Abort({ kind: 'mint-collision', tokenId: token.id });
        }
      }
    });

    this.writes = new WriteBatch(this.db);
    this.reads = new ReadBatch(this.db);

    this.markTx = batchable(this.db, (ids: string[], now: number): number => {
      let moved = 0;
      for (const id of ids) moved += sql.markDispatched.run(now, id).changes;
      return moved;
    });

    this.revokeTx = batchable(this.db, (id: string, now: number): TokenRecord => {
      const status = (sql.checkToken.get(id) as Pick<CheckRow, 'status'> | undefined)?.status;
      if (status === undefined) throw new UnknownTokenError(id);
      if (!REVOCABLE.includes(status)) throw new InvalidTransitionError(id, status, 'revoked');
      sql.end.run('revoked', now + retentionMs, id);
      return fromTuple(sql.getToken.get(id) as TokenTuple);
    });

    this.claimTx = batchable(this.db, (options: ClaimOptions): TokenRecord[] => {
      const { mintedBefore, now, leaseMs, limit, medium } = options;
      const rows = sql.duePending.all(
        mintedBefore,
        now,
        medium ?? null,
        medium ?? null,
        limit,
      ) as TokenTuple[];
      return rows.map((row) => {
        const token = fromTuple(row);
        sql.lease.run(now + leaseMs, token.id);
        return { ...token, leaseUntil: now + leaseMs, attempts: token.attempts + 1 };
      });
    });
  }

  async getToken(id: string): Promise<TokenRecord | undefined> {
    return this.read(() => {
      const row = this.sql.getToken.get(id) as TokenTuple | undefined;
      return row ? fromTuple(row) : undefined;
    });
  }

  async getTokens(ids: readonly string[]): Promise<Map<string, TokenRecord>> {
    return this.run(() => {
      const found = new Map<string, TokenRecord>();
      for (const id of ids) {
        const row = this.sql.getToken.get(id) as TokenTuple | undefined;
        if (row) found.set(id, fromTuple(row));
      }
      return found;
    });
  }

  async readState(key: string): Promise<StateItem | undefined> {
    return this.read(() => {
      const row = this.sql.getState.get(key) as { value: string; version: number } | undefined;
      return row ? { key, value: JSON.parse(row.value) as JsonValue, version: row.version } : undefined;
    });
  }

  async mint(tokens: TokenRecord[]): Promise<void> {
    if (tokens.length === 0) return;
    await this.batched(this.mintTx, tokens);
  }

  async issue(token: TokenRecord): Promise<IssueResult> {
    return this.batched(this.issueTx, token);
  }

  async commit(request: CommitRequest): Promise<CommitResult> {
    assertDistinctKeys(request.writes);
    this.own.check(request.own);
    try {
      this.ensureOpen();
      this.checkpoints?.wrote();
      await this.writes.submit(this.commitTx, request);
      return { ok: true };
    } catch (error) {
      if (error instanceof Abort) return { ok: false, failure: error.failure };
      if (isBusy(error)) return { ok: false, failure: { kind: 'transient', cause: error } };
      return { ok: false, failure: { kind: 'permanent', cause: error } };
    }
  }

  async markDispatched(ids: string[], now: number): Promise<number> {
    if (ids.length === 0) return 0;
    return this.batched(this.markTx, ids, now);
  }

  async revoke(id: string, now: number): Promise<TokenRecord> {
    return this.run(() => this.revokeTx.immediate(id, now));
  }

  async expireIssued(now: number, limit = 1000): Promise<number> {
    return this.run(() => this.sql.expire.run(now + this.retentionMs, now, limit).changes);
  }

  async claimPending(options: ClaimOptions): Promise<TokenRecord[]> {
    return this.run(() => this.claimTx.immediate(options));
  }

  async claimDue(options: DueClaimOptions): Promise<TokenRecord[]> {
    return this.run(() => this.scheduling.claimDue(options));
  }

  async claimToken(id: string, options: TokenClaimOptions): Promise<TokenRecord | undefined> {
    const { now, leaseMs, medium } = options;
    const row = this.run(() => this.sql.claimToken.get(now + leaseMs, id, medium ?? null, medium ?? null));
    return row === undefined ? undefined : fromTuple(row as TokenTuple);
  }

  async releaseLease(id: string): Promise<void> {
    this.run(() => this.sql.releaseLease.run(id));
  }

  async listByStatus(status: TokenStatus, options: ListOptions = {}): Promise<Page<TokenRecord>> {
    if (status === 'scheduled') {
      const limit = pageLimit(options.limit);
      return this.run(() => this.scheduling.list(options, limit));
    }
    return this.page(this.sql.byStatus, status, options);
  }

  async listConversation(conversationId: string, options: ListOptions = {}): Promise<Page<TokenRecord>> {
    return this.page(this.sql.byConversation, conversationId, options);
  }

  async inFlightStats(): Promise<InFlightStats> {
    return this.run(() => {
      const row = this.sql.inFlight.get() as { count: number; oldest: number | null };
      return row.oldest === null ? { count: row.count } : { count: row.count, oldestMintedAt: row.oldest };
    });
  }

  async statusCounts(): Promise<Record<TokenStatus, number>> {
    return this.run(() => statusCountsOf(this.sql.statusCounts.all() as Array<[string, number]>));
  }

  async purge(now: number, limit = 10_000): Promise<number> {
    // Only a token minted at least one retention ago can be due (it ended after it was minted): bounding
    // minted_at lets the status index skip the tombstones still kept, whose number grows with traffic.
    return this.run(() => this.sql.purge.run(now - this.retentionMs, now, limit).changes);
  }

  async ping(): Promise<void> {
    this.run(() => this.sql.ping.get());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Reads and writes already asked for still run: their callers are waiting for an answer.
    this.reads.flush();
    this.writes.flush();
    // The worker's connection first: the store's, the file's last, then checkpoints and removes the WAL as before.
    await this.checkpoints?.stop();
    this.db.close();
  }

  private async page(
    statement: Database.Statement,
    partition: string,
    options: ListOptions,
  ): Promise<Page<TokenRecord>> {
    const limit = pageLimit(options.limit);
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    return this.run(() => {
      const rows = statement.all({
        partition,
        afterAt: after?.mintedAt ?? -1,
        afterId: after?.id ?? '',
        before: options.mintedBefore ?? Number.MAX_SAFE_INTEGER,
        limit: limit + 1,
      }) as TokenTuple[];
      const items = rows.slice(0, limit).map(fromTuple);
      const last = items[items.length - 1];
      return rows.length > limit && last ? { items, cursor: encodeCursor(last) } : { items };
    });
  }

  private ensureOpen(): void {
    if (this.closed) throw new ClosedError('SQLite token store');
  }

  private run<T>(work: () => T): T {
    this.ensureOpen();
    try {
      return work();
    } catch (error) {
      throw storeError(error);
    }
  }

  /** A read in the next read batch (one read transaction per turn); errors mapped as `run` does. */
  private async read<T>(work: () => T): Promise<T> {
    this.ensureOpen();
    try {
      return await this.reads.submit(work);
    } catch (error) {
      throw storeError(error);
    }
  }

  /** A write (a transaction function and its arguments) in the next group commit; errors mapped as `run` does. */
  private async batched<A extends unknown[], T>(
    tx: Database.Transaction<(...args: A) => T>,
    ...args: A
  ): Promise<T> {
    this.ensureOpen();
    this.checkpoints?.wrote();
    try {
      return await this.writes.submit(tx, ...args);
    } catch (error) {
      throw storeError(error);
    }
  }
}

/** Maps SQLite's lock contention to a retriable error; anything else is a store failure. */
function storeError(error: unknown): Error {
  if (error instanceof TollgateError) return error;
  if (isBusy(error)) return new StoreUnavailableError('SQLite database is locked', {}, { cause: error });
  return new StoreFailureError('SQLite operation failed', {}, { cause: error });
}

function prepare(db: Database.Database) {
  return {
    ping: db.prepare('SELECT 1'),
    getToken: db.prepare(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE id = ?`).raw(true),
    checkToken: db.prepare('SELECT status, fingerprint, expires_at FROM tokens WHERE id = ?'),
    getVersion: db.prepare('SELECT version FROM state WHERE key = ?'),
    getState: db.prepare('SELECT value, version FROM state WHERE key = ?'),
    upsertState: db.prepare(
      'INSERT INTO state (key, value, version) VALUES (?, ?, 1) ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = version + 1',
    ),
    deleteState: db.prepare('DELETE FROM state WHERE key = ?'),
    insertToken: db.prepare(
      `INSERT INTO tokens (${INSERT_COLUMNS}) VALUES (${INSERT_COLUMN_LIST.map(() => '?').join(', ')})
      ON CONFLICT(id) DO NOTHING`,
    ),
    // The conditional consume: exists, live, not expired, fingerprint matches. Tombstones drop payload and
    // headers: the guarantee needs only the id and status.
    consume:
      db.prepare(`UPDATE tokens SET status = 'consumed', consumed_at = @now, consumed_by = @consumedBy, commit_id = @commitId,
        response = @response, retain_until = @retainUntil, payload = NULL, headers = NULL, lease_until = NULL
      WHERE id = @id AND status IN ${LIVE} AND (expires_at IS NULL OR expires_at > @now)
        AND (fingerprint IS NULL OR fingerprint = @fingerprint)`),
    markDispatched: db.prepare(
      "UPDATE tokens SET status = 'dispatched', dispatched_at = ?, lease_until = NULL WHERE id = ? AND status = 'pending'",
    ),
    end: db.prepare(
      'UPDATE tokens SET status = ?, retain_until = ?, payload = NULL, headers = NULL, lease_until = NULL WHERE id = ?',
    ),
    expire: db.prepare(`UPDATE tokens SET status = 'expired', retain_until = ?, payload = NULL, headers = NULL
      WHERE id IN (SELECT id FROM tokens WHERE status = 'issued' AND expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)`),
    duePending: db
      .prepare(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE status = 'pending' AND minted_at <= ?
        AND (lease_until IS NULL OR lease_until < ?) AND (? IS NULL OR medium = ?)
      ORDER BY minted_at, id LIMIT ?`)
      .raw(true),
    lease: db.prepare('UPDATE tokens SET lease_until = ?, attempts = attempts + 1 WHERE id = ?'),
    claimToken: db
      .prepare(`UPDATE tokens SET lease_until = ?, attempts = attempts + 1
        WHERE id = ? AND status = 'pending' AND (? IS NULL OR medium = ?) RETURNING ${TOKEN_COLUMNS}`)
      .raw(true),
    releaseLease: db.prepare('UPDATE tokens SET lease_until = NULL WHERE id = ?'),
    byStatus: db
      .prepare(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE status = @partition AND minted_at < @before
        AND (minted_at, id) > (@afterAt, @afterId) ORDER BY minted_at, id LIMIT @limit`)
      .raw(true),
    byConversation: db
      .prepare(`SELECT ${TOKEN_COLUMNS} FROM tokens WHERE conversation_id = @partition
        AND minted_at < @before AND (minted_at, id) > (@afterAt, @afterId) ORDER BY minted_at, id LIMIT @limit`)
      .raw(true),
    inFlight: db.prepare(
      `SELECT COUNT(*) AS count, MIN(CASE WHEN status <> 'scheduled' THEN minted_at END) AS oldest FROM tokens WHERE status IN ${IN_FLIGHT}`,
    ),
    // Counted on the status index alone (a covering scan): the rows themselves are never read.
    statusCounts: db.prepare('SELECT status, COUNT(*) FROM tokens GROUP BY status').raw(true),
    purge: db.prepare(`DELETE FROM tokens WHERE id IN (SELECT id FROM tokens WHERE status IN ${ENDED}
        AND minted_at <= ? AND retain_until IS NOT NULL AND retain_until <= ? LIMIT ?)`),
  };
}

type Statements = ReturnType<typeof prepare>;

/** Why the conditional consume matched no row; read only on that failure path, in the same transaction. */
function classifyUnconsumable(
  sql: Statements,
  tokenId: string,
  fingerprint: string,
  now: number,
): CommitFailure {
  const row = sql.checkToken.get(tokenId) as CheckRow | undefined;
  if (!row) return { kind: 'token-missing' };
  const expired = row.expires_at !== null && row.expires_at <= now;
  if (!LIVE_STATUSES.includes(row.status) || expired)
    return { kind: 'token-not-live', status: row.status, expired };
  if (row.fingerprint !== null && row.fingerprint !== fingerprint) return { kind: 'fingerprint-mismatch' };
  // The UPDATE and this SELECT see the same snapshot (we hold the write lock), so this cannot happen.
  throw new Error(`token ${tokenId} is consumable but the conditional consume matched no row`);
}

function assertDistinctKeys(writes: StateWrite[]): void {
  if (writes.length < 2) return;
  if (new Set(writes.map((w) => w.key)).size !== writes.length) {
    throw new InvalidArgumentError('a commit may write each state key once');
  }
}
