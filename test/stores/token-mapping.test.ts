import { describe, expect, it } from 'vitest';
import type { TokenRecord } from '../../src/core/token.js';
import { TOKEN_FIELD_LIST, TOKEN_FIELDS, type TokenFieldTable } from '../../src/core/token-fields.js';
import { itemToToken, TOKEN_ATTR, tokenToItem } from '../../src/stores/dynamodb/marshal.js';
import { INSERT_TYPES } from '../../src/stores/postgres/rows.js';
import { SqliteTokenStore } from '../../src/stores/sqlite/sqlite-store.js';
import {
  fromTuple,
  INSERT_COLUMNS,
  TOKEN_COLUMN_LIST,
  TOKEN_COLUMNS,
  tokenValues,
} from '../../src/stores/token-tuple.js';

/** Every field set: typed Required so that a field added to TokenRecord must be added here too. */
const full: Required<TokenRecord> = {
  id: 'tok-full',
  conversationId: 'conv-1',
  parentId: 'tok-parent',
  mintedBy: 'orders',
  destination: { medium: 'amqp', exchange: 'orders', routingKey: 'placed' },
  fingerprint: 'f'.repeat(64),
  payload: { order: 7, lines: [1.5, null, 'x'], empty: {} },
  headers: { 'x-trace': 'abc' },
  status: 'consumed',
  mintedAt: 1_700_000_000_000,
  dispatchedAt: 1_700_000_000_100,
  attempts: 3,
  expiresAt: 1_700_000_900_000,
  consumedAt: 1_700_000_000_200,
  consumedBy: 'payments',
  commitId: 'commit-1',
  response: { statusCode: 201, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' },
  leaseUntil: 1_700_000_030_000,
  retainUntil: 1_700_086_400_000,
  dueAt: 1_700_000_060_000,
};

const minimal: TokenRecord = {
  id: 'tok-min',
  conversationId: 'conv-2',
  mintedBy: 'edge',
  status: 'pending',
  mintedAt: 1_700_000_000_000,
  attempts: 0,
};

/** A JSON null payload is a value, not an absence: every store keeps the two apart. */
const nullPayload: TokenRecord = { ...minimal, id: 'tok-null', payload: null };

const samples = { 'fully populated': full, minimal, 'null payload': nullPayload };

describe('the token field table', () => {
  it('lists every TokenRecord key, and only those', () => {
    expect(Object.keys(TOKEN_FIELDS).sort()).toEqual(Object.keys(full).sort());
  });

  it('marks optional exactly the fields a minimal token may leave out', () => {
    const required = TOKEN_FIELD_LIST.filter((field) => !field.optional).map((field) => field.name);
    expect(required.sort()).toEqual(Object.keys(minimal).sort());
  });

  it('is checked against TokenRecord when compiled', () => {
    const { commitId: _, ...withoutCommitId } = TOKEN_FIELDS;
    // @ts-expect-error a table missing a TokenRecord key does not compile
    const missing: TokenFieldTable = withoutCommitId;
    // @ts-expect-error nor does one that calls a required field optional
    const optionalId: TokenFieldTable = { ...TOKEN_FIELDS, id: { type: 'text', optional: true } };
    // @ts-expect-error nor one that stores an instant as text
    const textInstant: TokenFieldTable = { ...TOKEN_FIELDS, mintedAt: { type: 'text', optional: false } };
    expect([missing, optionalId, textInstant]).toHaveLength(3);
  });
});

describe('each store keeps its stored format', () => {
  it('SQL stores: the columns the schemas have', () => {
    expect(TOKEN_COLUMNS).toBe(
      'id, conversation_id, parent_id, minted_by, destination, fingerprint, payload, headers, status, minted_at, ' +
        'dispatched_at, attempts, expires_at, consumed_at, consumed_by, response, lease_until, retain_until, commit_id, ' +
        'due_at',
    );
    expect(INSERT_COLUMNS).toBe(`${TOKEN_COLUMNS}, medium`);
    expect(INSERT_TYPES).toEqual([
      ...['text', 'text', 'text', 'text', 'text', 'text', 'text', 'text', 'text'],
      ...[
        'bigint',
        'bigint',
        'integer',
        'bigint',
        'bigint',
        'text',
        'text',
        'bigint',
        'bigint',
        'text',
        'bigint',
        'text',
      ],
    ]);
  });

  it('SQL stores: JSON as text, absent fields as NULL, the medium beside the destination', () => {
    const values = tokenValues(full);
    expect(values[TOKEN_COLUMN_LIST.indexOf('destination')]).toBe(JSON.stringify(full.destination));
    expect(values[TOKEN_COLUMN_LIST.indexOf('minted_at')]).toBe(full.mintedAt);
    expect(values.at(-1)).toBe('amqp');
    expect(tokenValues(minimal).filter((value) => value !== null)).toHaveLength(6);
  });

  it('DynamoDB: the attribute names and encodings the table has', () => {
    const item = tokenToItem(full, 1000);
    expect(Object.keys(item).sort()).toEqual(
      [...Object.keys(full), 'medium', 'gsiStatus', 'gsiSort', 'gsiConv', 'ttl'].sort(),
    );
    expect(item[TOKEN_ATTR.mintedAt]).toEqual({ N: '1700000000000' });
    expect(item[TOKEN_ATTR.payload]).toEqual({ S: JSON.stringify(full.payload) });
    expect(item[TOKEN_ATTR.medium]).toEqual({ S: 'amqp' });
    expect(item[TOKEN_ATTR.gsiSort]).toEqual({ S: '001700000000000#tok-full' });
    expect(Object.keys(tokenToItem(minimal, 1000)).sort()).toEqual(
      [...Object.keys(minimal), 'gsiStatus', 'gsiSort', 'gsiConv'].sort(),
    );
  });
});

describe('a token round-trips through each store mapping', () => {
  for (const [name, token] of Object.entries(samples)) {
    it(`SQL tuple (SQLite, PostgreSQL): ${name}`, () => {
      const selected = tokenValues(token).slice(0, TOKEN_COLUMN_LIST.length);
      expect(fromTuple(selected)).toStrictEqual(token);
    });

    it(`DynamoDB item: ${name}`, () => {
      expect(itemToToken(tokenToItem(token, 60_000, 4))).toStrictEqual(token);
    });

    it(`SQLite file, through the store: ${name}`, async () => {
      const store = new SqliteTokenStore({ filename: ':memory:' });
      try {
        await store.mint([token]);
        expect(await store.getToken(token.id)).toStrictEqual(token);
      } finally {
        await store.close();
      }
    });
  }

  it('decodes records with their keys in one order in every store', () => {
    const sql = Object.keys(fromTuple(tokenValues(full).slice(0, TOKEN_COLUMN_LIST.length)));
    expect(Object.keys(itemToToken(tokenToItem(full, 0)))).toEqual(sql);
    expect(sql.slice(0, 6)).toEqual(['id', 'conversationId', 'mintedBy', 'status', 'mintedAt', 'attempts']);
  });
});
