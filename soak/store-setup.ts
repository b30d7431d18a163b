import { join } from 'node:path';
import type { StoreConfig } from '../src/stores/open.js';
import { FaultProxy } from './fault-proxy.js';
import {
  args,
  POSTGRES_URL,
  POSTGRES_WORKER_POOL,
  pgWorkerApplication,
  runDir,
  runId,
  STATUS_SHARDS,
  storeKind,
} from './options.js';
import { dropStaleSchemas, postgresAdmin, postgresSchemaNames } from './postgres-admin.js';
import { ownTableSql } from './shared.js';
import { state } from './state.js';

/* The run's store, made for it: the harness talks to it directly, the workers through the fault proxy. */

export interface SoakStore {
  /** How the harness opens the store. */
  storeConfig: StoreConfig;
  /** How the workers open it: through storeProxy (DynamoDB, PostgreSQL). */
  workerStoreConfig: StoreConfig;
  storeProxy: FaultProxy | undefined;
  /** PostgreSQL: where the handlers keep their applied-counters (the application's own table). */
  ownSchema: string | undefined;
}

/** Starts (DynamoDB Local) or makes (tables, schemas) the store for --store; recorded in `state` for clean-up. */
export async function setUpStore(): Promise<SoakStore> {
  let storeConfig: StoreConfig;
  let workerStoreConfig: StoreConfig;
  let storeProxy: FaultProxy | undefined;
  /** PostgreSQL: where the handlers keep their applied-counters (the application's own table). */
  let ownSchema: string | undefined;
  if (storeKind === 'dynamodb') {
    if (args['dynamodb-endpoint'])
      state.dynamo = { endpoint: args['dynamodb-endpoint'], stop: async () => undefined };
    else {
      const { startDynamoDbLocal } = await import('../test/support/dynamodb-local.js');
      state.dynamo = await startDynamoDbLocal();
      state.ownDynamo = true;
    }
    const target = new URL(state.dynamo.endpoint);
    storeProxy = await FaultProxy.start({
      name: 'dynamodb',
      targetHost: target.hostname,
      targetPort: Number(target.port),
    });
    state.proxies.push(storeProxy);
    const tables = runId.replace(/[^A-Za-z0-9]/g, '');
    storeConfig = {
      kind: 'dynamodb',
      endpoint: state.dynamo.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      tokensTable: `soak_${tables}_tokens`,
      stateTable: `soak_${tables}_state`,
      createTables: true,
      statusShards: STATUS_SHARDS,
    };
    workerStoreConfig = {
      ...storeConfig,
      endpoint: `http://127.0.0.1:${storeProxy.port}`,
      createTables: false,
    };
  } else if (storeKind === 'postgres') {
    const target = new URL(POSTGRES_URL);
    storeProxy = await FaultProxy.start({
      name: 'postgres',
      targetHost: target.hostname,
      targetPort: Number(target.port || 5432),
    });
    state.proxies.push(storeProxy);
    const schemas = postgresSchemaNames();
    state.pgSchemas = schemas;
    await postgresAdmin(async (client) => {
      await dropStaleSchemas(client);
      for (const statement of ownTableSql(schemas.app).create) await client.query(statement);
    });
    ownSchema = schemas.app;
    storeConfig = {
      kind: 'postgres',
      url: POSTGRES_URL,
      schema: schemas.store,
      createTables: true,
      poolSize: 8,
    };
    const workerUrl = new URL(POSTGRES_URL);
    workerUrl.host = `127.0.0.1:${storeProxy.port}`;
    workerUrl.searchParams.set('application_name', pgWorkerApplication);
    workerStoreConfig = {
      ...storeConfig,
      url: workerUrl.toString(),
      createTables: false,
      poolSize: POSTGRES_WORKER_POOL,
    };
  } else {
    storeConfig = { kind: 'sqlite', filename: join(runDir, 'store.db') };
    workerStoreConfig = storeConfig;
  }
  state.storeConfig = storeConfig;
  return { storeConfig, workerStoreConfig, storeProxy, ownSchema };
}
