import type { TokenStore } from '../core/store.js';
import type { PostgresStoreOptions } from './postgres/options.js';

export { MAX_STATUS_SHARDS } from './dynamodb/marshal.js';

/** A serialisable description of a store, so configuration files and child processes can open the same one. */
export type StoreConfig =
  | { kind: 'sqlite'; filename: string; tombstoneRetentionMs?: number; backgroundCheckpoints?: boolean }
  | {
      kind: 'dynamodb';
      endpoint?: string;
      region: string;
      tokensTable: string;
      stateTable: string;
      /** Create the tables if missing (DynamoDB Local, development). Default false. */
      createTables?: boolean;
      tombstoneRetentionMs?: number;
      /** Partition key values per status in the byStatus index. Default 1; may grow, never shrink. */
      statusShards?: number;
      /** Commits of one turn share a TransactWriteItems (see DynamoDbStoreOptions). Default true. */
      groupCommits?: boolean;
      /** Static credentials, e.g. for DynamoDB Local; otherwise the SDK's default chain is used. */
      credentials?: { accessKeyId: string; secretAccessKey: string };
    }
  /** PostgreSQL: the store's own options (a type only: the driver loads when the store is opened). */
  | ({ kind: 'postgres' } & PostgresStoreOptions);

/** Opens the store a config describes. A driver or SDK is only loaded when its store is chosen. */
export async function openStore(config: StoreConfig): Promise<TokenStore> {
  if (config.kind === 'sqlite') {
    const { SqliteTokenStore } = await import('./sqlite/sqlite-store.js');
    return new SqliteTokenStore(config);
  }
  if (config.kind === 'postgres') {
    const { PostgresTokenStore } = await import('./postgres/postgres-store.js');
    return PostgresTokenStore.open(config);
  }
  const { DynamoDbTokenStore } = await import('./dynamodb/dynamodb-store.js');
  return DynamoDbTokenStore.open({
    clientConfig: {
      region: config.region,
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      ...(config.credentials ? { credentials: config.credentials } : {}),
    },
    tokensTable: config.tokensTable,
    stateTable: config.stateTable,
    ...(config.tombstoneRetentionMs !== undefined
      ? { tombstoneRetentionMs: config.tombstoneRetentionMs }
      : {}),
    ...(config.statusShards !== undefined ? { statusShards: config.statusShards } : {}),
    ...(config.groupCommits !== undefined ? { groupCommits: config.groupCommits } : {}),
    createTables: config.createTables ?? false,
  });
}
