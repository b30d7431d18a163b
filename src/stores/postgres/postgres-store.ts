import type { PoolClient } from 'pg';
import {
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
  DueClaimOptions,
  HopWrites,
  InFlightStats,
  InteractiveOwnData,
  IssueResult,
  ListOptions,
  OpenTransaction,
  Page,
  StateItem,
  TokenClaimOptions,
  TokenStore,
} from '../../core/store.js';
import { sourcesOf, type TokenRecord, type TokenStatus } from '../../core/token.js';
import { firstDuplicate } from '../first-duplicate.js';
import { statusCountsOf } from '../status-counts.js';
import { fromTuple, type TokenTuple, tokenValues } from '../token-tuple.js';
import {
  assertDistinctKeys,
  classifyUnconsumable,
  isTakenId,
  refusable,
  stage,
  takenIdFailure,
  takenIds,
} from './commit-steps.js';
import { commitOrFailure, exec, pipelined } from './connection.js';
import { commitFailure, conflictIn, HOW_TO_CREATE, isRetriable, storeError, verdictOf } from './failures.js';
import { codeOf, HopTransaction, IN_FAILED_TRANSACTION, type PgTx } from './hop-transaction.js';
import { listPage, listScheduled } from './listing.js';
import { checkOptions, type PostgresStoreOptions } from './options.js';
import { StoreConnections } from './pool.js';
import { byMintedAtThenId, tokenColumns } from './rows.js';
import { claimDue, revokeStaged } from './scheduling.js';
import { DEFAULT_SCHEMA, migrationSql, qualifier, SCHEMA_VERSION } from './schema.js';
import { BEGIN_HOP, type Statements, statements } from './statements.js';

// Other modules import the handler's transaction and the options from here.
export type { PgTx } from './hop-transaction.js';
export type { PostgresStoreOptions } from './options.js';

/** Rows one purge statement deletes: bounds the time its row locks are held and the WAL of one commit. */
const PURGE_BATCH = 1000;
const REVOCABLE = sourcesOf('revoked');

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
  private readonly db: StoreConnections;
  private readonly retentionMs: number;
  private readonly sql: Statements;

  constructor(options: PostgresStoreOptions) {
    const { retentionMs, pool } = checkOptions(options);
    this.schema = options.schema ?? DEFAULT_SCHEMA;
    this.retentionMs = retentionMs;
    this.sql = statements(qualifier(this.schema));
    this.db = new StoreConnections(pool);
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
    await this.db.run('ensureSchema', async (client) => {
      for (let version = 1; version <= SCHEMA_VERSION; version++) {
        try {
          await client.query(migrationSql(version, this.schema));
        } catch (error) {
          // The migration's explicit transaction is left aborted: never hand this connection out again.
          this.db.markBroken(client);
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
      this.db.ensureOpen();
      return undefined;
    }
    const { rows } = await this.db.run('getToken', (client) => exec(client, this.sql.getToken, [id]));
    const row = rows[0];
    return row ? fromTuple(row as TokenTuple) : undefined;
  }

  async readState(key: string): Promise<StateItem | undefined> {
    return this.db.run('readState', (client) => readStateOn(client, this.sql, key));
  }

  async mint(tokens: TokenRecord[]): Promise<void> {
    this.db.ensureOpen();
    if (tokens.length === 0) return;
    const duplicate = firstDuplicate(tokens.map((t) => t.id));
    if (duplicate !== undefined) throw new TokenExistsError(duplicate, 'id taken');
    // One INSERT is atomic on its own: all tokens or none, no transaction needed.
    await this.db.run('mint', async (client) => {
      try {
        // A single token, the usual edge mint, goes as one row: cheaper to encode, parse and plan than arrays.
        if (tokens.length === 1) await exec(client, this.sql.mintOne, tokenValues(tokens[0] as TokenRecord));
        else await exec(client, this.sql.mint, tokenColumns(tokens));
      } catch (error) {
        if (verdictOf(error) !== 'duplicate') throw error;
        const ids = tokens.map((t) => t.id);
        const taken = await takenIds(client, this.sql, ids);
        throw new TokenExistsError(ids.find((id) => taken.has(id)) ?? (ids[0] as string), 'id taken');
      }
    });
  }

  async issue(token: TokenRecord): Promise<IssueResult> {
    return this.db.run('issue', async (client) => {
      // Insert unless taken, else read; a token purged between the two is inserted on the next round.
      for (let round = 0; round < 3; round++) {
        const inserted = await exec(client, this.sql.issueOne, tokenValues(token));
        if (inserted.rowCount === 1) return { created: true, token };
        const { rows } = await exec(client, this.sql.getToken, [token.id]);
        if (rows[0]) return { created: false, existing: fromTuple(rows[0] as TokenTuple) };
      }
      throw new TokenExistsError(token.id, 'id kept being taken and purged');
    });
  }

  async commit(request: CommitRequest): Promise<CommitResult> {
    assertDistinctKeys(request.writes);
    const { consume, writes, mints, revokes, now } = request;
    let client: PoolClient;
    try {
      client = await this.db.acquire('commit');
    } catch (error) {
      return { ok: false, failure: commitFailure(error, { connecting: true }) };
    }
    let destroy = false;
    try {
      if (writes.length === 0 && mints.length === 0 && !revokes?.length) {
        // The consume alone is one atomic statement: no transaction around it.
        const consumed = await exec(client, this.sql.consume, this.consumeValues(consume, now, true));
        if (consumed.rowCount === 1) return { ok: true };
        return { ok: false, failure: await classifyUnconsumable(client, this.sql, consume, now) };
      }
      await client.query('BEGIN');
      const failure =
        (await this.consume(client, consume, now, true)) ??
        (await stage(client, this.sql, writes, mints)) ??
        (await revokeStaged(client, this.sql, revokes, now + this.retentionMs));
      if (failure) {
        await client.query('ROLLBACK');
        return { ok: false, failure };
      }
      return await commitOrFailure(client);
    } catch (error) {
      destroy = await this.db.abandon(client);
      if (!destroy && isTakenId(error))
        return { ok: false, failure: await takenIdFailure(client, this.sql, mints) };
      return { ok: false, failure: commitFailure(error, this.db.context(client)) };
    } finally {
      this.db.release(client, destroy);
    }
  }

  async markDispatched(ids: string[], now: number): Promise<number> {
    if (ids.length === 0) {
      this.db.ensureOpen();
      return 0;
    }
    const { rowCount } = await this.db.run('markDispatched', (client) =>
      exec(client, this.sql.markDispatched, [ids, now]),
    );
    return rowCount;
  }

  async revoke(id: string, now: number): Promise<TokenRecord> {
    if (!isStorableText(id)) {
      this.db.ensureOpen();
      throw new UnknownTokenError(id);
    }
    return this.db.run('revoke', async (client) => {
      for (let round = 0; round < 3; round++) {
        const { rows } = await exec(client, this.sql.revoke, [id, now + this.retentionMs]);
        if (rows[0]) return fromTuple(rows[0] as TokenTuple);
        const check = await exec(client, this.sql.checkToken, [id]);
        const status = check.rows[0]?.[0] as TokenStatus | undefined;
        if (status === undefined) throw new UnknownTokenError(id);
        if (!REVOCABLE.includes(status)) throw new InvalidTransitionError(id, status, 'revoked');
        // Minted between the two statements: try again.
      }
      throw new StoreFailureError(`token ${id} could not be revoked`, { tokenId: id });
    });
  }

  async expireIssued(now: number, limit = 1000): Promise<number> {
    const { rowCount } = await this.db.run('expireIssued', (client) =>
      exec(client, this.sql.expire, [now + this.retentionMs, now, limit]),
    );
    return rowCount;
  }

  async claimPending(options: ClaimOptions): Promise<TokenRecord[]> {
    const { mintedBefore, now, leaseMs, limit, medium } = options;
    const { rows } = await this.db.run('claimPending', (client) =>
      exec(client, this.sql.claim, [mintedBefore, now, medium ?? null, limit, now + leaseMs]),
    );
    // RETURNING follows no order: oldest first, as the other stores answer.
    return rows.map((row) => fromTuple(row as TokenTuple)).sort(byMintedAtThenId);
  }

  async claimDue(options: DueClaimOptions): Promise<TokenRecord[]> {
    return claimDue(this.db, this.sql, options);
  }

  async claimToken(id: string, options: TokenClaimOptions): Promise<TokenRecord | undefined> {
    if (!isStorableText(id)) {
      this.db.ensureOpen();
      return undefined;
    }
    const { now, leaseMs, medium } = options;
    const { rows } = await this.db.run('claimToken', (client) =>
      exec(client, this.sql.claimToken, [id, now + leaseMs, medium ?? null]),
    );
    const row = rows[0];
    return row ? fromTuple(row as TokenTuple) : undefined;
  }

  async releaseLease(id: string): Promise<void> {
    if (!isStorableText(id)) return this.db.ensureOpen();
    await this.db.run('releaseLease', (client) => exec(client, this.sql.releaseLease, [id]));
  }

  async listByStatus(status: TokenStatus, options: ListOptions = {}): Promise<Page<TokenRecord>> {
    if (status === 'scheduled') return listScheduled(this.db, this.sql, options);
    return listPage(this.db, this.sql.byStatus, status, options);
  }

  async listConversation(conversationId: string, options: ListOptions = {}): Promise<Page<TokenRecord>> {
    return listPage(this.db, this.sql.byConversation, conversationId, options);
  }

  async inFlightStats(): Promise<InFlightStats> {
    const { rows } = await this.db.run('inFlightStats', (client) => exec(client, this.sql.inFlight, []));
    const [count, oldest] = (rows[0] ?? [0, null]) as [number, number | null];
    return oldest === null ? { count } : { count, oldestMintedAt: oldest };
  }

  async statusCounts(): Promise<Record<TokenStatus, number>> {
    const { rows } = await this.db.run('statusCounts', (client) => exec(client, this.sql.statusCounts, []));
    return statusCountsOf(rows as Array<[string, number]>);
  }

  async purge(now: number, limit = 10_000): Promise<number> {
    // Only a token minted at least one retention ago can be due (it ended after it was minted): bounding
    // minted_at lets the status index skip the tombstones still kept, whose number grows with traffic.
    // Deleted in batches, each its own short transaction.
    let purged = 0;
    while (purged < limit) {
      const batch = Math.min(PURGE_BATCH, limit - purged);
      const { rowCount } = await this.db.run('purge', (client) =>
        exec(client, this.sql.purge, [now - this.retentionMs, now, batch]),
      );
      purged += rowCount;
      if (rowCount < batch) break;
    }
    return purged;
  }

  async ping(): Promise<void> {
    await this.db.run('ping', (client) => client.query('SELECT 1'));
  }

  /**
   * Closes the pool. Work already running gets its answer; a hop still running after its grace period has its
   * connection cut, which rolls its transaction back: nothing of it is written.
   */
  async close(): Promise<void> {
    return this.db.close();
  }

  /** The hop as one transaction, for `ownData.transact` (see InteractiveOwnData). */
  private async transact<T>(
    consume: ConsumeRequest,
    now: number,
    body: (open: OpenTransaction<PgTx>) => Promise<HopWrites<T>>,
  ): Promise<{ ok: true; value: T } | { ok: false; failure: CommitFailure }> {
    const client = await this.db.acquire('transact');
    const tx = new HopTransaction(client);
    let destroy = false;
    let token: TokenRecord;
    try {
      // 1. Consume first: from here on the token's row is locked until commit or rollback.
      try {
        // BEGIN and the consume go out together: one round trip where the connection pipelines.
        const [, consumed] = await pipelined(
          client,
          () => client.query(BEGIN_HOP),
          () => exec(client, this.sql.consumeReading, this.consumeValues(consume, now, false)),
        );
        const prior = consumed.rows[0] as TokenTuple | undefined;
        if (prior === undefined) {
          const failure = await classifyUnconsumable(client, this.sql, consume, now);
          await client.query('ROLLBACK');
          return { ok: false, failure };
        }
        token = fromTuple(prior);
      } catch (error) {
        const failure = commitFailure(error, this.db.context(client));
        destroy = await this.db.abandon(client);
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
              (error) => storeError(error, 'readState', this.db.context(client)),
            ),
        });
      } catch (error) {
        tx.close();
        const retry = this.retryCause(client, tx, error);
        destroy = await this.db.abandon(client);
        if (retry !== undefined) return { ok: false, failure: { kind: 'transient', cause: retry } };
        throw error;
      }
      tx.close();

      // 3. What the handler staged, then commit.
      try {
        assertDistinctKeys(hop.writes);
        const response = hop.response && { tokenId: consume.tokenId, value: hop.response };
        if (!refusable(hop.writes) && !hop.revokes?.length) {
          // Whatever goes wrong in the stage fails it, and turns the COMMIT behind it into a rollback: the two
          // go out together.
          const [, committed] = await pipelined(
            client,
            () => stage(client, this.sql, hop.writes, hop.mints, response),
            () => commitOrFailure(client, tx.failure),
          );
          return committed.ok ? { ok: true, value: hop.value } : committed;
        }
        const failure =
          (await stage(client, this.sql, hop.writes, hop.mints, response)) ??
          (await revokeStaged(client, this.sql, hop.revokes, now + this.retentionMs));
        if (failure) {
          await client.query('ROLLBACK');
          return { ok: false, failure };
        }
        const committed = await commitOrFailure(client, tx.failure);
        return committed.ok ? { ok: true, value: hop.value } : committed;
      } catch (error) {
        destroy = await this.db.abandon(client);
        if (error instanceof TollgateError) throw error;
        if (!destroy && isTakenId(error)) {
          return { ok: false, failure: await takenIdFailure(client, this.sql, hop.mints) };
        }
        // A statement refused because the handler left the transaction aborted: the handler's error says why.
        const cause =
          codeOf(error) === IN_FAILED_TRANSACTION && tx.failure !== undefined ? tx.failure : error;
        return { ok: false, failure: commitFailure(cause, this.db.context(client)) };
      }
    } finally {
      tx.close();
      this.db.release(client, destroy);
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
    if (this.db.isBroken(client)) return tx.failure ?? error;
    if (tx.failure !== undefined && isRetriable(verdictOf(tx.failure, this.db.context(client))))
      return tx.failure;
    return conflictIn(error);
  }

  private async schemaVersion(): Promise<number | undefined> {
    try {
      const { rows } = await this.db.run('schema check', (client) =>
        exec(client, this.sql.schemaVersion, []),
      );
      const value = rows[0]?.[0];
      return value === undefined ? undefined : Number(value);
    } catch (error) {
      if (error instanceof StoreSchemaMissingError) return undefined;
      throw error;
    }
  }
}

async function readStateOn(client: PoolClient, sql: Statements, key: string): Promise<StateItem | undefined> {
  const { rows } = await exec(client, sql.getState, [key]);
  const row = rows[0] as [string, number] | undefined;
  return row ? { key, value: JSON.parse(row[0]) as JsonValue, version: row[1] } : undefined;
}

/** PostgreSQL text cannot hold NUL: no stored id has one, so a lookup by such an id finds nothing. */
function isStorableText(value: string): boolean {
  return typeof value === 'string' && !value.includes('\0');
}
