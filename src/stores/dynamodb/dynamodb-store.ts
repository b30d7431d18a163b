import {
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import {
  ClosedError,
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
  DueClaimOptions,
  InFlightStats,
  IssueResult,
  ListOptions,
  Page,
  StagedOwnData,
  StateItem,
  TokenClaimOptions,
  TokenStore,
} from '../../core/store.js';
import { sourcesOf, type TokenRecord, type TokenStatus } from '../../core/token.js';
import { firstDuplicate } from '../first-duplicate.js';
import { pageLimit } from '../paging.js';
import { assertTime, isStorableId, type TokensTableAccess } from './access.js';
import { getTokens, TokenReads } from './batch-get.js';
import { endExpression, hopActions, mintPut, type SizedAction } from './commit-actions.js';
import { CommitGroups } from './commit-groups.js';
import { Expr } from './expression.js';
import {
  cancellationIsTransient,
  consumeFailure,
  isConditionFailure,
  isTransientError,
  sdkError,
  storeError,
} from './failures.js';
import { listIndex } from './index-reads.js';
import { checkItemSize, checkTransaction, estimateWriteSize, itemSize } from './limits.js';
import { itemToState, itemToToken, s, stateKeyOf, statusPartitions, TOKEN_ATTR } from './marshal.js';
import { checkOptions, type DynamoDbStoreOptions } from './options.js';
import { type DynamoTx, OwnDataAccess, type PreparedOwnAction } from './own-data.js';
import { checkRevokes, claimDue, restoreMintedOrder, revokeActions } from './scheduling.js';
import * as sweeps from './sweeps.js';
import { ensureTables, INDEX } from './tables.js';

// Other modules import the options from here.
export type { DynamoDbStoreOptions } from './options.js';

/**
 * What a commit's actions write, one string per item, to keep two commits on one item out of one group. The
 * store's own tables cannot be the handler's (OwnDataAccess refuses them), so their items are told apart by a
 * prefix, and the handler's by their identity.
 */
function itemsOf(request: CommitRequest, own: readonly PreparedOwnAction[]): string[] {
  return [
    `token ${request.consume.tokenId}`,
    ...request.writes.map((write) => `state ${write.key}`),
    ...request.mints.map((token) => `token ${token.id}`),
    ...(request.revokes ?? []).map((revoke) => `token ${revoke.tokenId}`),
    ...own.map((action) => action.identity),
  ];
}

/** Key of the item ping() reads: any key works, an absent item costs the same half read unit. */
const PING_KEY = 'tollgate-ping';
/** The statuses `revoke` moves from. */
const REVOCABLE = sourcesOf('revoked');

/**
 * The production store: tokens and state in two DynamoDB tables, one TransactWriteItems per commit (the commits
 * of one turn share one where they fit: CommitGroups).
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
  /** The tables and settings, for the modules that build and send the requests. */
  private readonly access: TokensTableAccess;
  private readonly commits: CommitGroups;
  private readonly reads: TokenReads;
  private closed = false;

  constructor(options: DynamoDbStoreOptions) {
    const { retentionMs, concurrency, statusShards, groupCommits } = checkOptions(options);
    this.tokensTable = options.tokensTable;
    this.stateTable = options.stateTable;
    this.ownsClient = options.client === undefined;
    this.client = options.client ?? new DynamoDBClient(options.clientConfig ?? {});
    this.access = {
      client: this.client,
      tokensTable: this.tokensTable,
      stateTable: this.stateTable,
      retentionMs,
      concurrency,
      statusShards,
      run: (operation, work) => this.run(operation, work),
    };
    this.own = new OwnDataAccess({
      client: this.client,
      reservedTables: [this.tokensTable, this.stateTable],
      run: (operation, work) => this.run(operation, work),
    });
    this.ownData = this.own.ownData;
    // The grouped reads skip the closed check: a read asked for before close still gets its answer.
    const reading: TokensTableAccess = {
      ...this.access,
      run: (operation, work) => this.send(operation, work),
    };
    this.reads = new TokenReads(reading, (id) => this.getOne(id));
    this.commits = new CommitGroups(
      (TransactItems) => this.client.send(new TransactWriteItemsCommand({ TransactItems })),
      groupCommits,
    );
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
    this.ensureOpen();
    if (!isStorableId(id)) return undefined;
    return this.reads.get(id);
  }

  /** One token by GetItem: a read alone in its turn. */
  private async getOne(id: string): Promise<TokenRecord | undefined> {
    return this.send('GetItem', async () => {
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

  async getTokens(ids: readonly string[]): Promise<Map<string, TokenRecord>> {
    this.ensureOpen();
    return getTokens(this.access, ids);
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
    const puts = tokens.map((token) => mintPut(this.access, token));
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
    const put = mintPut(this.access, token).Put!;
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
    const unrevocable = checkRevokes(request);
    if (unrevocable !== undefined) return { ok: false, failure: unrevocable };

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

    // In the order classifyCommitError reads the cancellation reasons.
    const actions: SizedAction[] = [
      ...hopActions(this.access, request),
      ...revokeActions(this.access, request.revokes ?? [], now),
      ...own.map(({ write, item, bytes }) => ({ write, label: item, bytes })),
    ];
    checkTransaction(actions);
    // The SDK fills in a ClientRequestToken once per send and reuses it on its own retries, so a retry after a
    // lost answer succeeds instead of failing on the token this very transaction consumed.
    return this.commits.submit({ actions, items: itemsOf(request, own), request, own });
  }

  async markDispatched(ids: string[], now: number): Promise<number> {
    this.ensureOpen();
    return sweeps.markDispatched(this.access, ids, now);
  }

  async revoke(id: string, now: number): Promise<TokenRecord> {
    this.ensureOpen();
    assertTime('now', now);
    if (!isStorableId(id)) throw new UnknownTokenError(id);
    return this.run('UpdateItem', async () => {
      const e = new Expr();
      // A scheduled token goes back to its mintedAt place in the indexes; for the others this is a no-op.
      const restore = restoreMintedOrder(e);
      try {
        const out = await this.client.send(
          new UpdateItemCommand({
            TableName: this.tokensTable,
            Key: { [TOKEN_ATTR.id]: s(id) },
            ConditionExpression: `${e.name(TOKEN_ATTR.status)} IN (${REVOCABLE.map((st) => e.value(s(st))).join(', ')})`,
            UpdateExpression: endExpression(
              this.access,
              e,
              id,
              'revoked',
              now,
              [restore.set],
              [restore.remove],
            ),
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
    return sweeps.expireIssued(this.access, now, limit);
  }

  async claimPending(options: ClaimOptions): Promise<TokenRecord[]> {
    this.ensureOpen();
    return sweeps.claimPending(this.access, options);
  }

  async claimDue(options: DueClaimOptions): Promise<TokenRecord[]> {
    this.ensureOpen();
    return claimDue(this.access, options);
  }

  async claimToken(id: string, options: TokenClaimOptions): Promise<TokenRecord | undefined> {
    this.ensureOpen();
    return sweeps.claimToken(this.access, id, options);
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
    this.ensureOpen();
    return listIndex(
      this.access,
      INDEX.byStatus,
      TOKEN_ATTR.gsiStatus,
      statusPartitions(status, this.access.statusShards),
      options,
      status === 'scheduled',
    );
  }

  async listConversation(conversationId: string, options: ListOptions = {}): Promise<Page<TokenRecord>> {
    if (conversationId === '') {
      pageLimit(options.limit);
      return { items: [] };
    }
    this.ensureOpen();
    return listIndex(this.access, INDEX.byConversation, TOKEN_ATTR.gsiConv, [conversationId], options);
  }

  async inFlightStats(): Promise<InFlightStats> {
    this.ensureOpen();
    return sweeps.inFlightStats(this.access);
  }

  async statusCounts(): Promise<Record<TokenStatus, number>> {
    this.ensureOpen();
    return sweeps.statusCounts(this.access);
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
    return sweeps.purge(this.access, now, limit);
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
    // Reads and commits already asked for still go out: their callers are waiting for an answer.
    await Promise.all([this.reads.drain(), this.commits.drain()]);
    if (this.ownsClient) this.client.destroy();
  }

  // ---------------------------------------------------------------------------------------------------------

  private ensureOpen(): void {
    if (this.closed) throw new ClosedError('DynamoDB token store');
  }

  private async run<T>(operation: string, work: () => Promise<T>): Promise<T> {
    this.ensureOpen();
    return this.send(operation, work);
  }

  /** One request, its errors mapped; without the closed check, for what close still sends on its way out. */
  private async send<T>(operation: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw storeError(error, operation);
    }
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
}
