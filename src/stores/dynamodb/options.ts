import type { DynamoDBClient, DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { ConfigError } from '../../core/errors.js';
import { MAX_STATUS_SHARDS } from './marshal.js';

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
  /**
   * Commits asked for in one turn of the event loop share one TransactWriteItems when their items are distinct
   * (see CommitGroups): each still commits all or nothing, and one that fails fails alone. Default true; false
   * sends each commit on its own.
   */
  groupCommits?: boolean;
}

const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;

/** The settings with their defaults, or a ConfigError naming the first one that is wrong. */
export function checkOptions(options: DynamoDbStoreOptions): {
  retentionMs: number;
  concurrency: number;
  statusShards: number;
  groupCommits: boolean;
} {
  if (!options.tokensTable) throw new ConfigError('tokensTable', 'is required');
  if (!options.stateTable) throw new ConfigError('stateTable', 'is required');
  // Also guards commits: DynamoDB refuses two actions on one item, and keys of the two could then meet.
  if (options.tokensTable === options.stateTable) {
    throw new ConfigError('stateTable', 'must differ from tokensTable');
  }
  const retentionMs = options.tombstoneRetentionMs ?? DEFAULT_RETENTION_MS;
  if (!Number.isSafeInteger(retentionMs) || retentionMs < 0) {
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
  const groupCommits = options.groupCommits ?? true;
  if (typeof groupCommits !== 'boolean') throw new ConfigError('groupCommits', 'must be true or false');
  return { retentionMs, concurrency, statusShards, groupCommits };
}
