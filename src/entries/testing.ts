/**
 * `tollgate/testing`: what a user needs to test handlers against the real protocol. A fresh SQLite store (better-sqlite3
 * is a peer dependency) and a minted token; drive the handler with `processSignal` from `tollgate/core`.
 */
export {
  mintTestToken,
  type TestStoreOptions,
  type TestTokenOptions,
  testStore,
} from '../testing/sqlite.js';
