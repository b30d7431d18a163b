/**
 * Foundation benchmark: commits/s of one typical hop (consume 1 token + write 1 state item + mint 1 token)
 * through Tollgate, against the raw floor: the same writes in one transaction straight through better-sqlite3 /
 * the AWS SDK, no Tollgate code. Run: npm run bench -- core   (or npx tsx bench/core.ts)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
import Database from 'better-sqlite3';
import { newTokenId } from '../src/core/ids.js';
import { pendingToken } from '../src/core/mint.js';
import { processSignal } from '../src/core/processor.js';
import type { TokenStore } from '../src/core/store.js';
import type { Destination, TokenRecord } from '../src/core/token.js';
import { openStore, type StoreConfig } from '../src/stores/open.js';
import { fmt, measure, printTable, ratio } from './measure.js';
import { recordTarget } from './results.js';

const destination: Destination = { medium: 'amqp', exchange: 'orders', routingKey: 'placed' };
const next: Destination = { medium: 'amqp', exchange: 'payments', routingKey: 'requested' };

interface Backend {
  name: string;
  config: StoreConfig;
  /** The same three writes as one transaction, without Tollgate. */
  raw(token: TokenRecord, i: number): Promise<void>;
  close(): Promise<void>;
}

async function mintBatch(store: TokenStore, count: number): Promise<TokenRecord[]> {
  const now = Date.now();
  const tokens = Array.from({ length: count }, (_, i) =>
    pendingToken({ destination, payload: { order: i, amount: 42 } }, { mintedBy: 'bench', now }),
  );
  for (let i = 0; i < tokens.length; i += 50) await store.mint(tokens.slice(i, i + 50));
  return tokens;
}

function sqliteBackend(dir: string): Backend {
  const filename = join(dir, 'bench.db');
  let db: Database.Database | undefined;
  let statements: ReturnType<typeof prepare> | undefined;
  function prepare(handle: Database.Database) {
    return {
      consume: handle.prepare(
        "UPDATE tokens SET status = 'consumed', consumed_at = ?, consumed_by = ?, payload = NULL WHERE id = ? AND status IN ('issued','pending','dispatched') AND (expires_at IS NULL OR expires_at > ?) AND (fingerprint IS NULL OR fingerprint = ?)",
      ),
      state: handle.prepare(
        'INSERT INTO state (key, value, version) VALUES (?, ?, 1) ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = version + 1',
      ),
      mint: handle.prepare(
        "INSERT INTO tokens (id, conversation_id, parent_id, minted_by, medium, destination, fingerprint, payload, status, minted_at, attempts) VALUES (?, ?, ?, ?, 'amqp', ?, ?, ?, 'pending', ?, 0)",
      ),
    };
  }
  return {
    name: 'SQLite',
    config: { kind: 'sqlite', filename },
    async raw(token, i) {
      if (!db) {
        db = new Database(filename);
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        db.pragma('busy_timeout = 5000');
        // The same pragmas the store uses, so the floor measures the writes, not a configuration difference.
        db.pragma('wal_autocheckpoint = 10000');
        statements = prepare(db);
      }
      const s = statements as ReturnType<typeof prepare>;
      const now = Date.now();
      db.transaction(() => {
        // The cheapest correct consume: one conditional update, its change count says whether it won.
        if (s.consume.run(now, 'bench', token.id, now, token.fingerprint).changes !== 1)
          throw new Error('raw floor: token not live');
        s.state.run(`order/${i}`, JSON.stringify({ paid: true, order: i }));
        s.mint.run(
          newTokenId(),
          token.conversationId,
          token.id,
          'bench',
          JSON.stringify(next),
          'f'.repeat(64),
          JSON.stringify({ order: i, amount: 42 }),
          now,
        );
      }).immediate();
    },
    async close() {
      db?.close();
    },
  };
}

function dynamoBackend(endpoint: string, prefix: string): Backend {
  const tokensTable = `${prefix}_tokens`;
  const stateTable = `${prefix}_state`;
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  return {
    name: 'DynamoDB Local',
    config: {
      kind: 'dynamodb',
      endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      tokensTable,
      stateTable,
      createTables: true,
    },
    async raw(token, i) {
      const now = Date.now();
      const childId = newTokenId();
      await client.send(
        new TransactWriteItemsCommand({
          TransactItems: [
            {
              Update: {
                TableName: tokensTable,
                Key: { id: { S: token.id } },
                ConditionExpression:
                  'attribute_exists(id) AND #s IN (:i, :p, :d) AND (attribute_not_exists(fingerprint) OR fingerprint = :f)',
                UpdateExpression:
                  'SET #s = :c, consumedAt = :now, consumedBy = :by, gsiStatus = :c REMOVE payload',
                ExpressionAttributeNames: { '#s': 'status' },
                ExpressionAttributeValues: {
                  ':i': { S: 'issued' },
                  ':p': { S: 'pending' },
                  ':d': { S: 'dispatched' },
                  ':c': { S: 'consumed' },
                  ':f': { S: token.fingerprint as string },
                  ':now': { N: String(now) },
                  ':by': { S: 'bench' },
                },
              },
            },
            {
              Update: {
                TableName: stateTable,
                Key: { key: { S: `order/${i}` } },
                UpdateExpression: 'SET #v = :v, version = if_not_exists(version, :zero) + :one',
                ExpressionAttributeNames: { '#v': 'value' },
                ExpressionAttributeValues: {
                  ':v': { S: JSON.stringify({ paid: true, order: i }) },
                  ':zero': { N: '0' },
                  ':one': { N: '1' },
                },
              },
            },
            {
              Put: {
                TableName: tokensTable,
                ConditionExpression: 'attribute_not_exists(id)',
                Item: {
                  id: { S: childId },
                  conversationId: { S: token.conversationId },
                  parentId: { S: token.id },
                  mintedBy: { S: 'bench' },
                  destination: { S: JSON.stringify(next) },
                  fingerprint: { S: 'f'.repeat(64) },
                  payload: { S: JSON.stringify({ order: i, amount: 42 }) },
                  status: { S: 'pending' },
                  gsiStatus: { S: 'pending' },
                  gsiConv: { S: token.conversationId },
                  gsiSort: { S: `${String(now).padStart(15, '0')}#${childId}` },
                  mintedAt: { N: String(now) },
                  attempts: { N: '0' },
                },
              },
            },
          ],
        }),
      );
    },
    async close() {
      client.destroy();
    },
  };
}

async function benchBackend(
  backend: Backend,
  total: number,
): Promise<Array<Record<string, string | number>>> {
  const store = await openStore(backend.config);
  const rows: Array<Record<string, string | number>> = [];
  try {
    for (const concurrency of [1, 16]) {
      // Interleave the three contenders twice and keep each one's best run, so warm-up and noise favour nobody.
      const best = { raw: 0, commit: 0, hop: 0 };
      for (let round = 0; round < 2; round++) {
        const rawTokens = await mintBatch(store, total);
        const raw = await measure(total, concurrency, (i) => backend.raw(rawTokens[i] as TokenRecord, i));
        best.raw = Math.max(best.raw, raw.perSecond);

        const commitTokens = await mintBatch(store, total);
        const commit = await measure(total, concurrency, async (i) => {
          const token = commitTokens[i] as TokenRecord;
          const now = Date.now();
          const child = pendingToken(
            { destination: next, payload: { order: i, amount: 42 } },
            {
              mintedBy: 'bench',
              conversationId: token.conversationId,
              parentId: token.id,
              now,
            },
          );
          const result = await store.commit({
            consume: { tokenId: token.id, fingerprint: token.fingerprint as string, consumedBy: 'bench' },
            writes: [{ key: `order/${i}`, value: { paid: true, order: i } }],
            mints: [child],
            now,
          });
          if (!result.ok) throw new Error(`commit failed: ${result.failure.kind}`);
        });
        best.commit = Math.max(best.commit, commit.perSecond);

        const hopTokens = await mintBatch(store, total);
        const hop = await measure(total, concurrency, async (i) => {
          const token = hopTokens[i] as TokenRecord;
          const outcome = await processSignal({
            store,
            endpoint: 'bench',
            tokenId: token.id,
            payload: { order: i, amount: 42 },
            handler: (ctx) => {
              ctx.put(`order/${i}`, { paid: true, order: i });
              ctx.emit(next, { order: i, amount: 42 });
            },
          });
          if (outcome.kind !== 'processed') throw new Error(`hop not processed: ${outcome.kind}`);
        });
        best.hop = Math.max(best.hop, hop.perSecond);
      }
      rows.push({
        store: backend.name,
        concurrency,
        'raw floor/s': fmt(best.raw),
        'tollgate commit/s': fmt(best.commit),
        'commit ratio': ratio(best.commit, best.raw),
        'full hop/s (check+handler+commit)': fmt(best.hop),
        'hop ratio': ratio(best.hop, best.raw),
      });
    }
  } finally {
    await store.close();
    await backend.close();
  }
  return rows;
}

/** Raw-floor transactions per second at concurrency 16, per store name: the yardstick other benches compare to. */
export type RawFloors = Record<string, number>;

export async function runCoreBench(
  options: { dynamoEndpoint?: string; total?: number } = {},
): Promise<RawFloors> {
  const total = options.total ?? 2000;
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-'));
  const rows: Array<Record<string, string | number>> = [];
  try {
    rows.push(...(await benchBackend(sqliteBackend(dir), total)));
    if (options.dynamoEndpoint) {
      rows.push(
        ...(await benchBackend(
          dynamoBackend(options.dynamoEndpoint, `bench${Date.now()}`),
          Math.min(total, 600),
        )),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  printTable(
    'Core: one hop = consume 1 token + write 1 state item + mint 1 token (target: commit ratio >= 0.9)',
    rows,
  );
  for (const row of rows) {
    const store = String(row.store);
    recordTarget({
      id: `core.${store === 'SQLite' ? 'sqlite' : 'dynamodb'}.c${row.concurrency}.commit`,
      title: `Core commit on ${store}, c=${row.concurrency} / raw transaction floor`,
      figure: `${row['tollgate commit/s']} vs ${row['raw floor/s']} commits/s; full hop ${row['full hop/s (check+handler+commit)']}/s`,
      value: Number(row['commit ratio']),
      unit: 'ratio',
      op: '>=',
      target: 0.9,
    });
  }
  const floors: RawFloors = {};
  for (const row of rows) if (row.concurrency === 16) floors[String(row.store)] = Number(row['raw floor/s']);
  return floors;
}
