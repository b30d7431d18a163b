import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { newTokenId } from '../../src/core/ids.js';
import type { TokenStore } from '../../src/core/store.js';
import { openStore, type StoreConfig } from '../../src/stores/open.js';
import { freshSchemaName, POSTGRES_TEST_URL } from './postgres.js';

export { POSTGRES_TEST_URL };

export type StoreKind = 'sqlite' | 'dynamodb' | 'postgres';
export const STORE_KINDS: readonly StoreKind[] = ['sqlite', 'dynamodb', 'postgres'];

let scratch: string | undefined;
function scratchDir(): string {
  scratch ??= mkdtempSync(join(tmpdir(), 'tollgate-test-'));
  return scratch;
}

/**
 * A config for a fresh, empty store of the given kind: its own SQLite file, its own DynamoDB tables, or its own
 * PostgreSQL schema (dropped after the test file).
 */
export function freshStoreConfig(
  kind: StoreKind,
  options: { tombstoneRetentionMs?: number } = {},
): StoreConfig {
  const unique = newTokenId()
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, 12);
  if (kind === 'sqlite') return { kind, filename: join(scratchDir(), `${unique}.db`), ...options };
  if (kind === 'postgres') {
    return { kind, url: POSTGRES_TEST_URL, schema: freshSchemaName(), createTables: true, ...options };
  }
  return {
    kind,
    endpoint: inject('dynamoEndpoint'),
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    tokensTable: `t_${unique}_tokens`,
    stateTable: `t_${unique}_state`,
    createTables: true,
    ...options,
  };
}

export async function freshStore(
  kind: StoreKind,
  options: { tombstoneRetentionMs?: number } = {},
): Promise<TokenStore> {
  return openStore(freshStoreConfig(kind, options));
}
