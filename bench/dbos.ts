/**
 * DBOS Transact as a peer for the PostgreSQL bench (bench/postgres.ts): a workflow whose one transaction step
 * writes the signal's row in the application's table, started with the signal's id as its workflow ID so that a
 * second start of the same signal is deduplicated by DBOS.
 *
 * DBOS is configured here in code (DBOS.setConfig), on two databases of its own on the local server, which the
 * caller creates and drops: the application database (the user table and DBOS's `dbos.transaction_completion`
 * checkpoints) and the system database (workflow status, step outputs).
 *
 * The transaction step needs a DBOS data source. The npm registry has none for the current SDK (5.x): the
 * published Knex (4.5.13) and Postgres.js (4.24.16) data sources import a helper SDK 5 no longer exports
 * (`checkSchemaInstallationPG`; the Knex one fails at launch for it), and the node-postgres one is not
 * published. So this file
 * implements SDK 5's own data-source contract (`DataSourceTransactionHandler` from
 * `@dbos-inc/dbos-sdk/datasource`, as its typings document it) on node-postgres, the driver Tollgate's store
 * uses, with the SDK's helpers for everything DBOS-specific (schema migration, ownership fence, replay):
 * per transaction step a checkpoint look-up, then BEGIN, the step's SQL, the checkpoint insert, the fence,
 * COMMIT; when the workflow completes, its checkpoints are deleted under the same fence.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { DataSourceTransactionHandler } from '@dbos-inc/dbos-sdk/datasource';
import pg from 'pg';

export interface DbosDatabases {
  /** The application database: holds the user table and the data source's checkpoints. */
  appUrl: string;
  /** DBOS's system database. */
  systemUrl: string;
}

export interface DbosPeerOptions extends DbosDatabases {
  /** Connections in each of DBOS's two pools (application, system). */
  poolSize: number;
  /** The step's one statement, `$1` the row's key and `$2` the amount: the same SQL as the Tollgate side's. */
  upsert: string;
}

export interface DbosPeer {
  /** The installed @dbos-inc/dbos-sdk version. */
  readonly version: string;
  /** One delivery of a signal: starts workflow `id` (or finds the one already started), waits for its result. */
  deliver(id: string, key: string): Promise<void>;
  /** Shuts DBOS down and launches it again on other URLs for the same databases (e.g. through a proxy). */
  relaunch(databases: DbosDatabases): Promise<void>;
  close(): Promise<void>;
}

const DATA_SOURCE = 'bench-app';
const CHECKPOINTS = 'dbos.transaction_completion';

type DatasourceModule = typeof import('@dbos-inc/dbos-sdk/datasource');

/** A recorded step outcome in SuperJSON's text form, which `replayRecordedStep` reads (plain JSON values only). */
const superJson = (value: unknown) => JSON.stringify({ json: value ?? null });

/** node-postgres data source for DBOS SDK 5 (see the file comment). */
class NodePgDataSource implements DataSourceTransactionHandler {
  readonly name = DATA_SOURCE;
  readonly #transactions = new AsyncLocalStorage<pg.PoolClient>();
  #pool: pg.Pool | undefined;

  constructor(
    private readonly sdk: { DBOS: typeof import('@dbos-inc/dbos-sdk').DBOS; ds: DatasourceModule },
    /** Read at each `initialize` (DBOS.launch). */
    public url: string,
    private readonly poolSize: number,
  ) {}

  /** The open transaction of the running step. */
  get client(): pg.PoolClient {
    const client = this.#transactions.getStore();
    if (!client) throw new Error('not inside a DBOS transaction of this data source');
    return client;
  }

  get pool(): pg.Pool {
    if (!this.#pool) throw new Error(`data source ${this.name} is not initialized`);
    return this.#pool;
  }

  async initialize(): Promise<void> {
    this.#pool = new pg.Pool({ connectionString: this.url, max: this.poolSize });
    this.sdk.ds.guardDataSourcePoolPG(this.#pool, 'NodePgDataSource');
    await this.#inTransaction(async (client) =>
      this.sdk.ds.migrateDataSourcePG(async (sql) => (await client.query(sql)).rows),
    );
  }

  async destroy(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end();
  }

  async deleteCheckpoints(workflowID: string, startStep: number, beforeCommit?: () => Promise<void>) {
    const remove = (client: pg.ClientBase | pg.Pool) =>
      client.query(`DELETE FROM ${CHECKPOINTS} WHERE workflow_id = $1 AND function_num >= $2`, [
        workflowID,
        startStep,
      ]);
    if (!beforeCommit) {
      await remove(this.pool);
      return;
    }
    await this.#inTransaction(async (client) => {
      await remove(client);
      await beforeCommit();
    });
  }

  async invokeTransactionFunction<This, Args extends unknown[], Return>(
    _config: unknown,
    target: This,
    func: (this: This, ...args: Args) => Promise<Return>,
    ...args: Args
  ): Promise<Return> {
    const { DBOS, ds } = this.sdk;
    const workflowID = DBOS.workflowID;
    const stepID = DBOS.stepID;
    if (workflowID === undefined || stepID === undefined) {
      // Outside a workflow: an ordinary transaction, nothing recorded.
      return this.#inTransaction((client) => this.#transactions.run(client, () => func.apply(target, args)));
    }
    for (let wait = 1; ; wait = Math.min(wait * 1.5, 2_000)) {
      const recorded = await this.#recorded(workflowID, stepID);
      if (recorded) return ds.replayRecordedStep<Return>(recorded);
      try {
        return await this.#inTransaction(async (client) => {
          const result = await this.#transactions.run(client, () => func.apply(target, args));
          const inserted = await client.query(
            `INSERT INTO ${CHECKPOINTS} (workflow_id, function_num, output) VALUES ($1, $2, $3) ON CONFLICT (workflow_id, function_num) DO NOTHING RETURNING workflow_id`,
            [workflowID, stepID, superJson(result)],
          );
          if (inserted.rowCount === 0) throw new ds.DBOSStepAlreadyRecordedError(workflowID, stepID);
          // The checkpoint row is held: a later owner's insert waits on this commit, so fence on ownership now.
          await ds.assertStillOwnsWorkflow(workflowID);
          return result;
        });
      } catch (error) {
        if (error instanceof ds.DBOSStepAlreadyRecordedError) {
          const winner = await this.#recorded(workflowID, stepID);
          if (!winner) throw error;
          return ds.replayRecordedStep<Return>(winner);
        }
        if (error instanceof ds.DBOSWorkflowConflictError) throw error;
        if (ds.isPGRetriableTransactionError(error)) {
          await new Promise((resolve) => setTimeout(resolve, wait));
          continue;
        }
        await this.pool.query(
          `INSERT INTO ${CHECKPOINTS} (workflow_id, function_num, error) VALUES ($1, $2, $3) ON CONFLICT (workflow_id, function_num) DO NOTHING`,
          [workflowID, stepID, superJson({ message: String((error as Error)?.message ?? error) })],
        );
        throw error;
      }
    }
  }

  async #recorded(workflowID: string, stepID: number) {
    const { rows } = await this.pool.query<{ output: string | null; error: string | null }>(
      `SELECT output, error FROM ${CHECKPOINTS} WHERE workflow_id = $1 AND function_num = $2`,
      [workflowID, stepID],
    );
    return rows[0];
  }

  async #inTransaction<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await body(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }
}

export async function openDbosPeer(options: DbosPeerOptions): Promise<DbosPeer> {
  const { DBOS } = await import('@dbos-inc/dbos-sdk');
  const ds = await import('@dbos-inc/dbos-sdk/datasource');

  const dataSource = new NodePgDataSource({ DBOS, ds }, options.appUrl, options.poolSize);
  ds.registerDataSource(dataSource);
  const writeOrder = ds.registerTransaction(
    DATA_SOURCE,
    async (key: string) => {
      await dataSource.client.query(options.upsert, [key, 42]);
    },
    { name: 'writeOrder' },
  );
  const orderWorkflow = DBOS.registerWorkflow(
    async (key: string) => {
      await writeOrder(key);
    },
    { name: 'orderWorkflow' },
  );

  const launch = async (databases: DbosDatabases) => {
    dataSource.url = databases.appUrl;
    DBOS.setConfig({
      name: 'tollgate-bench',
      systemDatabaseUrl: databases.systemUrl,
      systemDatabasePoolSize: options.poolSize,
      logLevel: 'error',
    });
    await DBOS.launch();
  };
  await launch(options);
  return {
    version: sdkVersion(),
    async deliver(id, key) {
      const handle = await DBOS.startWorkflow(orderWorkflow, { workflowID: id })(key);
      await handle.getResult();
    },
    async relaunch(databases) {
      await DBOS.shutdown();
      await launch(databases);
    },
    async close() {
      await DBOS.shutdown();
    },
  };
}

/** The SDK's version, from its package.json (which its exports map does not expose to `import`). */
function sdkVersion(): string {
  const entry = createRequire(import.meta.url).resolve('@dbos-inc/dbos-sdk');
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (manifest.name === '@dbos-inc/dbos-sdk') return manifest.version ?? '?';
    } catch {
      // no package.json at this level
    }
  }
  return '?';
}
