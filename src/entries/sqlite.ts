/** `tollgate/sqlite`: the embedded store on better-sqlite3 (a peer dependency the user installs). */
export type { SqliteParams, SqliteRunOptions, SqliteTx, SqliteValue } from '../stores/sqlite/own-data.js';
export { type SqliteStoreOptions, SqliteTokenStore } from '../stores/sqlite/sqlite-store.js';
