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
  InFlightStats,
  IssueResult,
  ListOptions,
  Page,
  StateItem,
  TokenStore,
} from '../../core/store.js';
import { IN_FLIGHT_STATUSES, LIVE_STATUSES, type TokenRecord, type TokenStatus } from '../../core/token.js';
import { decodeCursor, encodeCursor, pageLimit } from '../paging.js';
import { migrate } from './schema.js';

export interface SqliteStoreOptions {
  /** Database file; ':memory:' for a private in-memory store (tests). Parent folders are created. */
  filename: string;
  /** How long consumed, expired and revoked tokens are kept before purge. Default 24 h. */
  tombstoneRetentionMs?: number;
  /** How long a writer waits for another process's transaction. Default 5 s. */
  busyTimeoutMs?: number;
}

interface TokenRow {
  id: string;
  conversation_id: string;
  parent_id: string | null;
  minted_by: string;
  medium: string | null;
  destination: string | null;
  fingerprint: string | null;
  payload: string | null;
  headers: string | null;
  status: TokenStatus;
  minted_at: number;
  dispatched_at: number | null;
  attempts: number;
  expires_at: number | null;
  consumed_at: number | null;
  consumed_by: string | null;
  response: string | null;
  lease_until: number | null;
  retain_until: number | null;
}

/** Thrown inside a transaction to roll it back and report a structured reason. */
class Abort {
  constructor(readonly failure: CommitFailure) {}
}

const LIVE = `('${LIVE_STATUSES.join("','")}')`;
const IN_FLIGHT = `('${IN_FLIGHT_STATUSES.join("','")}')`;
const ENDED = "('consumed','expired','revoked')";

/**
 * The embedded default store. One SQL transaction per commit (BEGIN IMMEDIATE, so concurrent writers from
 * several processes queue on the file lock instead of failing late); WAL so readers never block writers.
 */
export class SqliteTokenStore implements TokenStore {
  readonly kind = 'sqlite';
  private readonly db: Database.Database;
  private readonly retentionMs: number;
  private closed = false;
  private readonly sql;

  constructor(options: SqliteStoreOptions) {
    if (options.filename !== ':memory:') mkdirSync(dirname(options.filename), { recursive: true });
    this.db = new Database(options.filename);
    this.retentionMs = options.tombstoneRetentionMs ?? 24 * 60 * 60 * 1000;
    this.db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    this.db.pragma('journal_mode = WAL');
    // NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the last commits.
    this.db.pragma('synchronous = NORMAL');
    migrate(this.db);
    this.sql = prepare(this.db);
  }

  async getToken(id: string): Promise<TokenRecord | undefined> {
    return this.run(() => {
      const row = this.sql.getToken.get(id) as TokenRow | undefined;
      return row ? fromRow(row) : undefined;
    });
  }

  async readState(key: string): Promise<StateItem | undefined> {
    return this.run(() => {
      const row = this.sql.getState.get(key) as { value: string; version: number } | undefined;
      return row ? { key, value: JSON.parse(row.value) as JsonValue, version: row.version } : undefined;
    });
  }

  async mint(tokens: TokenRecord[]): Promise<void> {
    if (tokens.length === 0) return;
    this.run(() =>
      this.db
        .transaction(() => {
          for (const token of tokens) {
            if (this.sql.insertToken.run(toRow(token)).changes === 0)
              throw new TokenExistsError(token.id, 'id taken');
          }
        })
        .immediate(),
    );
  }

  async issue(token: TokenRecord): Promise<IssueResult> {
    return this.run(() =>
      this.db
        .transaction((): IssueResult => {
          if (this.sql.insertToken.run(toRow(token)).changes === 1) return { created: true, token };
          return { created: false, existing: fromRow(this.sql.getToken.get(token.id) as TokenRow) };
        })
        .immediate(),
    );
  }

  async commit(request: CommitRequest): Promise<CommitResult> {
    const { consume, writes, mints, now } = request;
    assertDistinctKeys(writes.map((w) => w.key));
    const tx = this.db.transaction((): void => {
      const row = this.sql.checkToken.get(consume.tokenId) as
        | Pick<TokenRow, 'status' | 'fingerprint' | 'expires_at'>
        | undefined;
      if (!row) throw new Abort({ kind: 'token-missing' });
      const expired = row.expires_at !== null && row.expires_at <= now;
      if (!LIVE_STATUSES.includes(row.status) || expired) {
        throw new Abort({ kind: 'token-not-live', status: row.status, expired });
      }
      if (row.fingerprint !== null && row.fingerprint !== consume.fingerprint) {
        throw new Abort({ kind: 'fingerprint-mismatch' });
      }
      for (const write of writes) {
        if (write.expectedVersion !== undefined) {
          const current =
            (this.sql.getVersion.get(write.key) as { version: number } | undefined)?.version ?? 0;
          if (current !== write.expectedVersion)
            throw new Abort({ kind: 'version-conflict', key: write.key });
        }
        if (write.value === undefined) this.sql.deleteState.run(write.key);
        else this.sql.upsertState.run(write.key, JSON.stringify(write.value));
      }
      for (const token of mints) {
        if (this.sql.insertToken.run(toRow(token)).changes === 0) {
          throw new Abort({ kind: 'mint-collision', tokenId: token.id });
        }
      }
      this.sql.consume.run({
        id: consume.tokenId,
        now,
        consumedBy: consume.consumedBy,
        response: consume.response ? JSON.stringify(consume.response) : null,
        retainUntil: now + this.retentionMs,
      });
    });
    try {
      this.ensureOpen();
      tx.immediate();
      return { ok: true };
    } catch (error) {
      if (error instanceof Abort) return { ok: false, failure: error.failure };
      if (isBusy(error)) return { ok: false, failure: { kind: 'transient', cause: error } };
      return { ok: false, failure: { kind: 'permanent', cause: error } };
    }
  }

  async markDispatched(ids: string[], now: number): Promise<number> {
    if (ids.length === 0) return 0;
    return this.run(() =>
      this.db
        .transaction(() => ids.reduce((moved, id) => moved + this.sql.markDispatched.run(now, id).changes, 0))
        .immediate(),
    );
  }

  async revoke(id: string, now: number): Promise<TokenRecord> {
    return this.run(() =>
      this.db
        .transaction((): TokenRecord => {
          const row = this.sql.getToken.get(id) as TokenRow | undefined;
          if (!row) throw new UnknownTokenError(id);
          if (!LIVE_STATUSES.includes(row.status))
            throw new InvalidTransitionError(id, row.status, 'revoked');
          this.sql.end.run('revoked', now + this.retentionMs, id);
          return fromRow(this.sql.getToken.get(id) as TokenRow);
        })
        .immediate(),
    );
  }

  async expireIssued(now: number, limit = 1000): Promise<number> {
    return this.run(() => this.sql.expire.run(now + this.retentionMs, now, limit).changes);
  }

  async claimPending(options: ClaimOptions): Promise<TokenRecord[]> {
    const { mintedBefore, now, leaseMs, limit, medium } = options;
    return this.run(() =>
      this.db
        .transaction((): TokenRecord[] => {
          const rows = this.sql.duePending.all(
            mintedBefore,
            now,
            medium ?? null,
            medium ?? null,
            limit,
          ) as TokenRow[];
          for (const row of rows) this.sql.lease.run(now + leaseMs, row.id);
          return rows.map((row) => ({
            ...fromRow(row),
            leaseUntil: now + leaseMs,
            attempts: row.attempts + 1,
          }));
        })
        .immediate(),
    );
  }

  async releaseLease(id: string): Promise<void> {
    this.run(() => this.sql.releaseLease.run(id));
  }

  async listByStatus(status: TokenStatus, options: ListOptions = {}): Promise<Page<TokenRecord>> {
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

  async purge(now: number, limit = 10_000): Promise<number> {
    return this.run(() => this.sql.purge.run(now, limit).changes);
  }

  async ping(): Promise<void> {
    this.run(() => this.db.prepare('SELECT 1').get());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
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
      }) as TokenRow[];
      const items = rows.slice(0, limit).map(fromRow);
      const last = items[items.length - 1];
      return rows.length > limit && last ? { items, cursor: encodeCursor(last) } : { items };
    });
  }

  private ensureOpen(): void {
    if (this.closed) throw new ClosedError('SQLite token store');
  }

  /** Maps SQLite's lock contention to a retriable error; anything else is a store failure. */
  private run<T>(work: () => T): T {
    this.ensureOpen();
    try {
      return work();
    } catch (error) {
      if (error instanceof TollgateError) throw error;
      if (isBusy(error)) throw new StoreUnavailableError('SQLite database is locked', {}, { cause: error });
      throw new StoreFailureError('SQLite operation failed', {}, { cause: error });
    }
  }
}

function prepare(db: Database.Database) {
  const listColumns = '*';
  return {
    getToken: db.prepare('SELECT * FROM tokens WHERE id = ?'),
    checkToken: db.prepare('SELECT status, fingerprint, expires_at FROM tokens WHERE id = ?'),
    getState: db.prepare('SELECT value, version FROM state WHERE key = ?'),
    getVersion: db.prepare('SELECT version FROM state WHERE key = ?'),
    upsertState: db.prepare(
      'INSERT INTO state (key, value, version) VALUES (?, ?, 1) ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = version + 1',
    ),
    deleteState: db.prepare('DELETE FROM state WHERE key = ?'),
    insertToken:
      db.prepare(`INSERT INTO tokens (id, conversation_id, parent_id, minted_by, medium, destination, fingerprint,
        payload, headers, status, minted_at, dispatched_at, attempts, expires_at, consumed_at, consumed_by, response,
        lease_until, retain_until)
      VALUES (@id, @conversation_id, @parent_id, @minted_by, @medium, @destination, @fingerprint, @payload, @headers,
        @status, @minted_at, @dispatched_at, @attempts, @expires_at, @consumed_at, @consumed_by, @response, @lease_until,
        @retain_until)
      ON CONFLICT(id) DO NOTHING`),
    // Tombstones drop payload and headers: the guarantee needs only the id and status.
    consume: db.prepare(`UPDATE tokens SET status = 'consumed', consumed_at = @now, consumed_by = @consumedBy,
        response = @response, retain_until = @retainUntil, payload = NULL, headers = NULL, lease_until = NULL
      WHERE id = @id AND status IN ${LIVE}`),
    markDispatched: db.prepare(
      "UPDATE tokens SET status = 'dispatched', dispatched_at = ?, lease_until = NULL WHERE id = ? AND status = 'pending'",
    ),
    end: db.prepare(
      'UPDATE tokens SET status = ?, retain_until = ?, payload = NULL, headers = NULL, lease_until = NULL WHERE id = ?',
    ),
    expire: db.prepare(`UPDATE tokens SET status = 'expired', retain_until = ?, payload = NULL, headers = NULL
      WHERE id IN (SELECT id FROM tokens WHERE status = 'issued' AND expires_at IS NOT NULL AND expires_at <= ? LIMIT ?)`),
    duePending: db.prepare(`SELECT * FROM tokens WHERE status = 'pending' AND minted_at <= ?
        AND (lease_until IS NULL OR lease_until < ?) AND (? IS NULL OR medium = ?)
      ORDER BY minted_at, id LIMIT ?`),
    lease: db.prepare('UPDATE tokens SET lease_until = ?, attempts = attempts + 1 WHERE id = ?'),
    releaseLease: db.prepare('UPDATE tokens SET lease_until = NULL WHERE id = ?'),
    byStatus: db.prepare(`SELECT ${listColumns} FROM tokens WHERE status = @partition AND minted_at < @before
        AND (minted_at, id) > (@afterAt, @afterId) ORDER BY minted_at, id LIMIT @limit`),
    byConversation: db.prepare(`SELECT ${listColumns} FROM tokens WHERE conversation_id = @partition
        AND minted_at < @before AND (minted_at, id) > (@afterAt, @afterId) ORDER BY minted_at, id LIMIT @limit`),
    inFlight: db.prepare(
      `SELECT COUNT(*) AS count, MIN(minted_at) AS oldest FROM tokens WHERE status IN ${IN_FLIGHT}`,
    ),
    purge: db.prepare(`DELETE FROM tokens WHERE id IN (SELECT id FROM tokens WHERE status IN ${ENDED}
        AND retain_until IS NOT NULL AND retain_until <= ? LIMIT ?)`),
  };
}

function isBusy(error: unknown): boolean {
  return (
    error instanceof Error &&
    'code' in error &&
    (error.code === 'SQLITE_BUSY' || error.code === 'SQLITE_LOCKED' || error.code === 'SQLITE_BUSY_SNAPSHOT')
  );
}

function assertDistinctKeys(keys: string[]): void {
  if (new Set(keys).size !== keys.length) {
    throw new InvalidArgumentError('a commit may write each state key once');
  }
}

function toRow(token: TokenRecord): TokenRow {
  return {
    id: token.id,
    conversation_id: token.conversationId,
    parent_id: token.parentId ?? null,
    minted_by: token.mintedBy,
    medium: token.destination?.medium ?? null,
    destination: token.destination ? JSON.stringify(token.destination) : null,
    fingerprint: token.fingerprint ?? null,
    payload: token.payload === undefined ? null : JSON.stringify(token.payload),
    headers: token.headers ? JSON.stringify(token.headers) : null,
    status: token.status,
    minted_at: token.mintedAt,
    dispatched_at: token.dispatchedAt ?? null,
    attempts: token.attempts,
    expires_at: token.expiresAt ?? null,
    consumed_at: token.consumedAt ?? null,
    consumed_by: token.consumedBy ?? null,
    response: token.response ? JSON.stringify(token.response) : null,
    lease_until: token.leaseUntil ?? null,
    retain_until: token.retainUntil ?? null,
  };
}

function fromRow(row: TokenRow): TokenRecord {
  const token: TokenRecord = {
    id: row.id,
    conversationId: row.conversation_id,
    mintedBy: row.minted_by,
    status: row.status,
    mintedAt: row.minted_at,
    attempts: row.attempts,
  };
  if (row.parent_id !== null) token.parentId = row.parent_id;
  if (row.destination !== null) token.destination = JSON.parse(row.destination);
  if (row.fingerprint !== null) token.fingerprint = row.fingerprint;
  if (row.payload !== null) token.payload = JSON.parse(row.payload);
  if (row.headers !== null) token.headers = JSON.parse(row.headers);
  if (row.dispatched_at !== null) token.dispatchedAt = row.dispatched_at;
  if (row.expires_at !== null) token.expiresAt = row.expires_at;
  if (row.consumed_at !== null) token.consumedAt = row.consumed_at;
  if (row.consumed_by !== null) token.consumedBy = row.consumed_by;
  if (row.response !== null) token.response = JSON.parse(row.response);
  if (row.lease_until !== null) token.leaseUntil = row.lease_until;
  if (row.retain_until !== null) token.retainUntil = row.retain_until;
  return token;
}
