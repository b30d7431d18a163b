import {
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  GetItemCommand,
} from '@aws-sdk/client-dynamodb';
import Database from 'better-sqlite3';
import pg from 'pg';
import { inject } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { newTokenId } from '../../src/core/ids.js';
import type { TokenStore } from '../../src/core/store.js';
import type { DynamoTx } from '../../src/stores/dynamodb/own-data.js';
import { openStore } from '../../src/stores/open.js';
import type { PgTx } from '../../src/stores/postgres/postgres-store.js';
import type { SqliteTx } from '../../src/stores/sqlite/own-data.js';
import { ownTablesContract } from '../contract/own-data.contract.js';
import { freshStoreConfig, POSTGRES_TEST_URL } from '../support/stores.js';

const unique = () =>
  newTokenId()
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, 10)
    .toLowerCase();

ownTablesContract<PgTx>('PostgreSQL (the open transaction)', {
  async open() {
    const config = freshStoreConfig('postgres');
    const store = (await openStore(config)) as TokenStore<PgTx>;
    const app = `app_${unique()}`;
    const admin = new pg.Client({ connectionString: POSTGRES_TEST_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${app}`);
    await admin.query(`CREATE TABLE ${app}.accounts (id text PRIMARY KEY, balance integer NOT NULL)`);
    return {
      store,
      table: `${app}.accounts`,
      async balance(id) {
        const { rows } = await admin.query(`SELECT balance FROM ${app}.accounts WHERE id = $1`, [id]);
        return rows[0]?.balance;
      },
      async cleanup() {
        await admin.query(`DROP SCHEMA ${app} CASCADE`);
        await admin.end();
      },
    };
  },
  async credit(tx, table, id, amount) {
    await tx.query(
      `INSERT INTO ${table} AS a (id, balance) VALUES ($1, $2)
       ON CONFLICT (id) DO UPDATE SET balance = a.balance + EXCLUDED.balance`,
      [id, amount],
    );
  },
  async create(tx, table, id, balance) {
    await tx.query(`INSERT INTO ${table} (id, balance) VALUES ($1, $2)`, [id, balance]);
  },
  // The unique violation is the handler's own SQL failing: the hop rolls back with it.
  refusedCode: ErrorCodes.HANDLER_FAILED,
});

ownTablesContract<DynamoTx>('DynamoDB Local (staged TransactWriteItems actions)', {
  async open() {
    const store = (await openStore(freshStoreConfig('dynamodb'))) as TokenStore<DynamoTx>;
    const client = new DynamoDBClient({
      endpoint: inject('dynamoEndpoint'),
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const table = `accounts_${unique()}`;
    await client.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    return {
      store,
      table,
      async balance(id) {
        const { Item } = await client.send(
          new GetItemCommand({ TableName: table, Key: { id: { S: id } }, ConsistentRead: true }),
        );
        return Item?.balance?.N === undefined ? undefined : Number(Item.balance.N);
      },
      async cleanup() {
        await client.send(new DeleteTableCommand({ TableName: table }));
        client.destroy();
      },
    };
  },
  async credit(tx, table, id, amount) {
    tx.update({
      TableName: table,
      Key: { id: { S: id } },
      UpdateExpression: 'ADD balance :amount',
      ExpressionAttributeValues: { ':amount': { N: String(amount) } },
    });
  },
  async create(tx, table, id, balance) {
    tx.put({
      TableName: table,
      Item: { id: { S: id }, balance: { N: String(balance) } },
      ConditionExpression: 'attribute_not_exists(id)',
    });
  },
  refusedCode: ErrorCodes.OWN_CONDITION_FAILED,
});

ownTablesContract<SqliteTx>('SQLite (staged statements in the same file)', {
  async open() {
    const config = freshStoreConfig('sqlite');
    if (config.kind !== 'sqlite') throw new Error('expected a SQLite config');
    const store = (await openStore(config)) as TokenStore<SqliteTx>;
    const db = new Database(config.filename);
    db.exec('CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL)');
    return {
      store,
      table: 'accounts',
      async balance(id) {
        const row = db.prepare('SELECT balance FROM accounts WHERE id = ?').get(id) as
          | { balance: number }
          | undefined;
        return row?.balance;
      },
      async cleanup() {
        db.close();
      },
    };
  },
  async credit(tx, table, id, amount) {
    tx.run(
      `INSERT INTO ${table} (id, balance) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET balance = balance + excluded.balance`,
      [id, amount],
    );
  },
  async create(tx, table, id, balance) {
    tx.run(`INSERT INTO ${table} (id, balance) VALUES (?, ?)`, [id, balance]);
  },
  refusedCode: ErrorCodes.OWN_CONDITION_FAILED,
});
