/** `tollgate/postgres`: the store on PostgreSQL through node-postgres (`pg` is a peer dependency). */
export {
  type PgTx,
  type PostgresStoreOptions,
  PostgresTokenStore,
} from '../stores/postgres/postgres-store.js';
