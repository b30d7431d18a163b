import { readFileSync } from 'node:fs';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  GetItemCommand,
  type QueryCommandOutput,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  ClosedError,
  ConfigError,
  ErrorCodes,
  InvalidArgumentError,
  InvalidTransitionError,
  LimitExceededError,
  StoreUnavailableError,
  TokenExistsError,
  UnknownTokenError,
} from '../../../src/core/errors.js';
import { fingerprint } from '../../../src/core/fingerprint.js';
import { newTokenId } from '../../../src/core/ids.js';
import type { CommitRequest, CommitResult } from '../../../src/core/store.js';
import type { TokenRecord } from '../../../src/core/token.js';
import { DynamoDbTokenStore } from '../../../src/stores/dynamodb/dynamodb-store.js';
import { classifyCommitError } from '../../../src/stores/dynamodb/failures.js';
import { attributeValueSize, DYNAMODB_LIMITS, itemSize } from '../../../src/stores/dynamodb/limits.js';
import {
  ensureTables,
  stateTableDefinition,
  tokensTableDefinition,
} from '../../../src/stores/dynamodb/tables.js';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../support/dynamodb-local.js';
import { useDynamoDbLocal } from './local-stores.js';

const dynamo = useDynamoDbLocal();
const { uniqueNames, openStore } = dynamo;

/**
 * DynamoDB Local honours TTL: within a second or so it deletes an item whose TTL has passed. A test that
 * makes tombstones already due and then sweeps them would race that deleter, so it runs its clock a day
 * ahead, where every TTL it writes is still in the (real) future.
 */
const AHEAD_OF_TTL = 86_400_000;

let clock = 1_700_000_000_000;
function pending(overrides: Partial<TokenRecord> = {}): TokenRecord {
  const payload = overrides.payload ?? { n: clock };
  return {
    id: newTokenId(),
    conversationId: newTokenId(),
    mintedBy: 'test',
    destination: { medium: 'amqp', exchange: 'x', routingKey: 'r' },
    fingerprint: fingerprint(payload),
    payload,
    status: 'pending',
    mintedAt: clock++,
    attempts: 0,
    ...overrides,
  };
}

function consumeOf(token: TokenRecord, now = Date.now()): CommitRequest {
  return {
    consume: { tokenId: token.id, fingerprint: token.fingerprint!, consumedBy: 'handler' },
    writes: [],
    mints: [],
    now,
  };
}

describe('DynamoDB tables', () => {
  it('creates tables with their indexes and TTL, and does so idempotently', async () => {
    const names = uniqueNames();
    await ensureTables(dynamo.client(), names);
    await ensureTables(dynamo.client(), names);
    await Promise.all([ensureTables(dynamo.client(), names), ensureTables(dynamo.client(), names)]);
    const tokens = (await dynamo.client().send(new DescribeTableCommand({ TableName: names.tokensTable })))
      .Table;
    expect(tokens?.TableStatus).toBe('ACTIVE');
    expect(tokens?.GlobalSecondaryIndexes?.map((i) => i.IndexName).sort()).toEqual([
      'byConversation',
      'byStatus',
    ]);
    const ttl = await dynamo.client().send(new DescribeTimeToLiveCommand({ TableName: names.tokensTable }));
    expect(ttl.TimeToLiveDescription).toMatchObject({ TimeToLiveStatus: 'ENABLED', AttributeName: 'ttl' });
    const state = (await dynamo.client().send(new DescribeTableCommand({ TableName: names.stateTable })))
      .Table;
    expect(state?.KeySchema).toEqual([{ AttributeName: 'key', KeyType: 'HASH' }]);
  });

  it('refuses an existing table whose key schema is not the expected one', async () => {
    const names = uniqueNames();
    await dynamo.client().send(
      new CreateTableCommand({
        TableName: names.tokensTable,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      }),
    );
    await expect(ensureTables(dynamo.client(), names)).rejects.toBeInstanceOf(ConfigError);
    await expect(
      ensureTables(dynamo.client(), { tokensTable: 'same', stateTable: 'same' }),
    ).rejects.toBeInstanceOf(ConfigError);
  });

  it('matches the CloudFormation template in deploy/', () => {
    const template = parse(
      readFileSync(new URL('../../../deploy/dynamodb-table.yaml', import.meta.url), 'utf8'),
    );
    const cases = [
      [template.Resources.TokensTable, tokensTableDefinition('x'), 'TokensTableName'],
      [template.Resources.StateTable, stateTableDefinition('x'), 'StateTableName'],
    ] as const;
    for (const [resource, definition, parameter] of cases) {
      expect(resource.Type).toBe('AWS::DynamoDB::Table');
      const { TableName, ...properties } = resource.Properties;
      expect(TableName).toEqual({ Ref: parameter });
      const { TableName: _name, ...expected } = definition;
      expect(properties).toMatchObject(expected);
      const extra = Object.keys(properties).filter((k) => !(k in expected));
      expect(extra.sort()).toEqual(
        parameter === 'TokensTableName'
          ? ['PointInTimeRecoverySpecification', 'TimeToLiveSpecification']
          : ['PointInTimeRecoverySpecification'],
      );
    }
    expect(template.Resources.TokensTable.Properties.TimeToLiveSpecification).toEqual({
      AttributeName: 'ttl',
      Enabled: true,
    });
    // Same indexes, none extra.
    expect(template.Resources.TokensTable.Properties.GlobalSecondaryIndexes).toEqual(
      tokensTableDefinition('x').GlobalSecondaryIndexes,
    );
  });
});

describe('DynamoDB item sizes', () => {
  it('counts attribute names and values the way DynamoDB does (numbers on the high side)', () => {
    expect(itemSize({ id: { S: 'abc' } })).toBe(5);
    expect(itemSize({ id: { S: 'é' } })).toBe(4);
    expect(attributeValueSize({ N: '1700000000000' })).toBe(8);
    expect(attributeValueSize({ BOOL: true })).toBe(1);
    expect(attributeValueSize({ L: [{ S: 'ab' }, { NULL: true }] })).toBe(3 + 1 + 2 + 1 + 1);
    expect(attributeValueSize({ M: { k: { S: 'v' } } })).toBe(3 + 1 + 1 + 1);
  });
});

describe('DynamoDbTokenStore', () => {
  it('round-trips every field exactly and keeps the index attributes and TTL in the item', async () => {
    const store = await openStore({ tombstoneRetentionMs: 60_000 });
    const token = pending({
      parentId: newTokenId(),
      payload: null,
      fingerprint: fingerprint(null),
      headers: { 'x-trace': 'é€' },
      destination: { medium: 'http', method: 'POST', url: 'https://example.test/a?b=1' },
      dispatchedAt: 5,
      leaseUntil: 6,
    });
    await store.mint([token]);
    expect(await store.getToken(token.id)).toEqual(token);

    const issued: TokenRecord = { ...pending(), status: 'issued', expiresAt: 2_000_000_000_000 };
    expect(await store.issue(issued)).toEqual({ created: true, token: issued });
    expect(await store.issue({ ...issued, mintedBy: 'other' })).toEqual({ created: false, existing: issued });

    const raw = async (id: string) =>
      (
        await store.client.send(
          new GetItemCommand({ TableName: store.tokensTable, Key: { id: { S: id } }, ConsistentRead: true }),
        )
      ).Item!;
    const item = await raw(token.id);
    expect(item.gsiStatus).toEqual({ S: 'pending' });
    expect(item.gsiSort).toEqual({ S: `${String(token.mintedAt).padStart(15, '0')}#${token.id}` });
    expect(item.gsiConv).toEqual({ S: token.conversationId });
    expect(item.medium).toEqual({ S: 'http' });
    expect(item.ttl).toBeUndefined();
    expect((await raw(issued.id)).ttl).toEqual({ N: String(Math.ceil((2_000_000_000_000 + 60_000) / 1000)) });

    const now = 1_800_000_000_123;
    const response = {
      statusCode: 201,
      headers: { 'content-type': 'application/json' },
      body: '{"ok":true}',
    };
    const result = await store.commit({
      ...consumeOf(token, now),
      consume: { tokenId: token.id, fingerprint: token.fingerprint!, consumedBy: 'h', response },
    });
    expect(result).toEqual({ ok: true });
    const tombstone = await store.getToken(token.id);
    const { payload: _p, headers: _h, leaseUntil: _l, ...kept } = token;
    expect(tombstone).toEqual({
      ...kept,
      status: 'consumed',
      consumedAt: now,
      consumedBy: 'h',
      response,
      retainUntil: now + 60_000,
    });
    const tombItem = await raw(token.id);
    expect(tombItem.ttl).toEqual({ N: String(Math.ceil((now + 60_000) / 1000)) });
    expect(tombItem.gsiStatus).toEqual({ S: 'consumed' });
  });

  it('checks the 100-item, 400 KB and 4 MB limits before sending anything', async () => {
    const store = await openStore();
    const many = Array.from({ length: 101 }, () => pending());
    const tooMany = await store.mint(many).catch((e: unknown) => e);
    expect(tooMany).toBeInstanceOf(LimitExceededError);
    expect((tooMany as LimitExceededError).details).toMatchObject({ limit: 100, actual: 101 });
    expect(await store.getToken(many[0]!.id)).toBeUndefined();

    const huge = pending({ payload: 'x'.repeat(400 * 1024) });
    const tooBig = await store.mint([huge]).catch((e: unknown) => e);
    expect(tooBig).toBeInstanceOf(LimitExceededError);
    expect((tooBig as LimitExceededError).details).toMatchObject({ limit: DYNAMODB_LIMITS.maxItemBytes });
    await expect(store.issue({ ...huge, status: 'issued' })).rejects.toBeInstanceOf(LimitExceededError);

    const root = pending();
    await store.mint([root]);
    // 11 tokens of ~390 KB: each fits, together they exceed 4 MB.
    const heavy = Array.from({ length: 11 }, () => pending({ payload: 'y'.repeat(390 * 1024) }));
    const overTotal = await store.commit({ ...consumeOf(root), mints: heavy }).catch((e: unknown) => e);
    expect(overTotal).toBeInstanceOf(LimitExceededError);
    expect((overTotal as LimitExceededError).details).toMatchObject({
      limit: DYNAMODB_LIMITS.maxTransactionBytes,
    });
    expect((overTotal as LimitExceededError).code).toBe(ErrorCodes.LIMIT_EXCEEDED);

    // consume + 100 mints = 101 actions
    const hundred = Array.from({ length: 100 }, () => pending());
    await expect(store.commit({ ...consumeOf(root), mints: hundred })).rejects.toMatchObject({
      details: { limit: 100, actual: 101 },
    });
    const bigState = store.commit({
      ...consumeOf(root),
      writes: [{ key: 'big', value: 'z'.repeat(410 * 1024) }],
    });
    await expect(bigState).rejects.toBeInstanceOf(LimitExceededError);
    expect((await store.getToken(root.id))?.status).toBe('pending');
    expect(await store.getToken(heavy[0]!.id)).toBeUndefined();
    expect(await store.readState('big')).toBeUndefined();

    // 99 mints + consume = 100 actions is fine
    const ninetyNine = Array.from({ length: 99 }, () => pending());
    expect(await store.commit({ ...consumeOf(root), mints: ninetyNine })).toEqual({ ok: true });
    expect((await store.getToken(ninetyNine[98]!.id))?.status).toBe('pending');
  });

  it('classifies failed commits from the cancellation reasons, and writes nothing', async () => {
    const store = await openStore();
    const root = pending();
    const other = pending();
    await store.mint([root, other]);
    const now = Date.now();
    const fail = (result: CommitResult) => (result.ok ? undefined : result.failure);

    expect(fail(await store.commit(consumeOf(pending(), now)))).toEqual({ kind: 'token-missing' });
    expect(fail(await store.commit(consumeOf({ ...root, id: '' }, now)))).toEqual({ kind: 'token-missing' });
    expect(
      fail(
        await store.commit({
          ...consumeOf(root, now),
          consume: { ...consumeOf(root).consume, fingerprint: 'f' },
        }),
      ),
    ).toEqual({ kind: 'fingerprint-mismatch' });

    const child = pending();
    const conflict = await store.commit({
      ...consumeOf(root, now),
      writes: [
        { key: 'blind', value: 1 },
        { key: 'guarded', value: 2, expectedVersion: 3 },
      ],
      mints: [child],
    });
    expect(fail(conflict)).toEqual({ kind: 'version-conflict', key: 'guarded' });
    const collision = await store.commit({ ...consumeOf(root, now), mints: [child, other] });
    expect(fail(collision)).toEqual({ kind: 'mint-collision', tokenId: other.id });
    // Same id twice in one transaction is refused by DynamoDB as invalid; the store answers like SQLite.
    expect(fail(await store.commit({ ...consumeOf(root, now), mints: [root] }))).toEqual({
      kind: 'mint-collision',
      tokenId: root.id,
    });
    expect(fail(await store.commit({ ...consumeOf(root, now), mints: [child, child] }))).toEqual({
      kind: 'mint-collision',
      tokenId: child.id,
    });
    expect((await store.getToken(root.id))?.status).toBe('pending');
    expect(await store.getToken(child.id)).toBeUndefined();
    expect(await store.readState('blind')).toBeUndefined();

    expect(
      await store.commit({
        ...consumeOf(root, now),
        writes: [{ key: 'guarded', value: 1, expectedVersion: 0 }],
      }),
    ).toEqual({ ok: true });
    // The token's reason wins over a state conflict in the same transaction.
    const again = await store.commit({
      ...consumeOf(root, now),
      writes: [{ key: 'guarded', value: 1, expectedVersion: 0 }],
    });
    expect(fail(again)).toEqual({ kind: 'token-not-live', status: 'consumed', expired: false });
    const stateConflict = await store.commit({
      ...consumeOf(other, now),
      writes: [{ key: 'guarded', value: 9, expectedVersion: 0 }],
    });
    expect(fail(stateConflict)).toEqual({ kind: 'version-conflict', key: 'guarded' });

    const stale: TokenRecord = { ...pending(), status: 'issued', expiresAt: now - 1 };
    await store.issue(stale);
    expect(fail(await store.commit(consumeOf(stale, now)))).toEqual({
      kind: 'token-not-live',
      status: 'issued',
      expired: true,
    });
    await expect(
      store.commit({
        ...consumeOf(other, now),
        writes: [
          { key: 'a', value: 1 },
          { key: 'a', value: 2 },
        ],
      }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('versions state: guarded puts and deletes, blind writes bump whatever the version', async () => {
    const store = await openStore();
    const commitWith = async (writes: CommitRequest['writes']) => {
      const token = pending();
      await store.mint([token]);
      return store.commit({ ...consumeOf(token), writes });
    };
    expect(await commitWith([{ key: 'k', value: { a: [1, 'two', null] } }])).toEqual({ ok: true });
    expect(await store.readState('k')).toEqual({ key: 'k', value: { a: [1, 'two', null] }, version: 1 });
    expect(await commitWith([{ key: 'k', value: 'b' }])).toEqual({ ok: true });
    expect(await store.readState('k')).toEqual({ key: 'k', value: 'b', version: 2 });
    expect(await commitWith([{ key: 'k', value: 'c', expectedVersion: 2 }])).toEqual({ ok: true });
    expect(await store.readState('k')).toMatchObject({ value: 'c', version: 3 });
    expect(await commitWith([{ key: 'k', expectedVersion: 2 }])).toMatchObject({ ok: false });
    expect(await commitWith([{ key: 'k', expectedVersion: 3 }])).toEqual({ ok: true });
    expect(await store.readState('k')).toBeUndefined();
    expect(await commitWith([{ key: 'k', value: 0, expectedVersion: 0 }])).toEqual({ ok: true });
    expect(await store.readState('k')).toMatchObject({ value: 0, version: 1 });
    expect(await commitWith([{ key: 'k' }])).toEqual({ ok: true });
    expect(await store.readState('k')).toBeUndefined();
  });

  it('lets one of many concurrent commits of one token win; the others learn why', async () => {
    const store = await openStore();
    const root = pending();
    await store.mint([root]);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.commit({
          ...consumeOf(root),
          writes: [{ key: 'once', value: i, expectedVersion: 0 }],
          mints: [pending()],
        }),
      ),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    for (const r of results) {
      if (!r.ok) expect(['token-not-live', 'transient']).toContain(r.failure.kind);
    }
    expect(await store.readState('once')).toMatchObject({ version: 1 });
  });

  it('classifies transport and service errors as transient or permanent', () => {
    const request = consumeOf(pending());
    const cancelled = (codes: string[]) =>
      new TransactionCanceledException({
        message: 'cancelled',
        $metadata: { httpStatusCode: 400 },
        CancellationReasons: codes.map((Code) => ({ Code })),
      });
    expect(classifyCommitError(cancelled(['None', 'TransactionConflict']), request).kind).toBe('transient');
    expect(classifyCommitError(cancelled(['ThrottlingError']), request).kind).toBe('transient');
    expect(classifyCommitError(cancelled(['None', 'ValidationError']), request).kind).toBe('permanent');
    expect(classifyCommitError(cancelled(['ConditionalCheckFailed']), request)).toEqual({
      kind: 'token-missing',
    });
    const withStatus = (name: string, httpStatusCode: number) =>
      Object.assign(new Error(name), { name, $metadata: { httpStatusCode } });
    expect(classifyCommitError(withStatus('ThrottlingException', 400), request).kind).toBe('transient');
    expect(classifyCommitError(withStatus('ProvisionedThroughputExceededException', 400), request).kind).toBe(
      'transient',
    );
    expect(classifyCommitError(withStatus('InternalServerError', 500), request).kind).toBe('transient');
    expect(classifyCommitError(withStatus('ValidationException', 400), request).kind).toBe('permanent');
    expect(classifyCommitError(withStatus('ResourceNotFoundException', 400), request).kind).toBe('permanent');
    expect(
      classifyCommitError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), request).kind,
    ).toBe('transient');
  });

  it('reports an unreachable DynamoDB as transient (commit) and StoreUnavailableError (other calls)', async () => {
    const store = new DynamoDbTokenStore({
      clientConfig: {
        endpoint: 'http://127.0.0.1:9',
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
        maxAttempts: 1,
      },
      ...uniqueNames(),
    });
    dynamo.track(store);
    const result = await store.commit(consumeOf(pending()));
    expect(result.ok === false && result.failure.kind).toBe('transient');
    await expect(store.getToken(newTokenId())).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
    await store.close();
    await expect(store.getToken(newTokenId())).rejects.toMatchObject({ code: ErrorCodes.CLOSED });
  });

  it('mints all or nothing and names the taken id', async () => {
    const store = await openStore();
    const taken = pending();
    await store.mint([taken]);
    const fresh = pending();
    const error = await store.mint([fresh, taken]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TokenExistsError);
    expect((error as TokenExistsError).details).toEqual({ tokenId: taken.id });
    expect(await store.getToken(fresh.id)).toBeUndefined();
    await expect(store.mint([fresh, fresh])).rejects.toBeInstanceOf(TokenExistsError);
    await store.mint([]);
    await store.ping();
  });

  it('marks many tokens with one request per 25, moving only those still pending; one by one without PartiQL', async () => {
    const requests = (store: DynamoDbTokenStore, refuse = false) => {
      const counts: Record<string, number> = {};
      store.client.middlewareStack.add(
        (next, context) => async (args) => {
          const name = String(context.commandName);
          counts[name] = (counts[name] ?? 0) + 1;
          if (refuse && name === 'BatchExecuteStatementCommand') {
            throw Object.assign(new Error('not authorized to perform dynamodb:PartiQLUpdate'), {
              name: 'AccessDeniedException',
              $metadata: { httpStatusCode: 400 },
            });
          }
          return next(args);
        },
        { step: 'initialize' },
      );
      return counts;
    };
    const now = Date.now() + AHEAD_OF_TTL;
    const store = await openStore();
    const tokens = Array.from({ length: 30 }, () => pending({ mintedAt: now - 60_000 }));
    const [consumed, leased] = [pending({ mintedAt: now - 60_000 }), pending({ mintedAt: now - 70_000 })];
    await store.mint([...tokens, consumed, leased]);
    expect(await store.commit(consumeOf(consumed, now))).toEqual({ ok: true });
    expect(await store.claimPending({ mintedBefore: now, now, leaseMs: 10_000, limit: 1 })).toHaveLength(1);
    const counts = requests(store);
    const ids = [...tokens, consumed, leased].map((t) => t.id);
    expect(await store.markDispatched([...ids, newTokenId()], now)).toBe(31);
    expect(counts).toEqual({ BatchExecuteStatementCommand: 2 });
    expect(await store.getToken(consumed.id)).toMatchObject({ status: 'consumed' });
    const marked = await store.getToken(leased.id);
    expect(marked).toMatchObject({ status: 'dispatched', dispatchedAt: now });
    expect(marked?.leaseUntil).toBeUndefined();
    expect(await store.markDispatched(ids, now)).toBe(0);
    const listed = await store.listByStatus('dispatched', { limit: 100 });
    expect(listed.items.map((t) => t.id).sort()).toEqual([...tokens, leased].map((t) => t.id).sort());

    const strict = await openStore();
    const more = Array.from({ length: 3 }, () => pending({ mintedAt: now - 60_000 }));
    await strict.mint(more);
    const refused = requests(strict, true);
    expect(
      await strict.markDispatched(
        more.slice(0, 2).map((t) => t.id),
        now,
      ),
    ).toBe(2);
    expect(await strict.markDispatched([more[2]?.id ?? '', tokens[0]?.id ?? ''], now)).toBe(1);
    // Refused once, then remembered: every later mark is an UpdateItem of its own.
    expect(refused).toEqual({ BatchExecuteStatementCommand: 1, UpdateItemCommand: 4 });
  });

  it('marks dispatched, revokes, expires, leases and purges with conditional writes', async () => {
    const store = await openStore({ tombstoneRetentionMs: 1_000 });
    const now = Date.now() + AHEAD_OF_TTL;
    const a = pending({ mintedAt: now - 50_000 });
    const b = pending({
      mintedAt: now - 40_000,
      destination: { medium: 'http', method: 'POST', url: 'https://h/' },
    });
    const c = pending({ mintedAt: now - 30_000 });
    await store.mint([a, b, c]);

    expect(await store.markDispatched([a.id, a.id, newTokenId(), ''], now)).toBe(1);
    expect(await store.markDispatched([a.id], now)).toBe(0);
    expect(await store.getToken(a.id)).toMatchObject({ status: 'dispatched', dispatchedAt: now });

    const claimed = await store.claimPending({ mintedBefore: now, now, leaseMs: 10_000, limit: 1 });
    expect(claimed.map((t) => t.id)).toEqual([b.id]);
    expect(claimed[0]).toMatchObject({ attempts: 1, leaseUntil: now + 10_000, payload: b.payload });
    expect(
      (await store.claimPending({ mintedBefore: now, now, leaseMs: 10_000, limit: 5 })).map((t) => t.id),
    ).toEqual([c.id]);
    expect(await store.claimPending({ mintedBefore: now, now, leaseMs: 10_000, limit: 5 })).toEqual([]);
    await store.releaseLease(b.id);
    await store.releaseLease(newTokenId()); // unknown: no error, and no stray item
    expect(
      (
        await store.claimPending({ mintedBefore: now, now: now + 1, leaseMs: 1, limit: 5, medium: 'http' })
      ).map((t) => t.id),
    ).toEqual([b.id]);
    expect(
      await store.claimPending({ mintedBefore: now - 45_000, now: now + 99_999, leaseMs: 1, limit: 5 }),
    ).toEqual([]);
    // mintedBefore is inclusive
    expect(
      (await store.claimPending({ mintedBefore: c.mintedAt, now: now + 99_999, leaseMs: 1, limit: 5 })).map(
        (t) => t.id,
      ),
    ).toEqual([b.id, c.id]);

    const revoked = await store.revoke(c.id, now);
    expect(revoked).toMatchObject({ status: 'revoked', retainUntil: now + 1_000 });
    expect(revoked.payload).toBeUndefined();
    await expect(store.revoke(c.id, now)).rejects.toBeInstanceOf(InvalidTransitionError);
    await expect(store.revoke(newTokenId(), now)).rejects.toBeInstanceOf(UnknownTokenError);
    expect(await store.getToken('nonexistent-id')).toBeUndefined();

    const stale: TokenRecord = { ...pending({ mintedAt: now }), status: 'issued', expiresAt: now - 1 };
    const fresh: TokenRecord = { ...pending({ mintedAt: now }), status: 'issued', expiresAt: now + 60_000 };
    await store.mint([stale, fresh]);
    expect(await store.expireIssued(now)).toBe(1);
    expect(await store.expireIssued(now)).toBe(0);
    expect(await store.getToken(stale.id)).toMatchObject({ status: 'expired', retainUntil: now + 1_000 });
    expect((await store.getToken(fresh.id))?.status).toBe('issued');

    expect(await store.inFlightStats()).toEqual({ count: 3, oldestMintedAt: a.mintedAt });
    expect(await store.purge(now)).toBe(0);
    expect(await store.purge(now + 1_000, 1)).toBe(1);
    expect(await store.purge(now + 1_000)).toBe(1);
    expect(await store.getToken(c.id)).toBeUndefined();
    expect(await store.getToken(stale.id)).toBeUndefined();
  });

  it('sweeps only the tombstones that may be due, not every tombstone kept', async () => {
    // Counts the index items each Query reads: the sweep's cost, which must not grow with recent traffic.
    let scanned = 0;
    const counting = new DynamoDBClient({
      endpoint: dynamo.endpoint(),
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    counting.middlewareStack.add(
      (next, context) => async (args) => {
        const result = await next(args);
        if (context.commandName === 'QueryCommand') {
          scanned += (result.output as QueryCommandOutput).ScannedCount ?? 0;
        }
        return result;
      },
      { step: 'initialize', name: 'countScanned' },
    );
    const retention = 60_000;
    const store = await openStore({ client: counting, tombstoneRetentionMs: retention });
    const now = Date.now() + AHEAD_OF_TTL;
    const old = Array.from({ length: 5 }, () => pending({ mintedAt: now - 10 * retention }));
    const recent = Array.from({ length: 40 }, () => pending({ mintedAt: now - retention / 2 }));
    await store.mint([...old, ...recent]);
    for (const token of old)
      expect(await store.commit(consumeOf(token, now - 9 * retention))).toEqual({ ok: true });
    for (const token of recent)
      expect(await store.commit(consumeOf(token, now - retention / 2))).toEqual({ ok: true });

    scanned = 0;
    expect(await store.purge(now)).toBe(old.length);
    expect(scanned).toBe(old.length);
    for (const token of old) expect(await store.getToken(token.id)).toBeUndefined();
    for (const token of recent) expect((await store.getToken(token.id))?.status).toBe('consumed');

    // Once the recent ones are due, the same sweep finds them.
    expect(await store.purge(now + retention)).toBe(recent.length);
    counting.destroy();
  });

  it('pages through an index with exact cursors and refuses foreign ones', async () => {
    const store = await openStore();
    const conversationId = newTokenId();
    const base = 1_600_000_000_000;
    const tokens = Array.from({ length: 7 }, (_, i) => pending({ conversationId, mintedAt: base + i }));
    // same mintedAt: ordered by id
    const twins = [pending({ mintedAt: base + 100 }), pending({ mintedAt: base + 100 })].sort((x, y) =>
      x.id < y.id ? -1 : 1,
    );
    await store.mint([...tokens].reverse());
    await store.mint(twins);

    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await store.listConversation(conversationId, cursor ? { limit: 3, cursor } : { limit: 3 });
      pages.push(page.items.map((t) => t.id));
      cursor = page.cursor;
    } while (cursor);
    expect(pages).toEqual(
      [tokens.slice(0, 3), tokens.slice(3, 6), tokens.slice(6)].map((p) => p.map((t) => t.id)),
    );

    const exact = await store.listConversation(conversationId, { limit: 7 });
    expect(exact.items).toHaveLength(7);
    expect(exact.cursor).toBeUndefined();

    const all = await store.listByStatus('pending', { limit: 1000 });
    expect(all.items.map((t) => t.id)).toEqual([...tokens, ...twins].map((t) => t.id));
    const before = await store.listByStatus('pending', { mintedBefore: base + 3 });
    expect(before.items.map((t) => t.id)).toEqual(tokens.slice(0, 3).map((t) => t.id));
    const firstEight = await store.listByStatus('pending', { limit: 8 });
    const rest = await store.listByStatus('pending', { limit: 8, cursor: firstEight.cursor! });
    expect(rest).toEqual({ items: [twins[1]] });
    // a cursor beyond a (changed) bound yields nothing rather than an error
    expect(
      await store.listByStatus('pending', { mintedBefore: base + 1, cursor: firstEight.cursor! }),
    ).toEqual({
      items: [],
    });

    await expect(store.listByStatus('pending', { cursor: 'not-a-cursor!' })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    const negative = Buffer.from(JSON.stringify([-5, 'x'])).toString('base64url');
    await expect(store.listByStatus('pending', { cursor: negative })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(store.listByStatus('pending', { limit: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(await store.listByStatus('revoked')).toEqual({ items: [] });
    expect(await store.listConversation('')).toEqual({ items: [] });
  });

  describe('with the status index in shards', () => {
    const raw = async (store: DynamoDbTokenStore, id: string) =>
      (
        await store.client.send(
          new GetItemCommand({ TableName: store.tokensTable, Key: { id: { S: id } }, ConsistentRead: true }),
        )
      ).Item!;

    it('spreads a status over its shards; a token keeps its shard as its status changes', async () => {
      const store = await openStore({ statusShards: 4 });
      const now = Date.now() + AHEAD_OF_TTL;
      const tokens = Array.from({ length: 40 }, () => pending({ mintedAt: now - 1_000 }));
      await store.mint(tokens);
      const shardOf = new Map<string, string>();
      for (const token of tokens) {
        const partition = (await raw(store, token.id)).gsiStatus?.S ?? '';
        expect(partition).toMatch(/^pending#[0-3]$/);
        shardOf.set(token.id, partition.slice('pending'.length));
      }
      expect(new Set(shardOf.values()).size).toBe(4);

      const [consumed, dispatched, revoked] = tokens;
      expect(await store.commit(consumeOf(consumed!, now))).toEqual({ ok: true });
      expect(await store.markDispatched([dispatched!.id], now)).toBe(1);
      await store.revoke(revoked!.id, now);
      expect((await raw(store, consumed!.id)).gsiStatus?.S).toBe(`consumed${shardOf.get(consumed!.id)}`);
      expect((await raw(store, dispatched!.id)).gsiStatus?.S).toBe(
        `dispatched${shardOf.get(dispatched!.id)}`,
      );
      expect((await raw(store, revoked!.id)).gsiStatus?.S).toBe(`revoked${shardOf.get(revoked!.id)}`);
    });

    it('pages across shards in index order with exact cursors', async () => {
      const store = await openStore({ statusShards: 8 });
      const base = 1_600_000_000_000;
      const tokens = Array.from({ length: 23 }, (_, i) => pending({ mintedAt: base + (i % 5) }));
      await store.mint(tokens);
      const expected = [...tokens]
        .sort((x, y) => x.mintedAt - y.mintedAt || (x.id < y.id ? -1 : 1))
        .map((t) => t.id);
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.listByStatus('pending', cursor ? { limit: 4, cursor } : { limit: 4 });
        expect(page.items.length).toBeLessThanOrEqual(4);
        seen.push(...page.items.map((t) => t.id));
        cursor = page.cursor;
        pages += 1;
      } while (cursor);
      expect(seen).toEqual(expected);
      expect(pages).toBe(6);
      const bounded = await store.listByStatus('pending', { limit: 100, mintedBefore: base + 2 });
      expect(bounded.items.map((t) => t.id)).toEqual(
        expected.filter((id) => tokens.find((t) => t.id === id)!.mintedAt < base + 2),
      );
    });

    it('still finds tokens written before sharding was turned on (the shard count may grow)', async () => {
      const names = uniqueNames();
      const now = Date.now() + AHEAD_OF_TTL;
      const unsharded = await openStore({ ...names, tombstoneRetentionMs: 1_000 });
      const old = Array.from({ length: 6 }, (_, i) => pending({ mintedAt: now - 60_000 + i }));
      await unsharded.mint(old);
      expect((await raw(unsharded, old[0]!.id)).gsiStatus?.S).toBe('pending');
      await unsharded.commit(consumeOf(old[5]!, now - 30_000));

      const sharded = await openStore({ ...names, tombstoneRetentionMs: 1_000, statusShards: 4 });
      const young = Array.from({ length: 6 }, (_, i) => pending({ mintedAt: now - 50_000 + i }));
      await sharded.mint(young);

      const listed = await sharded.listByStatus('pending', { limit: 100 });
      expect(listed.items.map((t) => t.id)).toEqual([...old.slice(0, 5), ...young].map((t) => t.id));
      expect(await sharded.inFlightStats()).toEqual({ count: 11, oldestMintedAt: old[0]!.mintedAt });

      const claimed = await sharded.claimPending({ mintedBefore: now, now, leaseMs: 30_000, limit: 100 });
      expect(claimed.map((t) => t.id).sort()).toEqual([...old.slice(0, 5), ...young].map((t) => t.id).sort());
      // A claim takes the oldest first across the shards and the unsharded partition.
      const later = now + 60_000;
      const firstThree = await sharded.claimPending({
        mintedBefore: later,
        now: later,
        leaseMs: 1,
        limit: 3,
      });
      expect(firstThree.map((t) => t.id)).toEqual(old.slice(0, 3).map((t) => t.id));

      // The tombstone written unsharded is swept by the sharded store.
      expect(await sharded.purge(now + 60_000)).toBe(1);
      expect(await sharded.getToken(old[5]!.id)).toBeUndefined();
    });

    it('refuses a shard count outside 1 to 64', async () => {
      for (const statusShards of [0, 65, 1.5]) {
        await expect(openStore({ statusShards })).rejects.toBeInstanceOf(ConfigError);
      }
    });
  });

  describe('group commit', () => {
    /** A store on its own client, which counts the TransactWriteItems requests it sends. */
    async function countingStore(options: { groupCommits?: boolean } = {}) {
      const client = new DynamoDBClient({
        endpoint: dynamo.endpoint(),
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
      });
      const sent = { transactions: 0, batchGets: 0, gets: 0 };
      client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'TransactWriteItemsCommand') sent.transactions += 1;
          if (context.commandName === 'BatchGetItemCommand') sent.batchGets += 1;
          if (context.commandName === 'GetItemCommand') sent.gets += 1;
          return next(args);
        },
        { step: 'initialize' },
      );
      const store = await openStore({ client, ...options });
      return { store, sent, close: () => client.destroy() };
    }
    const fail = (result: CommitResult) => (result.ok ? undefined : result.failure);

    it('sends the commits of one turn as one transaction; a failed one gets its own answer and writes nothing', async () => {
      const { store, sent, close } = await countingStore();
      try {
        const good = Array.from({ length: 8 }, () => pending());
        const [duplicate, conflicting, colliding, mismatched, taken] = Array.from({ length: 5 }, () =>
          pending(),
        ) as [TokenRecord, TokenRecord, TokenRecord, TokenRecord, TokenRecord];
        await store.mint([...good, duplicate, conflicting, colliding, mismatched, taken]);
        expect(await store.commit(consumeOf(duplicate))).toEqual({ ok: true });
        sent.transactions = 0;

        const children = good.map(() => pending());
        const now = Date.now();
        const results = await Promise.all([
          ...good.map((token, i) =>
            store.commit({
              ...consumeOf(token, now),
              writes: [{ key: `group:${i}`, value: i }],
              mints: [children[i]!],
            }),
          ),
          store.commit(consumeOf(duplicate, now)),
          store.commit({
            ...consumeOf(conflicting, now),
            writes: [{ key: 'group:conflict', value: 1, expectedVersion: 5 }],
          }),
          store.commit({ ...consumeOf(colliding, now), mints: [taken] }),
          store.commit({
            ...consumeOf(mismatched, now),
            consume: { ...consumeOf(mismatched).consume, fingerprint: 'other payload' },
          }),
        ]);

        expect(results.slice(0, 8)).toEqual(good.map(() => ({ ok: true })));
        expect(results.slice(8).map(fail)).toEqual([
          { kind: 'token-not-live', status: 'consumed', expired: false },
          { kind: 'version-conflict', key: 'group:conflict' },
          { kind: 'mint-collision', tokenId: taken.id },
          { kind: 'fingerprint-mismatch' },
        ]);
        // The group was cancelled once; the failed commits were judged from its reasons, the others sent again.
        expect(sent.transactions).toBe(2);
        for (const [i, token] of good.entries()) {
          expect((await store.getToken(token.id))?.status).toBe('consumed');
          expect(await store.readState(`group:${i}`)).toMatchObject({ value: i, version: 1 });
          expect((await store.getToken(children[i]!.id))?.status).toBe('pending');
        }
        for (const token of [conflicting, colliding, mismatched, taken]) {
          expect((await store.getToken(token.id))?.status).toBe('pending');
        }
        expect(await store.readState('group:conflict')).toBeUndefined();
      } finally {
        close();
      }
    });

    it('keeps commits on one item apart, and splits a turn at 100 actions', async () => {
      const { store, sent, close } = await countingStore();
      try {
        const pair = [pending(), pending()];
        await store.mint(pair);
        sent.transactions = 0;
        const both = await Promise.all(
          pair.map((token) => store.commit({ ...consumeOf(token), writes: [{ key: 'shared', value: 1 }] })),
        );
        expect(both).toEqual([{ ok: true }, { ok: true }]);
        expect(sent.transactions).toBe(2);
        expect(await store.readState('shared')).toMatchObject({ version: 2 });

        // 40 commits of 3 actions each: 120 actions, two transactions.
        const many = Array.from({ length: 40 }, () => pending());
        await store.mint(many);
        sent.transactions = 0;
        const results = await Promise.all(
          many.map((token, i) =>
            store.commit({
              ...consumeOf(token),
              writes: [{ key: `many:${i}`, value: i }],
              mints: [pending()],
            }),
          ),
        );
        expect(results.every((r) => r.ok)).toBe(true);
        expect(sent.transactions).toBe(2);
        expect((await store.getToken(many[39]!.id))?.status).toBe('consumed');
      } finally {
        close();
      }
    });

    it('reads the tokens asked for in one turn with one request, each reader getting its own answer', async () => {
      const { store, sent, close } = await countingStore();
      try {
        const tokens = Array.from({ length: 5 }, () => pending());
        await store.mint(tokens);
        await store.commit(consumeOf(tokens[0]!));
        const unknown = pending();
        const ids = [...tokens.map((t) => t.id), tokens[1]!.id, unknown.id];
        const read = await Promise.all(ids.map((id) => store.getToken(id)));
        expect(read.map((t) => t?.status)).toEqual([
          'consumed',
          'pending',
          'pending',
          'pending',
          'pending',
          'pending',
          undefined,
        ]);
        expect(read[2]).toEqual(tokens[2]);
        expect(sent).toMatchObject({ batchGets: 1, gets: 0 });
        // Alone in its turn, a read is a GetItem.
        expect((await store.getToken(tokens[3]!.id))?.id).toBe(tokens[3]!.id);
        expect(sent).toMatchObject({ batchGets: 1, gets: 1 });
      } finally {
        close();
      }
    });

    it('answers the reads and commits asked for before close, and refuses those after', async () => {
      const store = await openStore();
      const [read, committed] = [pending(), pending()];
      await store.mint([read, committed]);
      const reading = store.getToken(read.id);
      const committing = store.commit(consumeOf(committed));
      await store.close();
      expect((await reading)?.id).toBe(read.id);
      expect(await committing).toEqual({ ok: true });
      await expect(store.getToken(read.id)).rejects.toBeInstanceOf(ClosedError);
      await expect(store.commit(consumeOf(read))).rejects.toBeInstanceOf(ClosedError);
      const after = await openStore({ tokensTable: store.tokensTable, stateTable: store.stateTable });
      expect((await after.getToken(committed.id))?.status).toBe('consumed');
    });

    it('sends each commit alone when grouping is off', async () => {
      const { store, sent, close } = await countingStore({ groupCommits: false });
      try {
        const tokens = Array.from({ length: 5 }, () => pending());
        await store.mint(tokens);
        sent.transactions = 0;
        const results = await Promise.all(tokens.map((token) => store.commit(consumeOf(token))));
        expect(results.every((r) => r.ok)).toBe(true);
        expect(sent.transactions).toBe(5);
        await expect(openStore({ groupCommits: 'yes' as unknown as boolean })).rejects.toBeInstanceOf(
          ConfigError,
        );
      } finally {
        close();
      }
    });
  });
});
