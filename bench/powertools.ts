/**
 * A peer on the same work: one fastify route, one state write on DynamoDB Local, made idempotent two ways.
 * - Tollgate: the fastify plugin on a DynamoDbTokenStore; each request carries a token minted before the clock
 *   starts (as an edge client would have, earlier). The consume, the state write and the kept answer commit in one
 *   TransactWriteItems.
 * - AWS Powertools for Lambda's idempotency utility (`makeIdempotent` with its DynamoDB persistence layer): each
 *   request carries a fresh idempotency key in the same header; the handler writes the same item with
 *   `@aws-sdk/lib-dynamodb`. Powertools writes its record (INPROGRESS), runs the handler, then marks the record
 *   COMPLETED with the answer: three requests, and the state write is not atomic with the record.
 * Both validate the payload against the first one's (Tollgate's fingerprint, Powertools'
 * `payloadValidationJmesPath`); neither keeps a local cache (`useLocalCache: false`, the default). Store requests
 * are counted by a middleware on each side's DynamoDB clients. Each side then gets every request a second time
 * (a replay: the answer comes from the store, the state is not written again).
 *
 * Run: npm run bench -- peer [--signals=N]   (or npx tsx bench/powertools.ts [--signals=N], DynamoDB Local started)
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import {
  CreateTableCommand,
  DeleteTableCommand,
  DynamoDBClient,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import Fastify from 'fastify';
import { newTokenId } from '../src/core/ids.js';
import { pendingToken } from '../src/core/mint.js';
import { DynamoDbTokenStore } from '../src/stores/dynamodb/dynamodb-store.js';
import { tollgateOf, tollgatePlugin } from '../src/transports/http/index.js';
import { type LoadResult, loadInChildProcess } from './http.js';
import { fmt, printTable, ratio } from './measure.js';
import { profiled } from './profile.js';
import { recordTarget } from './results.js';

const CONNECTIONS = 16;
const ROUNDS = 2;
const PAYLOAD = { item: 'widget', quantity: 3 };
const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const CONTENDERS = ['Powertools idempotency', 'Tollgate'] as const;
type Contender = (typeof CONTENDERS)[number];

export interface PeerBenchOptions {
  dynamoEndpoint: string;
  /** Requests per contender and round. Default 2000 (DynamoDB Local serves a few hundred writes a second). */
  signals?: number;
}

/** Counts the requests a client sends, by command (`PutItemCommand` ...). */
class RequestCounter {
  readonly byCommand = new Map<string, number>();
  attach(client: DynamoDBClient): void {
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const name = String(context.commandName ?? 'unknown');
        this.byCommand.set(name, (this.byCommand.get(name) ?? 0) + 1);
        return next(args);
      },
      { step: 'initialize', name: 'benchRequestCounter' },
    );
  }
  snapshot(): Map<string, number> {
    return new Map(this.byCommand);
  }
  total(): number {
    return [...this.byCommand.values()].reduce((sum, n) => sum + n, 0);
  }
}

interface Measured extends LoadResult {
  cpuMicrosPerRequest: number;
  storeRequests: number;
  byCommand: string;
}

export async function runPowertoolsPeerBench(options: PeerBenchOptions): Promise<void> {
  const signals = options.signals ?? 2_000;
  const { dynamoEndpoint } = options;
  const clientConfig = { endpoint: dynamoEndpoint, region: 'us-east-1', credentials };
  const prefix = `bench_peer_${newTokenId().replace(/[^A-Za-z0-9]/g, '')}`;
  const tables = {
    tokens: `${prefix}_tokens`,
    tollgateState: `${prefix}_state`,
    idempotency: `${prefix}_idempotency`,
    powertoolsState: `${prefix}_pt_state`,
  };
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-peer-'));
  const admin = new DynamoDBClient(clientConfig);

  // Tollgate's side: the store's own client, counted.
  const tollgateCounter = new RequestCounter();
  const tollgateClient = new DynamoDBClient(clientConfig);
  tollgateCounter.attach(tollgateClient);
  const store = await DynamoDbTokenStore.open({
    client: tollgateClient,
    tokensTable: tables.tokens,
    stateTable: tables.tollgateState,
    createTables: true,
  });

  // Powertools' side: the persistence layer's client, counted; the handler's document client shares its
  // middleware stack, so its requests are counted too.
  const powertoolsCounter = new RequestCounter();
  const powertoolsClient = new DynamoDBClient(clientConfig);
  powertoolsCounter.attach(powertoolsClient);
  const documents = DynamoDBDocumentClient.from(powertoolsClient);
  await createTable(admin, tables.idempotency, 'id');
  await admin.send(
    new UpdateTimeToLiveCommand({
      TableName: tables.idempotency,
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
    }),
  );
  await createTable(admin, tables.powertoolsState, 'key');
  const idempotencyConfig = new IdempotencyConfig({
    eventKeyJmesPath: 'key',
    payloadValidationJmesPath: 'body',
    // The default, said out loud: every request goes to DynamoDB, as every Tollgate request does.
    useLocalCache: false,
    // Tollgate keeps a consumed token's answer for 24 h (its tombstone retention).
    expiresAfterSeconds: 86_400,
    throwOnNoIdempotencyKey: true,
  });
  // Outside Lambda there is no invocation context; this one gives the in-progress record the expiry a Lambda with
  // a 30 s timeout would (without one, Powertools logs a warning per request and sets no in-progress expiry).
  idempotencyConfig.registerLambdaContext(routeContext);
  const writeOrder = makeIdempotent(
    async (event: { key: string; body: unknown }) => {
      await documents.send(
        new UpdateCommand({
          TableName: tables.powertoolsState,
          Key: { key: `order:${event.key}` },
          UpdateExpression: 'SET #v = :v, #ver = if_not_exists(#ver, :zero) + :one',
          ExpressionAttributeNames: { '#v': 'value', '#ver': 'version' },
          ExpressionAttributeValues: { ':v': JSON.stringify(event.body), ':zero': 0, ':one': 1 },
        }),
      );
      return { ok: true };
    },
    {
      persistenceStore: new DynamoDBPersistenceLayer({
        tableName: tables.idempotency,
        awsSdkV3Client: powertoolsClient,
      }),
      config: idempotencyConfig,
    },
  );

  const app = Fastify({ logger: false });
  await app.register(tollgatePlugin, { store, endpoint: 'bench' });
  app.post('/tollgate', { config: { exactlyOnce: true } }, async (request) => {
    const work = tollgateOf(request);
    work.put(`order:${work.token.id}`, work.payload);
    return { ok: true };
  });
  app.post('/powertools', async (request, reply) => {
    const key = request.headers['exactly-once-token'];
    if (typeof key !== 'string') return reply.code(400).send({ error: 'idempotency key header missing' });
    return writeOrder({ key, body: request.body });
  });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });

  const body = JSON.stringify(PAYLOAD);
  const keysFile = (contender: Contender, round: number) =>
    join(dir, `${contender === 'Tollgate' ? 't' : 'p'}${round}.txt`);
  const counterOf = (contender: Contender) =>
    contender === 'Tollgate' ? tollgateCounter : powertoolsCounter;
  const urlOf = (contender: Contender) => `${base}/${contender === 'Tollgate' ? 'tollgate' : 'powertools'}`;

  /** One key per request: minted tokens for Tollgate (not timed), fresh UUIDs for Powertools. */
  const prepareKeys = async (contender: Contender, round: number, count: number) => {
    let ids: string[];
    if (contender === 'Tollgate') {
      const now = Date.now();
      const tokens = Array.from({ length: count }, () =>
        pendingToken(
          { destination: { medium: 'http', method: 'POST', url: urlOf('Tollgate') }, payload: PAYLOAD },
          { mintedBy: 'bench', now },
        ),
      );
      for (let i = 0; i < tokens.length; i += 25) await store.mint(tokens.slice(i, i + 25));
      ids = tokens.map((token) => token.id);
    } else ids = Array.from({ length: count }, () => randomUUID());
    writeFileSync(keysFile(contender, round), ids.join('\n'));
  };

  const run = async (contender: Contender, round: number, requests: number): Promise<Measured> => {
    const counter = counterOf(contender);
    const before = counter.snapshot();
    const beforeTotal = counter.total();
    const cpuBefore = process.cpuUsage();
    const result = await loadInChildProcess({
      url: urlOf(contender),
      requests,
      connections: CONNECTIONS,
      body,
      tokensFile: keysFile(contender, round),
    });
    const cpu = process.cpuUsage(cpuBefore);
    const byCommand = [...counter.byCommand]
      .map(
        ([name, n]) =>
          [name.replace(/Command$/, ''), (n - (before.get(name) ?? 0)) / result.requests] as const,
      )
      .filter(([, perRequest]) => perRequest > 0)
      .map(([name, perRequest]) => `${name} ${fmt(perRequest, 2)}`)
      .join(', ');
    return {
      ...result,
      cpuMicrosPerRequest: (cpu.user + cpu.system) / result.requests,
      storeRequests: (counter.total() - beforeTotal) / result.requests,
      byCommand,
    };
  };

  try {
    // Warm-up: connections, code paths, DynamoDB Local's JIT.
    const warmup = Math.min(300, signals);
    for (const contender of CONTENDERS) {
      await prepareKeys(contender, -1, warmup);
      await run(contender, -1, warmup);
    }
    const first = new Map<Contender, Measured>();
    const replay = new Map<Contender, Measured>();
    const keep = (map: Map<Contender, Measured>, contender: Contender, measured: Measured) => {
      const previous = map.get(contender);
      if (!previous || measured.perSecond > previous.perSecond) map.set(contender, measured);
    };
    for (let round = 0; round < ROUNDS; round++) {
      for (const contender of CONTENDERS) {
        await prepareKeys(contender, round, signals);
        const measure = () => run(contender, round, signals);
        const name = contender === 'Tollgate' ? 'http-route-dynamodb' : 'powertools-route-dynamodb';
        keep(first, contender, round === 0 ? await profiled(name, measure) : await measure());
      }
      // The same keys again: every request is now a duplicate, answered from the store.
      for (const contender of CONTENDERS) keep(replay, contender, await run(contender, round, signals));
    }
    const rows = CONTENDERS.flatMap((contender) =>
      (
        [
          ['first delivery', first],
          ['replay (duplicate)', replay],
        ] as const
      ).map(([phase, map]) => {
        const r = map.get(contender)!;
        return {
          contender,
          requests: phase,
          'req/s': fmt(r.perSecond),
          'p50 ms': fmt(r.p50Ms, 1),
          'p99 ms': fmt(r.p99Ms, 1),
          'server CPU µs/req': fmt(r.cpuMicrosPerRequest),
          'store requests/req': fmt(r.storeRequests, 2),
          'by command': r.byCommand,
          'non-2xx': r.non2xx,
          errors: r.errors,
        };
      }),
    );
    printTable(
      `Peer on DynamoDB Local: one fastify route, one state write, idempotent; ${signals} requests per round, ` +
        `${CONNECTIONS} connections, best of ${ROUNDS} (autocannon in a separate process; @aws-lambda-powertools/idempotency ${powertoolsVersion()})`,
      rows,
    );
    const t = first.get('Tollgate')!;
    const p = first.get('Powertools idempotency')!;
    console.log(
      `Tollgate / Powertools: throughput ${ratio(t.perSecond, p.perSecond)}x, p99 ${ratio(t.p99Ms, p.p99Ms)}x, ` +
        `store requests per request ${fmt(t.storeRequests, 2)} vs ${fmt(p.storeRequests, 2)}; replays ` +
        `${ratio(replay.get('Tollgate')!.perSecond, replay.get('Powertools idempotency')!.perSecond)}x`,
    );
    recordTarget({
      id: 'peer.powertools.throughput',
      title: 'Peer on DynamoDB Local: Tollgate route / the same route with Powertools idempotency',
      figure:
        `${fmt(t.perSecond)} vs ${fmt(p.perSecond)} req/s, p50 ${fmt(t.p50Ms, 1)} vs ${fmt(p.p50Ms, 1)} ms, ` +
        `p99 ${fmt(t.p99Ms, 1)} vs ${fmt(p.p99Ms, 1)} ms, store requests/req ${fmt(t.storeRequests, 2)} vs ${fmt(p.storeRequests, 2)}`,
      value: t.perSecond / p.perSecond,
      unit: 'ratio',
      op: '>=',
      target: 1,
    });
  } finally {
    await app.close();
    await store.close();
    tollgateClient.destroy();
    powertoolsClient.destroy();
    for (const table of Object.values(tables))
      await admin.send(new DeleteTableCommand({ TableName: table })).catch(() => undefined);
    admin.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The part of a Lambda context Powertools reads: the time left, here a fresh 30 s request budget each time. */
const routeContext = { getRemainingTimeInMillis: () => 30_000 } as unknown as Parameters<
  IdempotencyConfig['registerLambdaContext']
>[0];

async function createTable(client: DynamoDBClient, name: string, key: string): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [{ AttributeName: key, AttributeType: 'S' }],
      KeySchema: [{ AttributeName: key, KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  await waitUntilTableExists({ client, maxWaitTime: 60, minDelay: 1, maxDelay: 2 }, { TableName: name });
}

function powertoolsVersion(): string {
  const entry = createRequire(import.meta.url).resolve('@aws-lambda-powertools/idempotency');
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const manifest = createRequire(import.meta.url)(join(dir, 'package.json')) as {
        name?: string;
        version?: string;
      };
      if (manifest.name === '@aws-lambda-powertools/idempotency') return manifest.version ?? '?';
    } catch {
      // no package.json at this level
    }
  }
  return '?';
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const signalsFlag = process.argv.find((arg) => arg.startsWith('--signals='));
  const { startDynamoDbLocal } = await import('../test/support/dynamodb-local.js');
  const dynamo = await startDynamoDbLocal();
  try {
    await runPowertoolsPeerBench({
      dynamoEndpoint: dynamo.endpoint,
      ...(signalsFlag ? { signals: Number(signalsFlag.slice('--signals='.length)) } : {}),
    });
  } finally {
    await dynamo.stop();
  }
}
