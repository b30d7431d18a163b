import {
  type AttributeValue,
  CreateTableCommand,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ErrorCodes,
  InvalidArgumentError,
  LimitExceededError,
  OwnConditionFailedError,
} from '../../../src/core/errors.js';
import { fingerprint } from '../../../src/core/fingerprint.js';
import { newTokenId } from '../../../src/core/ids.js';
import { checkCommitSize } from '../../../src/core/limits.js';
import { processSignal } from '../../../src/core/processor.js';
import type { CommitRequest, CommitResult, StagedAction } from '../../../src/core/store.js';
import type { TokenRecord } from '../../../src/core/token.js';
import type { DynamoDbTokenStore } from '../../../src/stores/dynamodb/dynamodb-store.js';
import { itemSize } from '../../../src/stores/dynamodb/limits.js';
import type { DynamoItem, DynamoTx } from '../../../src/stores/dynamodb/own-data.js';
import { freshStore } from '../../support/stores.js';

let store: DynamoDbTokenStore;
/** The application's own table: pk (S) + sk (N), a unique name per run. */
let bookings: string;

beforeAll(async () => {
  store = (await freshStore('dynamodb')) as DynamoDbTokenStore;
  bookings = `Bookings_${newTokenId()
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, 12)}`;
  await store.client.send(
    new CreateTableCommand({
      TableName: bookings,
      BillingMode: 'PAY_PER_REQUEST',
      AttributeDefinitions: [
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'N' },
      ],
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
    }),
  );
  await waitUntilTableExists({ client: store.client, maxWaitTime: 60 }, { TableName: bookings });
});

afterAll(async () => {
  await store?.close();
});

function pending(overrides: Partial<TokenRecord> = {}): TokenRecord {
  const payload = overrides.payload ?? { n: newTokenId() };
  return {
    id: newTokenId(),
    conversationId: newTokenId(),
    mintedBy: 'test',
    destination: { medium: 'amqp', exchange: 'x', routingKey: 'r' },
    fingerprint: fingerprint(payload),
    payload,
    status: 'pending',
    mintedAt: Date.now(),
    attempts: 0,
    ...overrides,
  };
}

async function mintRoot(): Promise<TokenRecord> {
  const token = pending();
  await store.mint([token]);
  return token;
}

function consumeOf(token: TokenRecord, own: readonly StagedAction[] = []): CommitRequest {
  const request: CommitRequest = {
    consume: { tokenId: token.id, fingerprint: token.fingerprint!, consumedBy: 'handler' },
    writes: [],
    mints: [],
    now: Date.now(),
  };
  if (own.length > 0) request.own = own;
  return request;
}

/** Stages on a fresh handle, as one handler run would, and returns what it staged. */
function stage(body: (tx: DynamoTx) => void): readonly StagedAction[] {
  const { handle, staged } = store.ownData.open();
  body(handle);
  return staged();
}

const fail = (result: CommitResult) => (result.ok ? undefined : result.failure);
const key = (pk: string, sk = 1): DynamoItem => ({ pk: { S: pk }, sk: { N: String(sk) } });
const label = (pk: string, sk = 1) => `${bookings} {"pk":{"S":"${pk}"},"sk":{"N":"${sk}"}}`;
const unique = (prefix: string) => `${prefix}-${newTokenId()}`;

async function readBooking(pk: string, sk = 1): Promise<DynamoItem | undefined> {
  const out = await store.client.send(
    new GetItemCommand({ TableName: bookings, Key: key(pk, sk), ConsistentRead: true }),
  );
  return out.Item;
}

async function seed(item: DynamoItem): Promise<void> {
  await store.client.send(new PutItemCommand({ TableName: bookings, Item: item }));
}

describe('DynamoDB store: handlers change their own tables in the token’s transaction', () => {
  it('offers a staged handle whose actions commit with the consume, state writes and mints', async () => {
    expect(store.ownData.mode).toBe('staged');
    const root = await mintRoot();
    const [booked, counted, cancelled, guarded] = [unique('b'), unique('c'), unique('x'), unique('g')];
    await seed({ ...key(counted), seats: { N: '3' } });
    await seed({ ...key(cancelled), seats: { N: '1' } });
    await seed({ ...key(guarded), open: { BOOL: true } });

    const { handle, staged } = store.ownData.open();
    // Reads are strongly consistent and happen now.
    expect(await handle.get({ TableName: bookings, Key: key(counted) })).toEqual({
      ...key(counted),
      seats: { N: '3' },
    });
    expect(
      await handle.get({
        TableName: bookings,
        Key: key(counted),
        ProjectionExpression: '#s',
        ExpressionAttributeNames: { '#s': 'seats' },
      }),
    ).toEqual({ seats: { N: '3' } });
    expect(await handle.get({ TableName: bookings, Key: key(booked) })).toBeUndefined();

    handle.put({
      TableName: bookings,
      Item: { ...key(booked), guest: { S: 'Ada' }, seats: { N: '2' } },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
    handle.update({
      TableName: bookings,
      Key: key(counted),
      UpdateExpression: 'SET #s = #s + :one',
      ConditionExpression: '#s < :max',
      ExpressionAttributeNames: { '#s': 'seats' },
      ExpressionAttributeValues: { ':one': { N: '1' }, ':max': { N: '10' } },
    });
    handle.delete({ TableName: bookings, Key: key(cancelled) });
    handle.conditionCheck({
      TableName: bookings,
      Key: key(guarded),
      ConditionExpression: '#o = :yes',
      ExpressionAttributeNames: { '#o': 'open' },
      ExpressionAttributeValues: { ':yes': { BOOL: true } },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    // Staged, not sent.
    expect(await readBooking(booked)).toBeUndefined();
    const own = staged();
    expect(own).toHaveLength(4);
    for (const action of own) expect(action.bytes).toBeGreaterThan(0);

    const child = pending();
    const result = await store.commit({
      ...consumeOf(root, own),
      writes: [{ key: `state-${booked}`, value: { booked: true } }],
      mints: [child],
    });
    expect(result).toEqual({ ok: true });
    expect((await store.getToken(root.id))?.status).toBe('consumed');
    expect((await store.getToken(child.id))?.status).toBe('pending');
    expect((await store.readState(`state-${booked}`))?.value).toEqual({ booked: true });
    expect(await readBooking(booked)).toEqual({ ...key(booked), guest: { S: 'Ada' }, seats: { N: '2' } });
    expect((await readBooking(counted))?.seats).toEqual({ N: '4' });
    expect(await readBooking(cancelled)).toBeUndefined();
    expect(await readBooking(guarded)).toEqual({ ...key(guarded), open: { BOOL: true } });
  });

  it('changes nothing in the user table when a duplicate commits on the consumed token', async () => {
    const root = await mintRoot();
    const counted = unique('dup');
    await seed({ ...key(counted), seats: { N: '0' } });
    const increment = () =>
      stage((tx) => {
        tx.update({
          TableName: bookings,
          Key: key(counted),
          UpdateExpression: 'ADD seats :one',
          ExpressionAttributeValues: { ':one': { N: '1' } },
        });
        tx.put({ TableName: bookings, Item: { ...key(`${counted}-log`), by: { S: 'first' } } });
      });
    expect(await store.commit(consumeOf(root, increment()))).toEqual({ ok: true });
    const after = await readBooking(counted);
    expect(after?.seats).toEqual({ N: '1' });

    // The copy's own actions are unconditional: only the consume's condition stops them.
    const copy = stage((tx) => {
      tx.update({
        TableName: bookings,
        Key: key(counted),
        UpdateExpression: 'ADD seats :one',
        ExpressionAttributeValues: { ':one': { N: '1' } },
      });
      tx.put({ TableName: bookings, Item: { ...key(`${counted}-log`), by: { S: 'copy' } } });
    });
    expect(fail(await store.commit(consumeOf(root, copy)))).toEqual({
      kind: 'token-not-live',
      status: 'consumed',
      expired: false,
    });
    expect(await readBooking(counted)).toEqual(after);
    expect((await readBooking(`${counted}-log`))?.by).toEqual({ S: 'first' });

    // A consumed token wins over a failing own condition too: a duplicate is never an own failure.
    const failing = stage((tx) =>
      tx.conditionCheck({
        TableName: bookings,
        Key: key(counted),
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
    expect(fail(await store.commit(consumeOf(root, failing)))).toMatchObject({ kind: 'token-not-live' });
  });

  it('reports a failed own condition as own-condition-failed naming the item, and writes nothing', async () => {
    const root = await mintRoot();
    const [fresh, taken] = [unique('fresh'), unique('taken')];
    await seed({ ...key(taken, 7), guest: { S: 'Bob' } });
    const child = pending();
    const attempt = (retryOnConflict: boolean | undefined) =>
      stage((tx) => {
        tx.put({ TableName: bookings, Item: { ...key(fresh), guest: { S: 'Eve' } } });
        tx.put({
          TableName: bookings,
          Item: { ...key(taken, 7), guest: { S: 'Eve' } },
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          ...(retryOnConflict === undefined ? {} : { retryOnConflict }),
        });
      });
    for (const [retryOnConflict, retry] of [
      [undefined, false],
      [false, false],
      [true, true],
    ] as const) {
      const result = await store.commit({
        ...consumeOf(root, attempt(retryOnConflict)),
        writes: [{ key: `state-${fresh}`, value: 1 }],
        mints: [child],
      });
      expect(fail(result)).toEqual({ kind: 'own-condition-failed', item: label(taken, 7), retry });
    }
    // The token is untouched (still live), and nothing of the transaction was written.
    expect((await store.getToken(root.id))?.status).toBe('pending');
    expect(await store.getToken(child.id)).toBeUndefined();
    expect(await store.readState(`state-${fresh}`)).toBeUndefined();
    expect(await readBooking(fresh)).toBeUndefined();
    expect((await readBooking(taken, 7))?.guest).toEqual({ S: 'Bob' });

    // An Update's, Delete's and ConditionCheck's failures are named by their Key.
    for (const failing of [
      (tx: DynamoTx) =>
        tx.update({
          TableName: bookings,
          Key: key(taken, 7),
          UpdateExpression: 'SET guest = :g',
          ConditionExpression: 'guest = :other',
          ExpressionAttributeValues: { ':g': { S: 'Eve' }, ':other': { S: 'Zed' } },
          retryOnConflict: true,
        }),
      (tx: DynamoTx) =>
        tx.delete({
          TableName: bookings,
          Key: key(taken, 7),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      (tx: DynamoTx) =>
        tx.conditionCheck({
          TableName: bookings,
          Key: key(fresh),
          ConditionExpression: 'attribute_exists(pk)',
        }),
    ]) {
      const failure = fail(await store.commit(consumeOf(root, stage(failing))));
      expect(failure).toMatchObject({ kind: 'own-condition-failed' });
    }
    expect((await readBooking(taken, 7))?.guest).toEqual({ S: 'Bob' });

    // A state version conflict in the same transaction is reported as such (the handler re-runs either way).
    await store.commit({ ...consumeOf(await mintRoot()), writes: [{ key: `v-${fresh}`, value: 1 }] });
    const conflict = await store.commit({
      ...consumeOf(root, attempt(false)),
      writes: [{ key: `v-${fresh}`, value: 2, expectedVersion: 0 }],
    });
    expect(fail(conflict)).toEqual({ kind: 'version-conflict', key: `v-${fresh}` });

    // Once the condition holds, the same hop commits.
    const ok = stage((tx) =>
      tx.put({
        TableName: bookings,
        Item: { ...key(taken, 7), guest: { S: 'Eve' } },
        ConditionExpression: 'guest = :bob',
        ExpressionAttributeValues: { ':bob': { S: 'Bob' } },
      }),
    );
    expect(await store.commit(consumeOf(root, ok))).toEqual({ ok: true });
    expect((await readBooking(taken, 7))?.guest).toEqual({ S: 'Eve' });
  });

  it('counts each own action toward the 100 items and 4 MB of a commit, with sizes that err high', async () => {
    const root = await mintRoot();
    const hundred = stage((tx) => {
      for (let i = 0; i < 100; i++) tx.put({ TableName: bookings, Item: key(`many-${root.id}`, i) });
    });
    // The core's check (consume + 100) and the store's own.
    expect(() => checkCommitSize([512, ...hundred.map((a) => a.bytes)])).toThrow(LimitExceededError);
    await expect(store.commit(consumeOf(root, hundred))).rejects.toMatchObject({
      details: { limit: 100, actual: 101 },
    });
    const twelveHeavy = stage((tx) => {
      for (let i = 0; i < 12; i++) {
        tx.put({
          TableName: bookings,
          Item: { ...key(`heavy-${root.id}`, i), blob: { S: 'y'.repeat(390 * 1024) } },
        });
      }
    });
    expect(() => checkCommitSize([512, ...twelveHeavy.map((a) => a.bytes)])).toThrow(LimitExceededError);
    await expect(store.commit(consumeOf(root, twelveHeavy))).rejects.toBeInstanceOf(LimitExceededError);
    const tooBig = stage((tx) =>
      tx.put({
        TableName: bookings,
        Item: { ...key(`big-${root.id}`), blob: { S: 'z'.repeat(401 * 1024) } },
      }),
    );
    await expect(store.commit(consumeOf(root, tooBig))).rejects.toBeInstanceOf(LimitExceededError);
    expect((await store.getToken(root.id))?.status).toBe('pending');
    expect(await readBooking(`many-${root.id}`, 0)).toBeUndefined();

    // consume + 99 own actions = 100: DynamoDB takes it.
    const ninetyNine = stage((tx) => {
      for (let i = 0; i < 99; i++) tx.put({ TableName: bookings, Item: key(`many-${root.id}`, i) });
    });
    expect(() => checkCommitSize([512, ...ninetyNine.map((a) => a.bytes)])).not.toThrow();
    expect(await store.commit(consumeOf(root, ninetyNine))).toEqual({ ok: true });
    expect(await readBooking(`many-${root.id}`, 98)).toEqual(key(`many-${root.id}`, 98));
  });

  it('estimates an action at least as large as DynamoDB measures what it writes', async () => {
    /** Write units DynamoDB charges for a plain write: one per started KB of the item (before or after). */
    const unitsOf = async (write: () => Promise<{ ConsumedCapacity?: { CapacityUnits?: number } }>) =>
      (await write()).ConsumedCapacity?.CapacityUnits ?? Number.NaN;

    // Items of every attribute type, padded to one byte over 1 KB, 2 KB and 3 KB as limits.ts measures them:
    // DynamoDB must charge the next unit too, so its own measure is not above the estimate.
    for (const [boundary, fill] of [
      [1024, 'a'],
      [2048, 'é'],
      [3072, '€'],
    ] as const) {
      const pk = unique('size');
      const item: DynamoItem = {
        ...key(pk, 123_456),
        tags: { SS: ['x', 'yy'] },
        scores: { NS: ['1', '22.5'] },
        raw: { B: new Uint8Array([1, 2, 3]) },
        nested: { M: { list: { L: [{ N: '3.14' }, { BOOL: true }, { NULL: true }, { S: 'ü' }] } } },
        note: { S: '' },
      };
      const padding = boundary + 1 - itemSize(item);
      item.note = {
        S:
          fill.repeat(Math.floor(padding / Buffer.byteLength(fill))) +
          'a'.repeat(padding % Buffer.byteLength(fill)),
      };
      expect(itemSize(item)).toBe(boundary + 1);
      const [put] = stage((tx) => tx.put({ TableName: bookings, Item: item }));
      const units = await unitsOf(() =>
        store.client.send(
          new PutItemCommand({ TableName: bookings, Item: item, ReturnConsumedCapacity: 'TOTAL' }),
        ),
      );
      expect(units).toBe(boundary / 1024 + 1);
      expect(put!.bytes).toBeGreaterThanOrEqual(boundary + 1);
      expect(Math.ceil(put!.bytes / 1024)).toBeGreaterThanOrEqual(units);
    }

    // An update that creates its item: the estimate covers key, names and values.
    const pk = unique('u');
    const values: Record<string, AttributeValue> = {
      ':n': { S: 'c'.repeat(1_000) },
      ':k': { N: '42' },
    };
    const input = {
      TableName: bookings,
      Key: key(pk),
      UpdateExpression: 'SET #note = :n, #count = :k',
      ExpressionAttributeNames: { '#note': 'note', '#count': 'count' },
      ExpressionAttributeValues: values,
    };
    const [update] = stage((tx) => tx.update(input));
    const units = await unitsOf(() =>
      store.client.send(new UpdateItemCommand({ ...input, ReturnConsumedCapacity: 'TOTAL' })),
    );
    expect(update!.bytes).toBeGreaterThanOrEqual(itemSize((await readBooking(pk))!));
    expect(Math.ceil(update!.bytes / 1024)).toBeGreaterThanOrEqual(units);
    expect(units).toBe(2);
  });

  it('refuses invalid actions when they are staged, with clear errors', async () => {
    const { handle } = store.ownData.open();
    const refused = (stageIt: () => unknown, message: RegExp) => {
      let error: unknown;
      try {
        stageIt();
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(message);
    };
    const any = handle as unknown as Record<string, (input: unknown) => unknown>;

    refused(() => any.put!({ Item: key('a') }), /needs a TableName/);
    refused(() => handle.put({ TableName: 'x', Item: key('a') }), /TableName must be 3 to 255/);
    refused(() => handle.put({ TableName: store.tokensTable, Item: key('a') }), /token store's own/);
    refused(
      () => handle.delete({ TableName: store.stateTable, Key: { key: { S: 'k' } } }),
      /token store's own/,
    );
    refused(
      () =>
        handle.conditionCheck({
          TableName: `arn:aws:dynamodb:us-east-1:123456789012:table/${store.tokensTable}`,
          Key: { id: { S: 'k' } },
          ConditionExpression: 'attribute_exists(id)',
        }),
      /token store's own/,
    );
    refused(() => any.put!({ TableName: bookings }), /needs an Item/);
    refused(
      () => handle.put({ TableName: bookings, Item: { pk: 'plain' as never } }),
      /Item.pk must be an AttributeValue/,
    );
    refused(() => any.update!({ TableName: bookings, UpdateExpression: 'SET a = :a' }), /needs a Key/);
    refused(() => handle.delete({ TableName: bookings, Key: {} }), /Key must hold/);
    refused(
      () => handle.delete({ TableName: bookings, Key: { ...key('a'), third: { S: 'x' } } }),
      /Key must hold/,
    );
    refused(() => handle.delete({ TableName: bookings, Key: { pk: { S: '' }, sk: { N: '1' } } }), /Key.pk/);
    refused(() => handle.delete({ TableName: bookings, Key: { pk: { BOOL: true } } }), /Key.pk/);
    refused(() => any.update!({ TableName: bookings, Key: key('a') }), /needs an UpdateExpression/);
    refused(
      () => any.conditionCheck!({ TableName: bookings, Key: key('a') }),
      /conditionCheck needs a ConditionExpression/,
    );
    refused(
      () => any.put!({ TableName: bookings, Item: key('a'), ConditionExpresion: 'attribute_not_exists(pk)' }),
      /unknown field ConditionExpresion/,
    );
    refused(
      () => handle.update({ TableName: bookings, Key: key('a'), UpdateExpression: 'SET #a = :a' }),
      /#a is used but not defined/,
    );
    refused(
      () =>
        handle.update({
          TableName: bookings,
          Key: key('a'),
          UpdateExpression: 'SET a = :a',
          ExpressionAttributeValues: { ':a': { S: 'x' }, ':unused': { S: 'y' } },
        }),
      /:unused\] is not used/,
    );
    refused(
      () =>
        handle.update({
          TableName: bookings,
          Key: key('a'),
          UpdateExpression: 'SET a = :a',
          ExpressionAttributeValues: { ':a': 'x' as never },
        }),
      /ExpressionAttributeValues\[:a\] is not valid/,
    );
    refused(
      () => handle.put({ TableName: bookings, Item: key('a'), retryOnConflict: true }),
      /retryOnConflict needs a ConditionExpression/,
    );
    refused(
      () =>
        handle.put({
          TableName: bookings,
          Item: key('a'),
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_NEW' as never,
        }),
      /ReturnValuesOnConditionCheckFailure/,
    );
    await expect(
      handle.get({ TableName: store.tokensTable, Key: { id: { S: 'x' } } }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(
      handle.get({ TableName: bookings, Key: key('a'), ExpressionAttributeNames: { '#x': 'x' } }),
    ).rejects.toThrow(/#x\] is not used/);

    // Two actions on one item (numbers compare by value, as DynamoDB does): refused, naming the item.
    handle.update({ TableName: bookings, Key: key('same'), UpdateExpression: 'REMOVE a' });
    refused(
      () =>
        handle.conditionCheck({
          TableName: bookings,
          Key: { sk: { N: '1.00' }, pk: { S: 'same' } },
          ConditionExpression: 'attribute_exists(pk)',
        }),
      new RegExp(`each item once.*${bookings} \\{"pk":\\{"S":"same"\\},"sk":\\{"N":"1"\\}\\}`),
    );
    // Another sort key, another item.
    handle.conditionCheck({
      TableName: bookings,
      Key: { pk: { S: 'same' }, sk: { N: '2' } },
      ConditionExpression: 'attribute_exists(pk)',
    });
  });

  it('refuses two actions on one item before sending, also when one is a Put (named by the key schema)', async () => {
    // A store that has not written to the table yet, so it learns the key schema in the commit.
    const fresh = (await freshStore('dynamodb')) as DynamoDbTokenStore;
    try {
      const root = pending();
      await fresh.mint([root]);
      const pk = unique('twice');
      const open = (body: (tx: DynamoTx) => void) => {
        const { handle, staged } = fresh.ownData.open();
        body(handle);
        return staged();
      };
      const own = open((tx) => {
        tx.put({ TableName: bookings, Item: { ...key(pk, 10), guest: { S: 'Ada' } } });
        tx.update({
          TableName: bookings,
          Key: { pk: { S: pk }, sk: { N: '1e1' } },
          UpdateExpression: 'SET guest = :g',
          ExpressionAttributeValues: { ':g': { S: 'Bob' } },
        });
      });
      const error = await fresh.commit(consumeOf(root, own)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).details).toEqual({ item: label(pk, 10) });
      // The table's key schema is known now: the next run is refused while staging.
      const { handle } = fresh.ownData.open();
      handle.put({ TableName: bookings, Item: key(pk, 10) });
      expect(() => handle.put({ TableName: bookings, Item: { ...key(pk, 10), other: { S: 'x' } } })).toThrow(
        InvalidArgumentError,
      );

      // A Put's item must carry the table's key (checked while staging once the key schema is known).
      const keyless = { TableName: bookings, Item: { pk: { S: pk }, guest: { S: 'x' } } };
      expect(() => open((tx) => tx.put(keyless))).toThrow(/needs its key attribute sk/);
      expect((await fresh.getToken(root.id))?.status).toBe('pending');
      expect(await readBooking(pk, 10)).toBeUndefined();

      // ...and in the commit before it is.
      const another = (await freshStore('dynamodb')) as DynamoDbTokenStore;
      try {
        const session = another.ownData.open();
        session.handle.put(keyless);
        await expect(another.commit(consumeOf(root, session.staged()))).rejects.toThrow(
          /needs its key attribute sk/,
        );
      } finally {
        await another.close();
      }
    } finally {
      await fresh.close();
    }
  });

  it('copies what is staged, ends the handle with its run, and takes only its own actions', async () => {
    const root = await mintRoot();
    const pk = unique('copy');
    const item: DynamoItem = { ...key(pk), guest: { S: 'Ada' } };
    const { handle, staged } = store.ownData.open();
    handle.put({ TableName: bookings, Item: item });
    item.guest = { S: 'changed after staging' };
    const own = staged();
    expect(() => handle.put({ TableName: bookings, Item: key(unique('late')) })).toThrow(
      /after the handler run ended/,
    );
    expect(staged()).toEqual(own);

    const other = (await freshStore('dynamodb')) as DynamoDbTokenStore;
    try {
      const foreign = other.ownData.open();
      foreign.handle.put({ TableName: bookings, Item: key(pk, 2) });
      await expect(store.commit(consumeOf(root, foreign.staged()))).rejects.toThrow(
        /this store’s own handle/,
      );
      await expect(store.commit(consumeOf(root, [{ bytes: 1 }]))).rejects.toBeInstanceOf(
        InvalidArgumentError,
      );
    } finally {
      await other.close();
    }

    expect(await store.commit(consumeOf(root, own))).toEqual({ ok: true });
    expect((await readBooking(pk))?.guest).toEqual({ S: 'Ada' });
  });

  it('reports an own table that does not exist as a permanent failure, with the token untouched', async () => {
    const root = await mintRoot();
    for (const body of [
      (tx: DynamoTx) => tx.put({ TableName: `Missing_${root.id.slice(0, 8)}`, Item: key('a') }),
      (tx: DynamoTx) =>
        tx.update({
          TableName: `Missing_${root.id.slice(0, 8)}`,
          Key: key('a'),
          UpdateExpression: 'REMOVE a',
        }),
    ]) {
      const result = await store.commit(consumeOf(root, stage(body)));
      expect(fail(result)?.kind).toBe('permanent');
    }
    expect((await store.getToken(root.id))?.status).toBe('pending');
  });
});

describe('processSignal with ctx.tx on the DynamoDB store', () => {
  const fast = {
    versionConflict: { attempts: 4, baseDelayMs: 1, maxDelayMs: 5 },
    transient: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
  };

  /** A handler that takes one seat, guarded by the count it read; a rival takes one between read and commit. */
  function takeSeat(pk: string, options: { retryOnConflict: boolean; rivalRuns: number }) {
    let runs = 0;
    const handler = async (ctx: { tx: DynamoTx; attempt: number; put(key: string, value: number): void }) => {
      runs += 1;
      const seen = (await ctx.tx.get({ TableName: bookings, Key: key(pk) }))?.seats?.N ?? '0';
      if (runs <= options.rivalRuns) {
        await store.client.send(
          new UpdateItemCommand({
            TableName: bookings,
            Key: key(pk),
            UpdateExpression: 'ADD seats :one',
            ExpressionAttributeValues: { ':one': { N: '1' } },
          }),
        );
      }
      ctx.tx.update({
        TableName: bookings,
        Key: key(pk),
        UpdateExpression: 'SET seats = :next',
        ConditionExpression: 'seats = :seen',
        ExpressionAttributeValues: { ':next': { N: String(Number(seen) + 1) }, ':seen': { N: seen } },
        retryOnConflict: options.retryOnConflict,
      });
      ctx.put(`seats/${pk}`, Number(seen) + 1);
      return ctx.attempt;
    };
    return { handler, runs: () => runs };
  }

  it('commits ctx.tx actions with the hop and drops a duplicate without touching the table', async () => {
    const root = await mintRoot();
    const pk = unique('hop');
    await seed({ ...key(pk), seats: { N: '0' } });
    const seat = takeSeat(pk, { retryOnConflict: false, rivalRuns: 0 });
    const request = {
      store,
      endpoint: 'seats',
      tokenId: root.id,
      payload: root.payload,
      handler: seat.handler,
    };
    expect(await processSignal(request)).toMatchObject({ kind: 'processed', result: 1, attempts: 1 });
    expect((await readBooking(pk))?.seats).toEqual({ N: '1' });
    expect((await store.readState(`seats/${pk}`))?.value).toBe(1);

    const copy = await processSignal(request);
    expect(copy.kind).toBe('dropped');
    expect(copy.kind === 'dropped' && copy.error.code).toBe(ErrorCodes.TOKEN_CONSUMED);
    expect(seat.runs()).toBe(1);
    expect((await readBooking(pk))?.seats).toEqual({ N: '1' });
  });

  it('re-runs the handler on fresh data when a condition marked retryOnConflict fails', async () => {
    const root = await mintRoot();
    const pk = unique('retry');
    await seed({ ...key(pk), seats: { N: '5' } });
    const seat = takeSeat(pk, { retryOnConflict: true, rivalRuns: 1 });
    const outcome = await processSignal({
      store,
      endpoint: 'seats',
      tokenId: root.id,
      payload: root.payload,
      handler: seat.handler,
      retry: fast,
    });
    expect(outcome).toMatchObject({ kind: 'processed', result: 2, attempts: 2 });
    // 5, the rival's +1, then this hop's +1 on what it read the second time.
    expect((await readBooking(pk))?.seats).toEqual({ N: '7' });
    expect((await store.readState(`seats/${pk}`))?.value).toBe(7);
    expect((await store.getToken(root.id))?.status).toBe('consumed');
  });

  it('fails the hop with OwnConditionFailedError otherwise, leaving the token live and nothing written', async () => {
    const root = await mintRoot();
    const pk = unique('once');
    await seed({ ...key(pk), seats: { N: '5' } });
    const seat = takeSeat(pk, { retryOnConflict: false, rivalRuns: 1 });
    const error = await processSignal({
      store,
      endpoint: 'seats',
      tokenId: root.id,
      payload: root.payload,
      handler: seat.handler,
      retry: fast,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OwnConditionFailedError);
    expect((error as OwnConditionFailedError).details).toMatchObject({ item: label(pk) });
    expect(seat.runs()).toBe(1);
    expect((await store.getToken(root.id))?.status).toBe('pending');
    expect(await store.readState(`seats/${pk}`)).toBeUndefined();
    expect((await readBooking(pk))?.seats).toEqual({ N: '6' });
  });

  it('refuses a hop whose own actions exceed the commit limits before sending anything', async () => {
    const root = await mintRoot();
    const pk = unique('limit');
    const error = await processSignal({
      store,
      endpoint: 'bulk',
      tokenId: root.id,
      payload: root.payload,
      handler: (ctx) => {
        for (let i = 0; i < 100; i++) ctx.tx.put({ TableName: bookings, Item: key(pk, i) });
      },
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LimitExceededError);
    expect((await store.getToken(root.id))?.status).toBe('pending');
    expect(await readBooking(pk, 0)).toBeUndefined();
  });
});
