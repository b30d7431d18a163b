import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { InvalidArgumentError } from '../../core/errors.js';
import { sortKey } from './marshal.js';

/** What the store hands the modules that build and send its requests: its tables, settings and error mapping. */
export interface TokensTableAccess {
  readonly client: DynamoDBClient;
  readonly tokensTable: string;
  readonly stateTable: string;
  readonly retentionMs: number;
  /** Single-item requests run in parallel by the sweeps and claims. */
  readonly concurrency: number;
  readonly statusShards: number;
  /** Runs one request, its errors mapped to the store's vocabulary (and refused once the store is closed). */
  run<T>(operation: string, work: () => Promise<T>): Promise<T>;
}

export function assertTime(name: string, value: number): void {
  if (!Number.isFinite(value)) {
    throw new InvalidArgumentError(`${name} must be a finite number`, { [name]: value });
  }
}

/** An id that could name a stored token (tokenToItem refuses to store others). */
export function isStorableId(id: string): boolean {
  return typeof id === 'string' && id.length > 0 && Buffer.byteLength(sortKey(0, id)) <= 1024;
}
