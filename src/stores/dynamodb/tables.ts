import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type DynamoDBClient,
  ResourceInUseException,
  ResourceNotFoundException,
  type TableDescription,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { ConfigError } from '../../core/errors.js';
import { STATE_ATTR, TOKEN_ATTR } from './marshal.js';

/** Global secondary indexes of the tokens table (both project ALL: listing and relay need whole records). */
export const INDEX = {
  /**
   * PK gsiStatus, SK gsiSort (padded mintedAt # id): tokens of one status, oldest first; `scheduled` tokens
   * by padded dueAt # id instead, earliest due first.
   */
  byStatus: 'byStatus',
  /** PK gsiConv, SK gsiSort: the tokens of one conversation, oldest first. */
  byConversation: 'byConversation',
} as const;

/** The tokens table's TTL attribute (epoch seconds). */
export const TTL_ATTRIBUTE = TOKEN_ATTR.ttl;

export interface TableNames {
  tokensTable: string;
  stateTable: string;
}

/**
 * The tokens table. deploy/dynamodb-table.yaml declares the same table for CloudFormation; a test
 * checks that the two agree.
 */
export function tokensTableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [
      { AttributeName: TOKEN_ATTR.id, AttributeType: 'S' },
      { AttributeName: TOKEN_ATTR.gsiStatus, AttributeType: 'S' },
      { AttributeName: TOKEN_ATTR.gsiSort, AttributeType: 'S' },
      { AttributeName: TOKEN_ATTR.gsiConv, AttributeType: 'S' },
    ],
    KeySchema: [{ AttributeName: TOKEN_ATTR.id, KeyType: 'HASH' }],
    GlobalSecondaryIndexes: [
      {
        IndexName: INDEX.byStatus,
        KeySchema: [
          { AttributeName: TOKEN_ATTR.gsiStatus, KeyType: 'HASH' },
          { AttributeName: TOKEN_ATTR.gsiSort, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
      {
        IndexName: INDEX.byConversation,
        KeySchema: [
          { AttributeName: TOKEN_ATTR.gsiConv, KeyType: 'HASH' },
          { AttributeName: TOKEN_ATTR.gsiSort, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ],
  };
}

/** The endpoints' state: one item per key, JSON text value, version for optimistic concurrency. */
export function stateTableDefinition(tableName: string): CreateTableCommandInput {
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [{ AttributeName: STATE_ATTR.key, AttributeType: 'S' }],
    KeySchema: [{ AttributeName: STATE_ATTR.key, KeyType: 'HASH' }],
  };
}

export interface EnsureTablesOptions {
  /** How long to wait for a new table to become ACTIVE. Default 120 s. */
  timeoutMs?: number;
}

/**
 * Creates the two tables if they are missing, waits until they are ACTIVE and enables TTL on the tokens
 * table. Idempotent, and safe to run from several processes at once (a concurrent creation is awaited).
 * An existing table with a different key schema or without the indexes is a configuration error.
 */
export async function ensureTables(
  client: DynamoDBClient,
  names: TableNames,
  options: EnsureTablesOptions = {},
): Promise<void> {
  if (names.tokensTable === names.stateTable) {
    throw new ConfigError('stateTable', 'must differ from tokensTable');
  }
  const maxWaitTime = Math.ceil((options.timeoutMs ?? 120_000) / 1000);
  await Promise.all([
    ensureTable(client, tokensTableDefinition(names.tokensTable), maxWaitTime),
    ensureTable(client, stateTableDefinition(names.stateTable), maxWaitTime),
  ]);
  await ensureTtl(client, names.tokensTable);
}

async function ensureTable(client: DynamoDBClient, definition: CreateTableCommandInput, maxWaitTime: number) {
  const tableName = definition.TableName!;
  let existing = await describe(client, tableName);
  if (existing === undefined) {
    try {
      await client.send(new CreateTableCommand(definition));
    } catch (error) {
      // Another process created it between our describe and create: fine, wait for it like for ours.
      if (!(error instanceof ResourceInUseException)) throw error;
    }
  }
  if (existing?.TableStatus !== 'ACTIVE') {
    await waitUntilTableExists({ client, maxWaitTime, minDelay: 1, maxDelay: 5 }, { TableName: tableName });
    existing = await describe(client, tableName);
  }
  if (existing) assertCompatible(existing, definition);
}

async function describe(client: DynamoDBClient, tableName: string): Promise<TableDescription | undefined> {
  try {
    return (await client.send(new DescribeTableCommand({ TableName: tableName }))).Table;
  } catch (error) {
    if (error instanceof ResourceNotFoundException) return undefined;
    throw error;
  }
}

function assertCompatible(table: TableDescription, definition: CreateTableCommandInput): void {
  const tableName = definition.TableName!;
  const keyOf = (schema: { AttributeName?: string; KeyType?: string }[] | undefined) =>
    JSON.stringify((schema ?? []).map((k) => [k.AttributeName, k.KeyType]));
  if (keyOf(table.KeySchema) !== keyOf(definition.KeySchema)) {
    throw new ConfigError(tableName, `existing table has key schema ${keyOf(table.KeySchema)}`);
  }
  for (const wanted of definition.GlobalSecondaryIndexes ?? []) {
    const found = table.GlobalSecondaryIndexes?.find((gsi) => gsi.IndexName === wanted.IndexName);
    if (!found || keyOf(found.KeySchema) !== keyOf(wanted.KeySchema)) {
      throw new ConfigError(tableName, `existing table lacks index ${wanted.IndexName} keyed as expected`);
    }
  }
}

async function ensureTtl(client: DynamoDBClient, tableName: string): Promise<void> {
  const current = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
  const status = current.TimeToLiveDescription?.TimeToLiveStatus;
  if (status === 'ENABLED' || status === 'ENABLING') {
    const attribute = current.TimeToLiveDescription?.AttributeName;
    if (attribute !== TTL_ATTRIBUTE) {
      throw new ConfigError(tableName, `TTL is enabled on attribute ${attribute}, expected ${TTL_ATTRIBUTE}`);
    }
    return;
  }
  try {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
      }),
    );
  } catch (error) {
    // A concurrent ensureTables enabled it first (DynamoDB answers "TimeToLive is already enabled").
    const again = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
    const after = again.TimeToLiveDescription?.TimeToLiveStatus;
    if (after !== 'ENABLED' && after !== 'ENABLING') throw error;
  }
}
