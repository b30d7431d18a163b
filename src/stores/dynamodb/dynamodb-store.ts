import {
  DeleteItemCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type QueryCommandInput,
  type TransactWriteItem,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  ClosedError,
  ConfigError,
  InvalidArgumentError,
  InvalidTransitionError,
  StoreUnavailableError,
  TokenExistsError,
  TollgateError,
  UnknownTokenError,
} from '../../core/errors.js';
import type {
  ClaimOptions,
  CommitFailure,
  CommitRequest,
  CommitResult,
  ConsumeRequest,
  InFlightStats,
  IssueResult,
  ListOptions,
  Page,
  StagedOwnData,
  StateItem,
  StateWrite,
  TokenStore,
} from '../../core/store.js';
import { IN_FLIGHT_STATUSES, LIVE_STATUSES, type TokenRecord, type TokenStatus } from '../../core/token.js';
import { decodeCursor, encodeCursor, pageLimit } from '../paging.js';
import { mapBounded } from './bounded.js';
import { Expr } from './expression.js';
import {
  cancellationIsTransient,
  classifyCommitError,
  consumeFailure,
  isConditionFailure,
  isTransientError,
  sdkError,
  storeError,
} from './failures.js';
import {
  checkItemSize,
  checkTransaction,
  estimateWriteSize,
  itemSize,
  TOMBSTONE_ALLOWANCE_BYTES,
} from './limits.js';
import {
  type Item,
  itemToState,
  itemToToken,
  MAX_SORT_INSTANT,
  MAX_STATUS_SHARDS,
  n,
  STATE_ATTR,
  s,
  sortKey,
  sortUpperBound,
  sortUpperBoundAtOrBefore,
  stateKeyOf,
  stateValueText,
  statusPartition,
  statusPartitions,
  TOKEN_ATTR,
  tokenToItem,
} from './marshal.js';
import { type DynamoTx, OwnDataAccess, type PreparedOwnAction } from './own-data.js';
import { ensureTables, INDEX } from './tables.js';

export interface DynamoDbStoreOptions {
  /** A client to use (not destroyed by close()). Otherwise one is created from clientConfig. */
  client?: DynamoDBClient;
  /** Endpoint, region, credentials... of the client the store creates (ignored when `client` is given). */
  clientConfig?: DynamoDBClientConfig;
  tokensTable: string;
  stateTable: string;
  /** How long consumed, expired and revoked tokens are kept before purge / TTL. Default 24 h. */
  tombstoneRetentionMs?: number;
  /** Create the tables if missing and enable TTL (DynamoDB Local, development). Default false. */
  createTables?: boolean;
  /** Single-item requests run in parallel by markDispatched, claimPending, expireIssued, purge. Default 16. */
  concurrency?: number;
  /**
   * Partition key values per status in the byStatus index (1 to 64). Default 1. One value is served by one
   * DynamoDB partition (about 1 000 writes/s), and each hop writes the `pending` value about three times: above
   * a few hundred hops per second, use more. May grow on a live table, never shrink (see README).
   */
  statusShards?: number;
}

const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;
const ENDED_STATUSES: readonly TokenStatus[] = ['consumed', 'expired', 'revoked'];
/** Key of the item ping() reads: any key works, an absent item costs the same half read unit. */
const PING_KEY = 'tollgate-ping';

function assertTime(name: string, value: number): void {
  if (!Number.isFinite(value)) {
    throw new InvalidArgumentError(`${name} must be a finite number`, { [name]: value });
  }
}

/** An id that could name a stored token (tokenToItem refuses to store others). */
function isStorableId(id: string): boolean {
  return typeof id === 'string' && id.length > 0 && Buffer.byteLength(sortKey(0, id)) <= 1024;
}

/**
 * The production store: tokens and state in two DynamoDB tables, one TransactWriteItems per commit.
 *
 * Reads of single items are strongly consistent. Listing, relay claims, sweeps and stats read the global
 * secondary indexes, which are eventually consistent: they may briefly miss a fresh token or show a stale
 * status, so every write they lead to is conditional on the item's current state.
 */
export class DynamoDbTokenStore implements TokenStore<DynamoTx> {
  readonly kind = 'dynamodb';
  readonly client: DynamoDBClient;
  /**
   * Handlers' own tables (`ctx.tx`, a DynamoTx): reads now, writes staged into the hop's TransactWriteItems,
   * after the consume, the state writes and the mints.
   */
  readonly ownData: StagedOwnData<DynamoTx>;
  private readonly own: OwnDataAccess;
  private readonly ownsClient: boolean;
  readonly tokensTable: string;
  readonly stateTable: string;
  private readonly retentionMs: number;
  private readonly concurrency: number;
  private readonly statusShards: number;
  private closed = false;

  constructor(options: DynamoDbStoreOptions) {
    if (!options.tokensTable) throw new ConfigError('tokensTable', 'is required');
    if (!options.stateTable) throw new ConfigError('stateTable', 'is required');
    // Also guards commits: DynamoDB refuses two actions on one item, and keys of the two could then meet.
    if (options.tokensTable === options.stateTable) {
      throw new ConfigError('stateTable', 'must differ from tokensTable');
    }
    const retention = options.tombstoneRetentionMs ?? DEFAULT_RETENTION_MS;
    if (!Number.isSafeInteger(retention) || retention < 0) {
      throw new ConfigError('tombstoneRetentionMs', 'must be a non-negative integer');
    }
    const concurrency = options.concurrency ?? 16;
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      throw new ConfigError('concurrency', 'must be a positive integer');
    }
    const statusShards = options.statusShards ?? 1;
    if (!Number.isSafeInteger(statusShards) || statusShards < 1 || statusShards > MAX_STATUS_SHARDS) {
      throw new ConfigError('statusShards', `must be an integer from 1 to ${MAX_STATUS_SHARDS}`);
    }
    this.statusShards = statusShards;
    this.tokensTable = options.tokensTable;
    this.stateTable = options.stateTable;
    this.retentionMs = retention;
    this.concurrency = concurrency;
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? new DynamoDBClient(options.clientConfig ?? {});
    this.own = new OwnDataAccess({
      client: this.client,
      reservedTables: [this.tokensTable, this.stateTable],
      run: (operation, work) => this.run(operation, work),
    });
    this.ownData = this.own.ownData;
  }

  /** Creates the store and, if asked, its tables (waiting until they are ACTIVE). */
  static async open(options: DynamoDbStoreOptions): Promise<DynamoDbTokenStore> {
    const store = new DynamoDbTokenStore(options);
    if (options.createTables) {
      try {
        await ensureTables(store.client, {
          tokensTable: options.tokensTable,
          stateTable: options.stateTable,
        });
      } catch (error) {
        await store.close();
        throw storeError(error, 'ensureTables');
      }
    }
    return store;
  }

  async getToken(id: string): Promise<TokenRecord | undefined> {
    if (!isStorableId(id)) {
      this.ensureOpen();
      return undefined;
    }
    return this.run('GetItem', async () => {
      const out = await this.client.send(
        new GetItemCommand({
          TableName: this.tokensTable,
          Key: { [TOKEN_ATTR.id]: s(id) },
          ConsistentRead: true,
        }),
      );
      return out.Item ? itemToToken(out.Item) : undefined;
    });
  }

  async readState(key: string): Promise<StateItem | undefined> {
    const Key = stateKeyOf(key);
    return this.run('GetItem', async () => {
      const out = await this.client.send(
        new GetItemCommand({ TableName: this.stateTable, Key, ConsistentRead: true }),
      );
      return out.Item ? itemToState(out.Item) : undefined;
    });
  }

  async mint(tokens: TokenRecord[]): Promise<void> {
    this.ensureOpen();
    if (tokens.length === 0) return;
    const duplicate = firstDuplicate(tokens.map((t) => t.id));
    if (duplicate !== undefined) throw new TokenExistsError(duplicate, 'id taken');
    const puts = tokens.map((token) => this.mintPut(token));
    const sizes = puts.map((put, i) => ({ label: `token ${tokens[i]!.id}`, bytes: estimateWriteSize(put) }));

    if (puts.length === 1) {
      // One token needs no transaction (which would cost twice the write units).
      checkItemSize(sizes[0]!);
      const put = puts[0]!.Put!;
      return this.run('PutItem', async () => {
        try {
          await this.client.send(new PutItemCommand(put));
        } catch (error) {
          if (isConditionFailure(error)) throw new TokenExistsError(tokens[0]!.id, 'id taken');
          throw error;
        }
      });
    }

    checkTransaction(sizes);
    return this.run('TransactWriteItems', async () => {
      try {
        await this.client.send(new TransactWriteItemsCommand({ TransactItems: puts }));
      } catch (error) {
        const reasons = sdkError(error).CancellationReasons;
        const taken = reasons?.findIndex((r) => r.Code === 'ConditionalCheckFailed') ?? -1;
        if (taken >= 0) throw new TokenExistsError(tokens[taken]!.id, 'id taken');
        if (reasons !== undefined && cancellationIsTransient(reasons)) {
          throw new StoreUnavailableError(
            'DynamoDB cancelled the mint transaction; retry later',
            {},
            { cause: error },
          );
        }
        throw error;
      }
    });
  }

  async issue(token: TokenRecord): Promise<IssueResult> {
    this.ensureOpen();
    const put = this.mintPut(token).Put!;
    checkItemSize({ label: `token ${token.id}`, bytes: itemSize(put.Item!) });
    return this.run('PutItem', async () => {
      try {
        await this.client.send(
          new PutItemCommand({ ...put, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }),
        );
        return { created: true, token };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        const old = sdkError(error).Item;
        // Emulators that ignore ReturnValuesOnConditionCheckFailure send no item: read it instead.
        const existing = old ? itemToToken(old) : await this.getToken(token.id);
        if (existing === undefined) {
          throw new StoreUnavailableError('token vanished while issuing; retry', { tokenId: token.id });
        }
        return { created: false, existing };
      }
    });
  }

  async commit(request: CommitRequest): Promise<CommitResult> {
    this.ensureOpen();
    const { consume, writes, mints, now } = request;
    assertTime('now', now);
    const duplicateKey = firstDuplicate(writes.map((w) => w.key));
    if (duplicateKey !== undefined) {
      // DynamoDB refuses two actions on one item in a transaction; so does the SQLite store, for portability.
      throw new InvalidArgumentError('a commit may write each state key once', { key: duplicateKey });
    }
    if (!isStorableId(consume.tokenId)) return { ok: false, failure: { kind: 'token-missing' } };

    // A mint that reuses the consumed id or another mint's id would be a second action on one item, which
    // DynamoDB rejects as invalid. Report it as the SQLite store does: the token's own state first, then
    // the collision.
    const clash = firstDuplicate([consume.tokenId, ...mints.map((t) => t.id)]);
    if (clash !== undefined) return this.localMintCollision(consume, now, clash);

    // The handler's own actions go last. Preparing them may ask DynamoDB for a table's key schema; a failure
    // of that call is classified like one of the commit itself (nothing was written either way).
    let own: PreparedOwnAction[];
    try {
      own = await this.own.prepare(request.own ?? []);
    } catch (error) {
      if (error instanceof TollgateError && !(error instanceof StoreUnavailableError)) throw error;
      const failure: CommitFailure = isTransientError(error)
        ? { kind: 'transient', cause: error }
        : { kind: 'permanent', cause: error };
      return { ok: false, failure };
    }

    const actions: TransactWriteItem[] = [
      this.consumeUpdate(consume, now),
      ...writes.map((write) => this.stateAction(write)),
      ...mints.map((token) => this.mintPut(token)),
    ];
    const sizes = actions.map((action, i) => ({
      label:
        i === 0
          ? `token ${consume.tokenId}`
          : i <= writes.length
            ? `state ${writes[i - 1]!.key}`
            : `token ${mints[i - 1 - writes.length]!.id}`,
      // The consume update cannot see the attributes the tombstone keeps: reserve room for them.
      bytes: estimateWriteSize(action) + (i === 0 ? TOMBSTONE_ALLOWANCE_BYTES : 0),
    }));
    for (const action of own) {
      actions.push(action.write);
      sizes.push({ label: action.item, bytes: action.bytes });
    }
    checkTransaction(sizes);

    try {
      // The SDK fills in a ClientRequestToken once per send and reuses it on its own retries, so a retry
      // after a lost answer succeeds instead of failing on the token this very transaction consumed.
      await this.client.send(new TransactWriteItemsCommand({ TransactItems: actions }));
      return { ok: true };
    } catch (error) {
      return { ok: false, failure: classifyCommitError(error, request, own) };
    }
  }

  async markDispatched(ids: string[], now: number): Promise<number> {
    this.ensureOpen();
    assertTime('now', now);
    const unique = [...new Set(ids)].filter(isStorableId);
    const moved = await mapBounded(unique, this.concurrency, (id) =>
      this.run('UpdateItem', async () => {
        const e = new Expr();
        const status = e.name(TOKEN_ATTR.status);
        const dispatched = e.value(s('dispatched'));
        try {
          await this.client.send(
            new UpdateItemCommand({
              TableName: this.tokensTable,
              Key: { [TOKEN_ATTR.id]: s(id) },
              ConditionExpression: `${status} = ${e.value(s('pending'))}`,
              UpdateExpression:
                `SET ${status} = ${dispatched}, ` +
                `${e.name(TOKEN_ATTR.gsiStatus)} = ${e.value(s(statusPartition('dispatched', id, this.statusShards)))}, ` +
                `${e.name(TOKEN_ATTR.dispatchedAt)} = ${e.value(n(now))} REMOVE ${e.name(TOKEN_ATTR.leaseUntil)}`,
              ...e.params(),
            }),
          );
          return true;
        } catch (error) {
          // Not pending (any more, or never): already dispatched, consumed, revoked or unknown.
          if (isConditionFailure(error)) return false;
          throw error;
        }
      }),
    );
    return moved.filter(Boolean).length;
  }

  async revoke(id: string, now: number): Promise<TokenRecord> {
    this.ensureOpen();
    assertTime('now', now);
    if (!isStorableId(id)) throw new UnknownTokenError(id);
    return this.run('UpdateItem', async () => {
      const e = new Expr();
      try {
        const out = await this.client.send(
          new UpdateItemCommand({
            TableName: this.tokensTable,
            Key: { [TOKEN_ATTR.id]: s(id) },
            ConditionExpression: `attribute_exists(${e.name(TOKEN_ATTR.id)}) AND ${this.liveCondition(e)}`,
            UpdateExpression: this.endExpression(e, id, 'revoked', now),
            ReturnValues: 'ALL_NEW',
            ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
            ...e.params(),
          }),
        );
        return itemToToken(out.Attributes!);
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        const old = sdkError(error).Item;
        // Without the old item (emulators), one consistent read tells "unknown" from "ended".
        const current = old ? itemToToken(old) : await this.getToken(id);
        if (current === undefined) throw new UnknownTokenError(id);
        throw new InvalidTransitionError(id, current.status, 'revoked');
      }
    });
  }

  async expireIssued(now: number, limit = 1000): Promise<number> {
    this.ensureOpen();
    assertTime('now', now);
    if (limit < 1) return 0;
    const candidates = this.statusPages(
      'issued',
      (e, partition) => ({
        KeyConditionExpression: indexRange(e, TOKEN_ATTR.gsiStatus, partition, undefined),
        FilterExpression: `${e.name(TOKEN_ATTR.expiresAt)} <= ${e.value(n(now))}`,
      }),
      limit,
    );
    const expired = await this.claimEach(candidates, limit, (item) =>
      this.conditionalUpdate(item, (u) => ({
        ConditionExpression:
          `${u.name(TOKEN_ATTR.status)} = ${u.value(s('issued'))} AND ` +
          `${u.name(TOKEN_ATTR.expiresAt)} <= ${u.value(n(now))}`,
        UpdateExpression: this.endExpression(u, item[TOKEN_ATTR.id]!.S!, 'expired', now),
      })),
    );
    return expired.length;
  }

  async claimPending(options: ClaimOptions): Promise<TokenRecord[]> {
    this.ensureOpen();
    const { mintedBefore, now, leaseMs, limit, medium } = options;
    assertTime('mintedBefore', mintedBefore);
    assertTime('now', now);
    assertTime('leaseMs', leaseMs);
    if (limit < 1) return [];
    const upper = sortUpperBoundAtOrBefore(mintedBefore);
    if (upper === null) return [];

    const candidates = this.statusPages(
      'pending',
      (e, partition) => {
        const leaseUntil = e.name(TOKEN_ATTR.leaseUntil);
        const filters = [`(attribute_not_exists(${leaseUntil}) OR ${leaseUntil} < ${e.value(n(now))})`];
        if (medium !== undefined) filters.push(`${e.name(TOKEN_ATTR.medium)} = ${e.value(s(medium))}`);
        return {
          KeyConditionExpression: indexRange(e, TOKEN_ATTR.gsiStatus, partition, upper),
          FilterExpression: filters.join(' AND '),
        };
      },
      limit,
    );
    // The index may be stale: the lease is taken only if the token is still pending and unleased.
    return this.claimEach(candidates, limit, (item) =>
      this.conditionalUpdate(item, (u) => {
        const lease = u.name(TOKEN_ATTR.leaseUntil);
        const attempts = u.name(TOKEN_ATTR.attempts);
        const nowValue = u.value(n(now));
        return {
          ConditionExpression:
            `${u.name(TOKEN_ATTR.status)} = ${u.value(s('pending'))} AND ` +
            `(attribute_not_exists(${lease}) OR ${lease} < ${nowValue})`,
          UpdateExpression:
            `SET ${lease} = ${u.value(n(now + leaseMs))}, ` +
            `${attempts} = if_not_exists(${attempts}, ${u.value(n(0))}) + ${u.value(n(1))}`,
        };
      }),
    );
  }

  async releaseLease(id: string): Promise<void> {
    this.ensureOpen();
    if (!isStorableId(id)) return;
    await this.run('UpdateItem', async () => {
      const e = new Expr();
      try {
        await this.client.send(
          new UpdateItemCommand({
            TableName: this.tokensTable,
            Key: { [TOKEN_ATTR.id]: s(id) },
            // Without the condition, an update of an unknown id would create a stray item.
            ConditionExpression: `attribute_exists(${e.name(TOKEN_ATTR.id)})`,
            UpdateExpression: `REMOVE ${e.name(TOKEN_ATTR.leaseUntil)}`,
            ...e.params(),
          }),
        );
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
      }
    });
  }

  async listByStatus(status: TokenStatus, options: ListOptions = {}): Promise<Page<TokenRecord>> {
    return this.listIndex(
      INDEX.byStatus,
      TOKEN_ATTR.gsiStatus,
      statusPartitions(status, this.statusShards),
      options,
    );
  }

  async listConversation(conversationId: string, options: ListOptions = {}): Promise<Page<TokenRecord>> {
    if (conversationId === '') {
      pageLimit(options.limit);
      return { items: [] };
    }
    return this.listIndex(INDEX.byConversation, TOKEN_ATTR.gsiConv, [conversationId], options);
  }

  async inFlightStats(): Promise<InFlightStats> {
    this.ensureOpen();
    const partitions = IN_FLIGHT_STATUSES.flatMap((status) => statusPartitions(status, this.statusShards));
    const perStatus = await Promise.all(
      partitions.map(async (partition) => {
        const e = new Expr();
        const query = {
          TableName: this.tokensTable,
          IndexName: INDEX.byStatus,
          KeyConditionExpression: indexRange(e, TOKEN_ATTR.gsiStatus, partition, undefined),
          ...e.params(),
        };
        const count = await this.run('Query', async () => {
          let total = 0;
          let start: Item | undefined;
          do {
            const out = await this.client.send(
              new QueryCommand({ ...query, Select: 'COUNT', ExclusiveStartKey: start }),
            );
            total += out.Count ?? 0;
            start = out.LastEvaluatedKey;
          } while (start);
          return total;
        });
        const oldest = await this.run('Query', async () => {
          const out = await this.client.send(
            new QueryCommand({ ...query, Limit: 1, ScanIndexForward: true }),
          );
          const item = out.Items?.[0];
          return item ? itemToToken(item).mintedAt : undefined;
        });
        return { count, oldest };
      }),
    );
    const count = perStatus.reduce((sum, p) => sum + p.count, 0);
    const oldest = perStatus.map((p) => p.oldest).filter((m): m is number => m !== undefined);
    return oldest.length === 0 ? { count } : { count, oldestMintedAt: Math.min(...oldest) };
  }

  /**
   * Deletes ended tokens past their retention. DynamoDB's TTL deletes them too, but lazily (often days later)
   * and without guarantees, so the sweep remains the reference.
   *
   * A tombstone is kept until its end plus the retention, and a token ends after it is minted, so only tokens
   * minted at least one retention ago can be due. The index range stops there: a sweep reads the tombstones
   * that may be due, not every tombstone kept (which grows with traffic, and every relay sweeps). A tombstone
   * written by a process with a shorter retention is swept once this bound reaches it (TTL may come first).
   */
  async purge(now: number, limit = 1000): Promise<number> {
    this.ensureOpen();
    assertTime('now', now);
    const upper = sortUpperBoundAtOrBefore(now - this.retentionMs);
    if (upper === null) return 0;
    let purged = 0;
    for (const status of ENDED_STATUSES) {
      if (purged >= limit) break;
      const candidates = this.statusPages(
        status,
        (e, partition) => ({
          KeyConditionExpression: indexRange(e, TOKEN_ATTR.gsiStatus, partition, upper),
          FilterExpression: `${e.name(TOKEN_ATTR.retainUntil)} <= ${e.value(n(now))}`,
        }),
        limit - purged,
      );
      const deleted = await this.claimEach(candidates, limit - purged, (item) =>
        this.run('DeleteItem', async () => {
          const d = new Expr();
          try {
            await this.client.send(
              new DeleteItemCommand({
                TableName: this.tokensTable,
                Key: { [TOKEN_ATTR.id]: item[TOKEN_ATTR.id]! },
                ConditionExpression:
                  `${d.name(TOKEN_ATTR.status)} = ${d.value(s(status))} AND ` +
                  `${d.name(TOKEN_ATTR.retainUntil)} <= ${d.value(n(now))}`,
                ...d.params(),
              }),
            );
            return true;
          } catch (error) {
            if (isConditionFailure(error)) return undefined;
            throw error;
          }
        }),
      );
      purged += deleted.length;
    }
    return purged;
  }

  async ping(): Promise<void> {
    await this.run('GetItem', async () => {
      await this.client.send(
        new GetItemCommand({
          TableName: this.tokensTable,
          Key: { [TOKEN_ATTR.id]: s(PING_KEY) },
          ProjectionExpression: '#id',
          ExpressionAttributeNames: { '#id': TOKEN_ATTR.id },
        }),
      );
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsClient) this.client.destroy();
  }

  // ---------------------------------------------------------------------------------------------------------

  private ensureOpen(): void {
    if (this.closed) throw new ClosedError('DynamoDB token store');
  }

  private async run<T>(operation: string, work: () => Promise<T>): Promise<T> {
    this.ensureOpen();
    try {
      return await work();
    } catch (error) {
      throw storeError(error, operation);
    }
  }

  private mintPut(token: TokenRecord): TransactWriteItem {
    const e = new Expr();
    return {
      Put: {
        TableName: this.tokensTable,
        Item: tokenToItem(token, this.retentionMs, this.statusShards),
        ConditionExpression: `attribute_not_exists(${e.name(TOKEN_ATTR.id)})`,
        ...e.params(),
      },
    };
  }

  /** `#status IN (issued, pending, dispatched)` */
  private liveCondition(e: Expr): string {
    return `${e.name(TOKEN_ATTR.status)} IN (${LIVE_STATUSES.map((st) => e.value(s(st))).join(', ')})`;
  }

  /**
   * Moves a token to an ended status: the tombstone keeps its identity and history for the retention, and
   * drops the payload, headers and lease.
   */
  private endExpression(
    e: Expr,
    id: string,
    status: TokenStatus,
    now: number,
    extraSets: string[] = [],
  ): string {
    const retainUntil = now + this.retentionMs;
    const sets = [
      `${e.name(TOKEN_ATTR.status)} = ${e.value(s(status))}`,
      `${e.name(TOKEN_ATTR.gsiStatus)} = ${e.value(s(statusPartition(status, id, this.statusShards)))}`,
      `${e.name(TOKEN_ATTR.retainUntil)} = ${e.value(n(retainUntil))}`,
      `${e.name(TOKEN_ATTR.ttl)} = ${e.value(n(Math.ceil(retainUntil / 1000)))}`,
      ...extraSets,
    ];
    const removes = [TOKEN_ATTR.payload, TOKEN_ATTR.headers, TOKEN_ATTR.leaseUntil].map((a) => e.name(a));
    return `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`;
  }

  /** Item 0 of a commit: consume the incoming token if it exists, is live, unexpired and bound to this payload. */
  private consumeUpdate(consume: ConsumeRequest, now: number): TransactWriteItem {
    const e = new Expr();
    const expiresAt = e.name(TOKEN_ATTR.expiresAt);
    const fingerprint = e.name(TOKEN_ATTR.fingerprint);
    const nowValue = e.value(n(now));
    const sets = [
      `${e.name(TOKEN_ATTR.consumedAt)} = ${nowValue}`,
      `${e.name(TOKEN_ATTR.consumedBy)} = ${e.value(s(consume.consumedBy))}`,
    ];
    if (consume.commitId !== undefined) {
      sets.push(`${e.name(TOKEN_ATTR.commitId)} = ${e.value(s(consume.commitId))}`);
    }
    if (consume.response !== undefined) {
      sets.push(`${e.name(TOKEN_ATTR.response)} = ${e.value(s(JSON.stringify(consume.response)))}`);
    }
    return {
      Update: {
        TableName: this.tokensTable,
        Key: { [TOKEN_ATTR.id]: s(consume.tokenId) },
        ConditionExpression: [
          `attribute_exists(${e.name(TOKEN_ATTR.id)})`,
          this.liveCondition(e),
          `(attribute_not_exists(${expiresAt}) OR ${expiresAt} > ${nowValue})`,
          `(attribute_not_exists(${fingerprint}) OR ${fingerprint} = ${e.value(s(consume.fingerprint))})`,
        ].join(' AND '),
        UpdateExpression: this.endExpression(e, consume.tokenId, 'consumed', now, sets),
        // The record as it was when the condition failed comes back in the cancellation reason, so the
        // failure is classified without a second read (and without a race against that read).
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        ...e.params(),
      },
    };
  }

  /** One state write of a commit (see StateWrite for the three cases). */
  private stateAction(write: StateWrite): TransactWriteItem {
    const Key = stateKeyOf(write.key);
    const expected = write.expectedVersion;
    const e = new Expr();
    let condition: string | undefined;
    if (expected !== undefined) {
      if (!Number.isSafeInteger(expected) || expected < 0) {
        throw new InvalidArgumentError('expectedVersion must be a non-negative integer', { key: write.key });
      }
      condition =
        expected === 0
          ? `attribute_not_exists(${e.name(STATE_ATTR.key)})`
          : `${e.name(STATE_ATTR.version)} = ${e.value(n(expected))}`;
    }
    const conditional = condition === undefined ? {} : { ConditionExpression: condition };

    if (write.value === undefined) {
      return { Delete: { TableName: this.stateTable, Key, ...conditional, ...e.params() } };
    }
    const text = stateValueText(write.key, write.value);
    if (expected !== undefined) {
      const Item = { ...Key, [STATE_ATTR.value]: s(text), [STATE_ATTR.version]: n(expected + 1) };
      return { Put: { TableName: this.stateTable, Item, ...conditional, ...e.params() } };
    }
    // Blind write: whatever the version was, it goes up by one (an absent item counts as version 0).
    const version = e.name(STATE_ATTR.version);
    return {
      Update: {
        TableName: this.stateTable,
        Key,
        UpdateExpression:
          `SET ${e.name(STATE_ATTR.value)} = ${e.value(s(text))}, ` +
          `${version} = if_not_exists(${version}, ${e.value(n(0))}) + ${e.value(n(1))}`,
        ...e.params(),
      },
    };
  }

  /** Two actions on one id in a commit: answer like the SQLite store would, without sending anything. */
  private async localMintCollision(
    consume: ConsumeRequest,
    now: number,
    tokenId: string,
  ): Promise<CommitResult> {
    let token: TokenRecord | undefined;
    try {
      token = await this.getToken(consume.tokenId);
    } catch (error) {
      const failure: CommitFailure = isTransientError(error)
        ? { kind: 'transient', cause: error }
        : { kind: 'permanent', cause: error };
      return { ok: false, failure };
    }
    return { ok: false, failure: consumeFailure(token, consume, now) ?? { kind: 'mint-collision', tokenId } };
  }

  /**
   * Pages of a byStatus/byConversation query, oldest first, from `start` (exclusive) when given. `pageSize`
   * is asked before each page.
   */
  private async *indexPages(
    query: Omit<QueryCommandInput, 'TableName'>,
    pageSize: () => number,
    start?: Item,
  ): AsyncGenerator<Item[]> {
    do {
      const out = await this.run('Query', () =>
        this.client.send(
          new QueryCommand({
            ...query,
            TableName: this.tokensTable,
            ScanIndexForward: true,
            Limit: pageSize(),
            ExclusiveStartKey: start,
          }),
        ),
      );
      yield out.Items ?? [];
      start = out.LastEvaluatedKey;
    } while (start);
  }

  /**
   * `indexPages` over every byStatus partition of a status. The shards are read side by side, a page of each
   * per step, merged oldest first: no shard waits behind another's backlog.
   */
  private async *statusPages(
    status: TokenStatus,
    query: (
      e: Expr,
      partition: string,
    ) => Pick<QueryCommandInput, 'KeyConditionExpression' | 'FilterExpression'>,
    wanted: number,
  ): AsyncGenerator<Item[]> {
    const pagesOf = (partition: string) => {
      const e = new Expr();
      // DynamoDB applies Limit before the filter: ask for more than wanted, as a filter may drop some.
      const pageSize = Math.min(1000, Math.max(50, wanted * 2));
      return this.indexPages(
        { IndexName: INDEX.byStatus, ...query(e, partition), ...e.params() },
        () => pageSize,
      );
    };
    let shards = statusPartitions(status, this.statusShards).map(pagesOf);
    try {
      while (shards.length > 0) {
        const steps = await Promise.all(shards.map((pages) => pages.next()));
        shards = shards.filter((_, i) => !steps[i]!.done);
        const page = steps.flatMap((step) => (step.done ? [] : step.value)).sort(bySortKey);
        if (page.length > 0) yield page;
      }
    } finally {
      await Promise.all(shards.map((pages) => pages.return(undefined)));
    }
  }

  /**
   * Tries `attempt` on candidates in order until `limit` succeeded. Runs them in parallel, but never more
   * than are still needed, so no item is changed beyond the limit (a claimed lease nobody returns would
   * delay that token for a whole lease).
   */
  private async claimEach<T>(
    pages: AsyncGenerator<Item[]>,
    limit: number,
    attempt: (item: Item) => Promise<T | undefined>,
  ): Promise<T[]> {
    const results: T[] = [];
    for await (const page of pages) {
      let next = 0;
      while (next < page.length && results.length < limit) {
        const chunk = page.slice(next, next + Math.min(limit - results.length, this.concurrency));
        next += chunk.length;
        for (const outcome of await mapBounded(chunk, chunk.length, attempt)) {
          if (outcome !== undefined) results.push(outcome);
        }
      }
      if (results.length >= limit) break;
    }
    return results;
  }

  /** A conditional UpdateItem returning the new token, or undefined if the condition no longer holds. */
  private conditionalUpdate(
    item: Item,
    build: (e: Expr) => { ConditionExpression: string; UpdateExpression: string },
  ): Promise<TokenRecord | undefined> {
    return this.run('UpdateItem', async () => {
      const e = new Expr();
      const expressions = build(e);
      try {
        const out = await this.client.send(
          new UpdateItemCommand({
            TableName: this.tokensTable,
            Key: { [TOKEN_ATTR.id]: item[TOKEN_ATTR.id]! },
            ...expressions,
            ReturnValues: 'ALL_NEW',
            ...e.params(),
          }),
        );
        return itemToToken(out.Attributes!);
      } catch (error) {
        if (isConditionFailure(error)) return undefined;
        throw error;
      }
    });
  }

  /**
   * One page of an index, oldest first. Reads one item past the page to know whether a next page exists,
   * so a cursor is given only when more items follow; and keeps reading if DynamoDB stopped early at its
   * 1 MB page size. Cursors carry (mintedAt, id) like the SQLite store's.
   */
  private async listIndex(
    indexName: string,
    partitionAttribute: string,
    partitions: readonly string[],
    options: ListOptions,
  ): Promise<Page<TokenRecord>> {
    this.ensureOpen();
    const limit = pageLimit(options.limit);
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    if (
      after !== undefined &&
      (after.mintedAt < 0 || after.mintedAt > MAX_SORT_INSTANT || !isStorableId(after.id))
    ) {
      throw new InvalidArgumentError('cursor is not one this store gave out', { cursor: options.cursor });
    }
    if (options.mintedBefore !== undefined) assertTime('mintedBefore', options.mintedBefore);
    const upper = options.mintedBefore === undefined ? undefined : sortUpperBound(options.mintedBefore);
    if (upper === null) return { items: [] };
    const afterSort = after === undefined ? undefined : sortKey(after.mintedAt, after.id);
    // A cursor at or past the bound (the bound changed between calls): nothing can follow it.
    if (afterSort !== undefined && upper !== undefined && afterSort >= upper) return { items: [] };

    // The page is the first limit + 1 items of the partitions merged; each holds at most that many of them.
    const perPartition = await Promise.all(
      partitions.map(async (partition) => {
        const e = new Expr();
        const query: Omit<QueryCommandInput, 'TableName'> = {
          IndexName: indexName,
          KeyConditionExpression: indexRange(e, partitionAttribute, partition, upper),
          ScanIndexForward: true,
          ...e.params(),
        };
        // A position in this partition's order; the cursor's token need not be in this partition.
        const start: Item | undefined =
          after === undefined
            ? undefined
            : {
                [TOKEN_ATTR.id]: s(after.id),
                [partitionAttribute]: s(partition),
                [TOKEN_ATTR.gsiSort]: s(afterSort!),
              };
        const found: Item[] = [];
        // Pages stop early at 1 MB: read on until one item past the page is known, or the partition ends.
        for await (const page of this.indexPages(query, () => limit + 1 - found.length, start)) {
          found.push(...page);
          if (found.length > limit) break;
        }
        return found;
      }),
    );
    const found = perPartition.length === 1 ? perPartition[0]! : perPartition.flat().sort(bySortKey);

    const items = found.slice(0, limit).map(itemToToken);
    const last = items[items.length - 1];
    return found.length > limit && last ? { items, cursor: encodeCursor(last) } : { items };
  }
}

/** Index items in the indexes' own order (gsiSort: padded mintedAt, then id). */
function bySortKey(a: Item, b: Item): number {
  const x = a[TOKEN_ATTR.gsiSort]?.S ?? '';
  const y = b[TOKEN_ATTR.gsiSort]?.S ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}

function firstDuplicate(values: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (const value of values) {
    if (seen.has(value)) return value;
    seen.add(value);
  }
  return undefined;
}

/** One partition of a GSI in sort order, cut off before `upper` (from `sortUpperBound`) when there is one. */
function indexRange(
  e: Expr,
  partitionAttribute: string,
  partition: string,
  upper: string | undefined,
): string {
  const key = `${e.name(partitionAttribute)} = ${e.value(s(partition))}`;
  return upper === undefined ? key : `${key} AND ${e.name(TOKEN_ATTR.gsiSort)} < ${e.value(s(upper))}`;
}
