import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../src/core/errors.js';
import { scheduledToken } from '../../../src/core/scheduling.js';
import { PostgresTokenStore } from '../../../src/stores/postgres/postgres-store.js';
import { migrationSql } from '../../../src/stores/postgres/schema.js';
import { freshSchemaName, POSTGRES_TEST_URL, withAdmin } from '../../support/postgres.js';

// The scheduling behaviour itself is in the contract suite (test/contract/scheduling.contract.ts).
describe('PostgreSQL store: scheduled tokens', () => {
  it('upgrades a version 1 schema to scheduled tokens, keeping its tokens; refuses to open it before', async () => {
    const schema = freshSchemaName();
    await withAdmin((client) => client.query(migrationSql(1, schema)));
    const refused = await PostgresTokenStore.open({ url: POSTGRES_TEST_URL, schema }).catch(
      (e: unknown) => e,
    );
    expect(refused).toMatchObject({
      code: ErrorCodes.STORE_SCHEMA_MISSING,
      details: { version: 1, required: 2 },
    });
    expect((refused as Error).message).toContain('deploy/postgres/002_scheduling.sql');
    await withAdmin((client) =>
      client.query(`INSERT INTO "${schema}".tokens (id, conversation_id, minted_by, status, minted_at)
        VALUES ('old-token-1', 'old-conversation', 'edge', 'issued', 1)`),
    );
    const store = await PostgresTokenStore.open({ url: POSTGRES_TEST_URL, schema, createTables: true });
    expect((await store.getToken('old-token-1'))?.status).toBe('issued');
    const timeout = scheduledToken(
      { destination: { medium: 'amqp', exchange: 'x', routingKey: 'k' }, payload: {} },
      { mintedBy: 'e', now: 1 },
      2,
    );
    await store.mint([timeout]);
    expect((await store.claimDue({ now: 2, leaseMs: 1, limit: 5 })).map((t) => t.id)).toEqual([timeout.id]);
    // Applying the migrations again changes nothing.
    await store.ensureSchema();
    await withAdmin((client) => client.query(migrationSql(2, schema)));
    expect((await store.getToken(timeout.id))?.status).toBe('pending');
    await store.close();
  });

  it('reads "due now" from the partial index on scheduled tokens', async () => {
    const schema = freshSchemaName();
    const store = await PostgresTokenStore.open({ url: POSTGRES_TEST_URL, schema, createTables: true });
    await store.close();
    const plan = await withAdmin(async (client) => {
      await client.query('SET enable_seqscan = off');
      const { rows } = await client.query(
        `EXPLAIN SELECT id FROM "${schema}".tokens WHERE status = 'scheduled' AND due_at <= 5 ORDER BY due_at, id LIMIT 10`,
      );
      return rows.map((row: Record<string, string>) => Object.values(row)[0]).join('\n');
    });
    expect(plan).toContain('tokens_due');
  });
});
