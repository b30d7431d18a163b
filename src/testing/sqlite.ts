import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JsonValue } from '../core/fingerprint.js';
import { pendingToken } from '../core/mint.js';
import type { TokenStore } from '../core/store.js';
import type { Destination, TokenRecord } from '../core/token.js';
import { SqliteTokenStore } from '../stores/sqlite/sqlite-store.js';

export interface TestStoreOptions {
  /**
   * Keep the store in a file of a fresh temporary directory instead of in memory, so that a reopened store or
   * another process sees it. Default false: private to this connection and gone on close.
   */
  file?: boolean;
  tombstoneRetentionMs?: number;
}

/** A fresh, empty SQLite token store for one test: the real store, no mock. */
export function testStore(options: TestStoreOptions = {}): SqliteTokenStore {
  const filename = options.file
    ? join(mkdtempSync(join(tmpdir(), 'tollgate-test-')), 'tollgate.db')
    : ':memory:';
  return new SqliteTokenStore({
    filename,
    ...(options.tombstoneRetentionMs !== undefined
      ? { tombstoneRetentionMs: options.tombstoneRetentionMs }
      : {}),
  });
}

export interface TestTokenOptions {
  /** Where the signal goes; only its shape matters to a handler under test. Default an AMQP queue `test`. */
  destination?: Destination;
  mintedBy?: string;
  now?: number;
}

/**
 * Mints the pending token of a signal carrying `payload`, as a sender would before sending it, and returns it:
 * hand its `id` and the same payload to `processSignal` to run a handler exactly as a transport does.
 */
export async function mintTestToken(
  store: TokenStore,
  payload: JsonValue,
  options: TestTokenOptions = {},
): Promise<TokenRecord> {
  const token = pendingToken(
    { destination: options.destination ?? { medium: 'amqp', exchange: '', routingKey: 'test' }, payload },
    { mintedBy: options.mintedBy ?? 'test', now: options.now ?? Date.now() },
  );
  await store.mint([token]);
  return token;
}
