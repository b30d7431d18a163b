/**
 * The soak: a four-hop conversation (HTTP ingress → AMQP hop2 → AMQP hop3 → HTTP system B), each hop run as
 * real worker processes, fed with signals while a seeded schedule of faults runs; then, after quiescence, every
 * logical signal must have changed each hop's state exactly once.
 *
 *   node --import tsx soak/run.ts --store sqlite|dynamodb|postgres --signals N --duration S --seed X [--broker-restarts]
 *
 * Prints a report and one line `SOAK RESULT {json}`; exits 1 on any violation (the seed replays the schedule).
 * See soak/README.md for the options and what is checked.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type Channel, type ChannelModel, connect } from 'amqplib';
import pg from 'pg';
import type { JsonValue } from '../src/core/fingerprint.js';
import type { TokenStore } from '../src/core/store.js';
import { TOKEN_STATUSES, type TokenRecord, type TokenStatus } from '../src/core/token.js';
import { openStore, type StoreConfig } from '../src/stores/open.js';
import { deadLetterNames, declareConsumerQueue } from '../src/transports/amqp/topology.js';
import { HttpSignalSender } from '../src/transports/http/client.js';
import { HttpEdgeClient } from '../src/transports/http/edge.js';
import { createHttpRelay } from '../src/transports/http/relay.js';
import { FaultProxy, type ProxyMode } from './fault-proxy.js';
import { rabbitmqctl, Slot, sleep, stablePort } from './processes.js';
import {
  appliedKey,
  CRASH_POINTS,
  ownTableSql,
  Prng,
  ROLES,
  type Role,
  type SoakPayload,
  type SoakReport,
  TOTAL_SHARDS,
  totalKey,
  type WorkerSpec,
} from './shared.js';

// ---------------------------------------------------------------------------------------------- options

const { values: args } = parseArgs({
  options: {
    store: { type: 'string', default: 'sqlite' },
    signals: { type: 'string', default: '500' },
    duration: { type: 'string', default: '60' },
    seed: { type: 'string' },
    'broker-restarts': { type: 'boolean', default: false },
    'poison-rate': { type: 'string', default: '0.02' },
    'fault-interval': { type: 'string', default: '1500' },
    'quiesce-timeout': { type: 'string', default: '180' },
    workers: { type: 'string', default: 'ingress=2,hop2=2,hop3=2,system-b=2' },
    'amqp-url': {
      type: 'string',
      default: process.env.TOLLGATE_SOAK_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
    },
    'dynamodb-endpoint': { type: 'string' },
    'postgres-url': {
      type: 'string',
      default: process.env.TOLLGATE_SOAK_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    },
    /** DynamoDB: partition key values per status in the byStatus index (the store's statusShards). */
    'status-shards': { type: 'string', default: '1' },
    /** rabbitmqctl -n: a broker node of its own (to try --broker-restarts without stopping a shared broker). */
    'rabbitmq-node': { type: 'string' },
    concurrency: { type: 'string', default: '48' },
    /** The edge pauses while more messages than this wait in the hop queues: the run keeps pace end to end. */
    'max-backlog': { type: 'string', default: '2000' },
    'keep-logs': { type: 'boolean', default: false },
    /** Negative control: 'fresh-token' makes system B skip the protocol; the run must then fail. */
    bug: { type: 'string' },
  },
  strict: true,
});

const STORE_KINDS = ['sqlite', 'dynamodb', 'postgres'] as const;
const storeKind = STORE_KINDS.find((kind) => kind === args.store);
if (!storeKind) fail(`--store must be sqlite, dynamodb or postgres, not ${args.store}`);
const SIGNALS = positiveInt('signals');
const DURATION_MS = Number(args.duration) * 1000;
const SEED = args.seed ?? randomBytes(4).toString('hex');
const POISON_RATE = Number(args['poison-rate']);
const FAULT_INTERVAL_MS = Number(args['fault-interval']);
const QUIESCE_TIMEOUT_MS = Number(args['quiesce-timeout']) * 1000;
const CONCURRENCY = positiveInt('concurrency');
const STATUS_SHARDS = positiveInt('status-shards');
if (STATUS_SHARDS > 1 && storeKind !== 'dynamodb') fail('--status-shards applies to --store dynamodb only');
const MAX_BACKLOG = positiveInt('max-backlog');
const BROKER_RESTARTS = args['broker-restarts'] === true;
const WORKER_COUNTS = parseWorkers(args.workers ?? '');
if (args.bug !== undefined && args.bug !== 'fresh-token') fail(`unknown --bug ${args.bug}`);
const AMQP_BASE = new URL(args['amqp-url'] ?? '');
const POSTGRES_URL = args['postgres-url'] ?? '';
/** PostgreSQL: connections per worker process (8 workers share the server's max_connections with the harness). */
const POSTGRES_WORKER_POOL = 5;
const NODE_ARGS = args['rabbitmq-node'] ? ['-n', args['rabbitmq-node']] : [];
const ctl = (commandArgs: readonly string[], timeoutMs?: number) =>
  rabbitmqctl([...NODE_ARGS, ...commandArgs], timeoutMs);

function positiveInt(name: 'signals' | 'concurrency' | 'max-backlog' | 'status-shards'): number {
  const value = Number(args[name]);
  if (!Number.isInteger(value) || value < 1) fail(`--${name} must be a positive integer`);
  return value;
}

function parseWorkers(text: string): Record<Role, number> {
  const counts: Record<Role, number> = { ingress: 2, hop2: 2, hop3: 2, 'system-b': 2 };
  for (const part of text.split(',').filter(Boolean)) {
    const [role, count] = part.split('=');
    if (!ROLES.includes(role as Role) || !(Number(count) >= 1)) fail(`bad --workers entry ${part}`);
    counts[role as Role] = Number(count);
  }
  return counts;
}

function fail(message: string): never {
  process.stderr.write(`soak: ${message}\n`);
  process.exit(2);
}

const log = (message: string): void => {
  process.stderr.write(`[soak ${SEED}] ${message}\n`);
};

// ---------------------------------------------------------------------------------------------- the plan

interface SignalPlan {
  id: string;
  poison: boolean;
  /** Copies of the same token: which ingress slot, and after how long (0 = with the first). */
  copies: Array<{ ingress: number; afterMs: number }>;
}

type FaultPlan =
  | { at: number; kind: 'kill'; role: Role; index: number; restartMs: number }
  | { at: number; kind: 'crash-point'; role: Role; index: number; point: string; after: number }
  | { at: number; kind: 'close-connections' }
  | { at: number; kind: 'amqp-proxy' | 'dynamodb-proxy' | 'postgres-proxy'; mode: ProxyMode; forMs: number }
  | { at: number; kind: 'terminate-backends' }
  | { at: number; kind: 'broker-restart'; downMs: number };

function planSignals(prng: Prng): SignalPlan[] {
  const plans: SignalPlan[] = [];
  for (let i = 0; i < SIGNALS; i++) {
    const copies = [{ ingress: prng.int(0, WORKER_COUNTS.ingress - 1), afterMs: 0 }];
    const extra = prng.pick([0, 0, 1, 2]); // 1–3 copies, about half of them duplicated
    for (let c = 0; c < extra; c++) {
      copies.push({
        ingress: prng.int(0, WORKER_COUNTS.ingress - 1),
        afterMs: prng.chance(0.4) ? 0 : prng.int(20, 3_000),
      });
    }
    plans.push({ id: `s${i}`, poison: prng.chance(POISON_RATE), copies });
  }
  return plans;
}

function planFaults(prng: Prng): FaultPlan[] {
  const weights: Array<[FaultPlan['kind'], number]> = [
    ['kill', 30],
    ['crash-point', 30],
    ['close-connections', 10],
    ['amqp-proxy', 12],
    ...(storeKind === 'dynamodb' ? ([['dynamodb-proxy', 18]] as Array<[FaultPlan['kind'], number]>) : []),
    ...(storeKind === 'postgres'
      ? ([
          ['postgres-proxy', 18],
          ['terminate-backends', 6],
        ] as Array<[FaultPlan['kind'], number]>)
      : []),
    ...(BROKER_RESTARTS ? ([['broker-restart', 4]] as Array<[FaultPlan['kind'], number]>) : []),
  ];
  const sum = weights.reduce((total, [, weight]) => total + weight, 0);
  const faults: FaultPlan[] = [];
  for (
    let at = prng.exponential(FAULT_INTERVAL_MS);
    at < DURATION_MS;
    at += prng.exponential(FAULT_INTERVAL_MS)
  ) {
    let roll = prng.next() * sum;
    let kind: FaultPlan['kind'] = 'kill';
    for (const [candidate, weight] of weights) {
      roll -= weight;
      if (roll < 0) {
        kind = candidate;
        break;
      }
    }
    const role = prng.pick(ROLES);
    const index = prng.int(0, WORKER_COUNTS[role] - 1);
    switch (kind) {
      case 'kill':
        faults.push({ at, kind, role, index, restartMs: prng.int(100, 2_000) });
        break;
      case 'crash-point':
        faults.push({ at, kind, role, index, point: prng.pick(CRASH_POINTS[role]), after: prng.int(1, 6) });
        break;
      case 'close-connections':
      case 'terminate-backends':
        faults.push({ at, kind });
        break;
      case 'amqp-proxy':
      case 'dynamodb-proxy':
      case 'postgres-proxy': {
        const which = prng.pick(['delay', 'reset', 'blackhole'] as const);
        const mode: ProxyMode =
          which === 'delay' ? { kind: 'delay', ms: prng.int(20, 300) } : { kind: which };
        const forMs = which === 'reset' ? prng.int(100, 1_500) : prng.int(500, 3_000);
        faults.push({ at, kind, mode, forMs });
        break;
      }
      case 'broker-restart':
        faults.push({ at, kind, downMs: prng.int(1_000, 4_000) });
        break;
    }
  }
  return faults;
}

// ---------------------------------------------------------------------------------------------- the run

const runId = `${SEED.replace(/[^A-Za-z0-9]/g, '').slice(0, 16)}${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
const runDir = join(tmpdir(), 'tollgate-soak', runId);
const vhost = `tollgate-soak-${runId}`;
const queues = { hop2: `soak.${runId}.hop2`, hop3: `soak.${runId}.hop3` };
const faults: Record<string, number> = {};
const count = (kind: string) => {
  faults[kind] = (faults[kind] ?? 0) + 1;
};
/** Workers that exited on their own (not SIGKILL) after they were ready: a robustness bug worth a look. */
const unexpectedExits: string[] = [];
/** Workers that exited before they were ready (e.g. the broker connection was closed while they started). */
const startupFailures: string[] = [];
const slots: Slot[] = [];
const proxies: FaultProxy[] = [];
let brokerStopped = false;
let stopping = false;
let vhostCreated = false;

/** Last resort (synchronous): never leave workers running or the broker stopped. */
process.on('exit', () => {
  for (const slot of slots) slot.killNow();
  if (brokerStopped) {
    try {
      execFileSync('rabbitmqctl', [...NODE_ARGS, 'start_app'], { timeout: 120_000, stdio: 'ignore' });
    } catch {
      // nothing more we can do
    }
  }
  if (vhostCreated) {
    try {
      execFileSync('rabbitmqctl', [...NODE_ARGS, 'delete_vhost', vhost], {
        timeout: 60_000,
        stdio: 'ignore',
      });
    } catch {
      // left behind; its name says where it came from
    }
  }
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    stopping = true;
    const timer = setTimeout(() => process.exit(130), 30_000);
    void cleanUp(false).finally(() => {
      clearTimeout(timer);
      process.exit(130);
    });
  });
}

let dynamo: { endpoint: string; stop(): Promise<void> } | undefined;
/** PostgreSQL: the store's schema and the application's own, made for this run and dropped at its end. */
let pgSchemas: { store: string; app: string } | undefined;
/** PostgreSQL: the workers' connections carry this application_name (the terminate-backends fault ends them). */
const pgWorkerApplication = `tollgate-soak-${runId}`.slice(0, 63);
let backendsTerminated = 0;
let ownDynamo = false;
let storeConfig: StoreConfig | undefined;
let store: TokenStore | undefined;
let probe: Probe | undefined;
let stopRelay: (() => Promise<void>) | undefined;
let closeSender: (() => void) | undefined;

async function cleanUp(success: boolean): Promise<void> {
  stopping = true;
  await Promise.allSettled(slots.map((slot) => slot.stop()));
  if (brokerStopped) {
    await ctl(['start_app'], 120_000).catch((error) => log(String(error)));
    brokerStopped = false;
  }
  await stopRelay?.().catch(() => undefined);
  closeSender?.();
  await store?.close().catch(() => undefined);
  await Promise.allSettled(proxies.map((proxy) => proxy.close()));
  await probe?.close();
  if (vhostCreated) {
    await ctl(['delete_vhost', vhost]).catch((error) => log(String(error)));
    vhostCreated = false;
  }
  if (storeConfig?.kind === 'dynamodb' && !ownDynamo && dynamo) {
    const client = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    for (const table of [storeConfig.tokensTable, storeConfig.stateTable]) {
      await client.send(new DeleteTableCommand({ TableName: table })).catch(() => undefined);
    }
    client.destroy();
  }
  if (pgSchemas) {
    const schemas = pgSchemas;
    await postgresAdmin(async (client) => {
      for (const schema of [schemas.app, schemas.store])
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }).then(
      () => {
        pgSchemas = undefined;
      },
      (error) => log(`PostgreSQL schemas ${schemas.store}, ${schemas.app} not dropped: ${String(error)}`),
    );
  }
  if (ownDynamo) await dynamo?.stop().catch(() => undefined);
  if (success && !args['keep-logs']) rmSync(runDir, { recursive: true, force: true });
}

async function main(): Promise<number> {
  mkdirSync(runDir, { recursive: true });
  log(
    `store=${storeKind}${STATUS_SHARDS > 1 ? ` (status shards ${STATUS_SHARDS})` : ''} signals=${SIGNALS} duration=${DURATION_MS / 1000}s workers=${JSON.stringify(WORKER_COUNTS)} ` +
      `broker-restarts=${BROKER_RESTARTS} logs=${runDir}`,
  );
  const signalPlans = planSignals(new Prng(`${SEED}/signals`));
  const faultPlans = planFaults(new Prng(`${SEED}/faults`));
  const restartPrng = new Prng(`${SEED}/restarts`);
  const poisonIds = new Set(signalPlans.filter((plan) => plan.poison).map((plan) => plan.id));

  // The broker: a vhost of our own, reached by the workers through the AMQP fault proxy.
  await ctl(['add_vhost', vhost]);
  vhostCreated = true;
  await ctl(['set_permissions', '-p', vhost, AMQP_BASE.username || 'guest', '.*', '.*', '.*']);
  const amqpProxy = await FaultProxy.start({
    name: 'amqp',
    targetHost: AMQP_BASE.hostname,
    targetPort: Number(AMQP_BASE.port || 5672),
  });
  proxies.push(amqpProxy);
  const directAmqp = amqpUrl(AMQP_BASE.host);
  const proxiedAmqp = amqpUrl(`127.0.0.1:${amqpProxy.port}`);
  // The harness's own connection, straight to the broker; `close_all_connections` closes it too, so it reopens.
  probe = new Probe(directAmqp);
  for (const queue of [queues.hop2, queues.hop3])
    await declareConsumerQueue(await probe.channel(), queue, {});

  // The store: the harness talks to it directly, the workers through the fault proxy (DynamoDB, PostgreSQL).
  let workerStoreConfig: StoreConfig;
  let storeProxy: FaultProxy | undefined;
  /** PostgreSQL: where the handlers keep their applied-counters (the application's own table). */
  let ownSchema: string | undefined;
  if (storeKind === 'dynamodb') {
    if (args['dynamodb-endpoint'])
      dynamo = { endpoint: args['dynamodb-endpoint'], stop: async () => undefined };
    else {
      const { startDynamoDbLocal } = await import('../test/support/dynamodb-local.js');
      dynamo = await startDynamoDbLocal();
      ownDynamo = true;
    }
    const target = new URL(dynamo.endpoint);
    storeProxy = await FaultProxy.start({
      name: 'dynamodb',
      targetHost: target.hostname,
      targetPort: Number(target.port),
    });
    proxies.push(storeProxy);
    const tables = runId.replace(/[^A-Za-z0-9]/g, '');
    storeConfig = {
      kind: 'dynamodb',
      endpoint: dynamo.endpoint,
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
    proxies.push(storeProxy);
    const schemas = postgresSchemaNames();
    pgSchemas = schemas;
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
  store = await openStore(storeConfig);
  const edgeStore = store;

  // The workers.
  const ports: Record<'ingress' | 'system-b', number[]> = { ingress: [], 'system-b': [] };
  for (const role of ['ingress', 'system-b'] as const) {
    for (let i = 0; i < WORKER_COUNTS[role]; i++) ports[role].push(await stablePort());
  }
  const systemBUrls = ports['system-b'].map((port) => `http://127.0.0.1:${port}/signal`);
  const ingressUrls = ports.ingress.map((port) => `http://127.0.0.1:${port}/signal`);
  const byRole: Record<Role, Slot[]> = { ingress: [], hop2: [], hop3: [], 'system-b': [] };
  for (const role of ROLES) {
    for (let i = 0; i < WORKER_COUNTS[role]; i++) {
      const spec: WorkerSpec = {
        role,
        name: `${role}-${i + 1}`,
        storeConfig: workerStoreConfig,
        ...(ownSchema !== undefined ? { ownSchema } : {}),
        amqpUrl: proxiedAmqp,
        queues,
        systemBUrls,
        ...(args.bug === 'fresh-token' ? { bug: 'fresh-token' as const } : {}),
        ...(role === 'ingress' || role === 'system-b' ? { port: ports[role][i] as number } : {}),
      };
      const slot = new Slot(spec, runDir, {
        crashFired: (_slot, arming) => count(`crash-point:${slot.role}:${arming.point}`),
        unexpectedExit: (_slot, code, signal, wasReady) => {
          if (stopping) return;
          if (wasReady) unexpectedExits.push(`${slot.name} code=${code} signal=${signal}`);
          else startupFailures.push(`${slot.name} code=${code} signal=${signal}`);
        },
      });
      slots.push(slot);
      byRole[role].push(slot);
    }
  }
  const started = await Promise.all(slots.map((slot) => slot.start()));
  if (started.some((ready) => !ready)) throw new Error(`workers did not start; see the logs in ${runDir}`);
  log(`${slots.length} workers ready`);

  // The edge: mints each root token, then sends copies of it to ingress workers; its relay re-sends the rest.
  const sender = new HttpSignalSender({
    retry: { attempts: 8, baseDelayMs: 100, maxDelayMs: 2_000 },
    timeoutMs: 5_000,
  });
  const edge = new HttpEdgeClient({ store: edgeStore, mintedBy: 'soak-edge', sender });
  const relaySender = new HttpSignalSender({
    retry: { attempts: 2, baseDelayMs: 100, maxDelayMs: 500 },
    timeoutMs: 5_000,
  });
  const { relay } = createHttpRelay({
    store: edgeStore,
    sender: relaySender,
    delayMs: 3_000,
    intervalMs: 1_000,
    leaseMs: 5_000,
  });
  relay.start();
  stopRelay = () => relay.stop();
  closeSender = () => {
    sender.close();
    relaySender.close();
  };

  const copies = { sent: 0, processed: 0, duplicate: 0, alreadyConsumed: 0, failed: 0, retries: 0 };
  const sendOne = async (plan: SignalPlan): Promise<void> => {
    const payload: SoakPayload = plan.poison ? { id: plan.id, poison: true } : { id: plan.id };
    const first = plan.copies[0]!;
    const token = await mintWithRetry(edge, ingressUrls[first.ingress] as string, payload);
    await Promise.all(
      plan.copies.map(async (copy, index) => {
        if (copy.afterMs > 0) await sleep(copy.afterMs);
        copies.sent += 1;
        const url = ingressUrls[copy.ingress] as string;
        try {
          const delivery =
            index === 0
              ? await edge.deliver(token)
              : await sender.deliver({ ...token, destination: { medium: 'http', method: 'POST', url } });
          copies.retries += delivery.attempts - 1;
          if (delivery.outcome === 'processed') copies.processed += 1;
          else if (delivery.outcome === 'duplicate') copies.duplicate += 1;
          else copies.alreadyConsumed += 1;
        } catch {
          copies.failed += 1; // the token stays pending: a relay delivers it
        }
      }),
    );
  };

  const begin = Date.now();
  let sentSignals = 0;
  let backlogPauses = 0;
  const queueBacklog = async (): Promise<number> => {
    const counts = await Promise.all([queues.hop2, queues.hop3].map((queue) => probe?.messageCount(queue)));
    // -1 (broker not reachable right now) counts as no backlog: the faults must not stall the edge.
    return counts.reduce<number>((sum, n) => sum + Math.max(0, n ?? 0), 0);
  };
  const sending = (async () => {
    const running = new Set<Promise<void>>();
    for (let i = 0; i < signalPlans.length; i++) {
      const due = begin + (i * DURATION_MS) / signalPlans.length;
      if (due > Date.now()) await sleep(due - Date.now());
      while (running.size >= CONCURRENCY) await Promise.race(running);
      // Backpressure for the whole conversation, not only the edge's HTTP hop: a store that slows down (DynamoDB
      // Local as its tables grow) must not leave an unbounded backlog in the queues for after the run.
      if (i % 50 === 0) {
        while (!stopping && (await queueBacklog()) > MAX_BACKLOG) {
          backlogPauses += 1;
          await sleep(500);
        }
      }
      const task: Promise<void> = sendOne(signalPlans[i]!)
        .catch((error) => log(`signal ${signalPlans[i]?.id} not minted: ${String(error)}`))
        .finally(() => running.delete(task));
      running.add(task);
      sentSignals += 1;
    }
    await Promise.all(running);
  })();

  // The faults, each at its planned moment while signals flow.
  const activeFaults = new Set<Promise<void>>();
  const proxyGeneration = new Map<FaultProxy, number>();
  const injectProxy = async (proxy: FaultProxy, kind: string, mode: ProxyMode, forMs: number) => {
    const generation = (proxyGeneration.get(proxy) ?? 0) + 1;
    proxyGeneration.set(proxy, generation);
    count(`${kind}:${mode.kind}`);
    proxy.setMode(mode);
    await sleep(forMs);
    if (proxyGeneration.get(proxy) === generation) proxy.setMode({ kind: 'pass' });
  };
  const inject = async (fault: FaultPlan): Promise<void> => {
    switch (fault.kind) {
      case 'kill': {
        const slot = byRole[fault.role][fault.index]!;
        if (!slot.alive) return;
        count('kill');
        await slot.kill(fault.restartMs);
        return;
      }
      case 'crash-point': {
        const slot = byRole[fault.role][fault.index]!;
        count('crash-armed');
        await slot.kill(restartPrng.int(100, 1_000), { point: fault.point, after: fault.after });
        return;
      }
      case 'close-connections':
        if (brokerStopped) return;
        await ctl(['close_all_connections', '-p', vhost, 'tollgate soak fault']).then(
          () => count('close-connections'),
          (error) => log(`close_all_connections failed: ${String(error).split('\n')[0]}`),
        );
        return;
      case 'amqp-proxy':
        return injectProxy(amqpProxy, fault.kind, fault.mode, fault.forMs);
      case 'dynamodb-proxy':
      case 'postgres-proxy':
        if (storeProxy) return injectProxy(storeProxy, fault.kind, fault.mode, fault.forMs);
        return;
      case 'terminate-backends':
        // Like close-connections for the broker: the server ends the workers' sessions (SQLSTATE 57P01).
        await postgresAdmin((client) =>
          client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
            pgWorkerApplication,
          ]),
        ).then(
          (result) => {
            count('terminate-backends');
            backendsTerminated += result.rowCount ?? 0;
          },
          (error) => log(`terminate-backends failed: ${String(error).split('\n')[0]}`),
        );
        return;
      case 'broker-restart':
        if (brokerStopped) return;
        count('broker-restart');
        brokerStopped = true;
        try {
          await ctl(['stop_app'], 120_000);
          await sleep(fault.downMs);
        } finally {
          await ctl(['start_app'], 120_000);
          brokerStopped = false;
        }
        return;
    }
  };
  let sendingDone = false;
  void sending.finally(() => {
    sendingDone = true;
  });
  const faulting = (async () => {
    for (const fault of faultPlans) {
      while (!sendingDone && !stopping && Date.now() - begin < fault.at) await sleep(Math.min(100, fault.at));
      if (sendingDone || stopping) break;
      const task: Promise<void> = inject(fault)
        .catch((error) => log(`fault ${fault.kind} failed: ${String(error)}`))
        .finally(() => activeFaults.delete(task));
      activeFaults.add(task);
    }
  })();
  const progress = setInterval(() => {
    log(
      `t=${Math.round((Date.now() - begin) / 1000)}s signals=${sentSignals}/${SIGNALS} copies=${copies.sent} ` +
        `faults=${Object.values(faults).reduce((a, b) => a + b, 0)}`,
    );
  }, 10_000);
  try {
    await sending;
    await faulting;
    await Promise.allSettled([...activeFaults]);
  } finally {
    clearInterval(progress);
  }
  const sendingMs = Date.now() - begin;
  log(`sent ${SIGNALS} signals (${copies.sent} copies) in ${Math.round(sendingMs / 1000)}s; quiescing`);

  // Quiescence: faults off, every worker up and disarmed, then wait for the conversation to settle.
  for (const proxy of proxies) proxy.setMode({ kind: 'pass' });
  if (brokerStopped) {
    await ctl(['start_app'], 120_000);
    brokerStopped = false;
  }
  for (const slot of slots) if (slot.armed) await slot.kill(100);
  for (let i = 0; i < 600 && slots.some((slot) => !slot.isReady); i++) await sleep(100);
  const quiesceStart = Date.now();
  let quiet = false;
  let lastState = '';
  let stableChecks = 0;
  while (Date.now() - quiesceStart < QUIESCE_TIMEOUT_MS) {
    const inFlight = await liveTokens(edgeStore).catch(() => undefined);
    const hop2Ready = await probe.messageCount(queues.hop2);
    const hop3Ready = await probe.messageCount(queues.hop3);
    const dead = await probe.messageCount(deadLetterNames(queues.hop2).queue);
    const stuck = inFlight?.filter((token) => !isPoisonedHop2(token, poisonIds)) ?? [{} as TokenRecord];
    lastState = `in-flight=${inFlight?.length ?? '?'} (not poison: ${stuck.length}) hop2-queue=${hop2Ready} hop3-queue=${hop3Ready} dead=${dead}`;
    const settled = stuck.length === 0 && hop2Ready === 0 && hop3Ready === 0 && dead >= poisonIds.size;
    stableChecks = settled ? stableChecks + 1 : 0;
    if (stableChecks >= 3) {
      quiet = true;
      break;
    }
    await sleep(1_000);
  }
  const quiesceMs = Date.now() - quiesceStart;
  log(`quiescence ${quiet ? 'reached' : 'NOT reached'} after ${Math.round(quiesceMs / 1000)}s: ${lastState}`);

  // The checks.
  const violations: string[] = [];
  const applied: Record<Role, number> = { ingress: 0, hop2: 0, hop3: 0, 'system-b': 0 };
  const totals: Record<Role, number> = { ingress: 0, hop2: 0, hop3: 0, 'system-b': 0 };
  let lost = 0;
  let doubles = 0;
  const examples: string[] = [];
  const appliedCount = await applicationCounts(edgeStore, ownSchema);
  await forEachLimited(signalPlans, 16, async (plan) => {
    let missing = false;
    for (const role of ROLES) {
      const value = await appliedCount(role, plan.id);
      const expected = plan.poison && role !== 'ingress' ? 0 : 1;
      applied[role] += value;
      if (value > 1) {
        doubles += value - 1;
        if (examples.length < 10) examples.push(`${plan.id} applied ${value}x at ${role}`);
      }
      if (value < expected) missing = true;
      if (value > expected && expected === 0 && examples.length < 10)
        examples.push(`poison ${plan.id} applied at ${role}`);
      if (value > expected && expected === 0) doubles += value;
    }
    if (missing) {
      lost += 1;
      if (examples.length < 10) examples.push(`${plan.id} missing at some hop`);
    }
  });
  for (const role of ROLES) {
    for (let shard = 0; shard < TOTAL_SHARDS; shard++) {
      totals[role] += Number((await edgeStore.readState(totalKey(role, shard)))?.value ?? 0);
    }
  }
  const expectedPerHop: Record<Role, number> = {
    ingress: SIGNALS,
    hop2: SIGNALS - poisonIds.size,
    hop3: SIGNALS - poisonIds.size,
    'system-b': SIGNALS - poisonIds.size,
  };
  for (const role of ROLES) {
    if (applied[role] !== expectedPerHop[role])
      violations.push(`${role}: ${applied[role]} state changes applied, expected ${expectedPerHop[role]}`);
    if (totals[role] !== applied[role])
      violations.push(
        `${role}: per-hop total ${totals[role]} differs from per-signal count ${applied[role]}`,
      );
  }
  if (lost > 0) violations.push(`${lost} signals lost`);
  if (doubles > 0) violations.push(`${doubles} double applications`);

  const inFlight = await liveTokens(edgeStore);
  const leftInFlight = inFlight.filter((token) => !isPoisonedHop2(token, poisonIds));
  if (leftInFlight.length > 0) {
    violations.push(`${leftInFlight.length} tokens left in flight`);
    for (const token of leftInFlight.slice(0, 5))
      examples.push(
        `in flight: ${token.id} ${token.status} ${token.mintedBy} ${JSON.stringify(token.payload)}`,
      );
  }

  const deadHop2 = await drainIds(await probe.channel(), deadLetterNames(queues.hop2).queue);
  const deadHop3 = await drainIds(await probe.channel(), deadLetterNames(queues.hop3).queue);
  const deadIds = new Set([...deadHop2.ids, ...deadHop3.ids]);
  const notPoison = [...deadIds].filter((id) => !poisonIds.has(id));
  const poisonNotDead = [...poisonIds].filter((id) => !deadIds.has(id));
  if (notPoison.length > 0)
    violations.push(`${notPoison.length} non-poison signals dead-lettered: ${notPoison.slice(0, 5)}`);
  if (poisonNotDead.length > 0)
    violations.push(`${poisonNotDead.length} poison signals not dead-lettered: ${poisonNotDead.slice(0, 5)}`);

  const rows = await tokenRows(edgeStore);
  const expectedRows = 4 * SIGNALS - 2 * poisonIds.size;
  if (rows.total !== expectedRows) violations.push(`token rows ${rows.total}, expected ${expectedRows}`);
  if (!quiet) violations.push(`no quiescence within ${QUIESCE_TIMEOUT_MS / 1000}s (${lastState})`);
  if (unexpectedExits.length > 0) log(`workers that exited on their own: ${unexpectedExits.join(', ')}`);
  if (startupFailures.length > 0)
    log(`workers that failed to start (restarted): ${startupFailures.join(', ')}`);

  const report: SoakReport & Record<string, unknown> = {
    seed: SEED,
    store: storeKind,
    commit: sourceCommit(),
    ok: violations.length === 0,
    violations,
    logicalSignals: SIGNALS,
    poison: poisonIds.size,
    copies,
    faults: Object.fromEntries(Object.entries(faults).sort()),
    faultsTotal: Object.entries(faults)
      .filter(([kind]) => !kind.startsWith('crash-point:'))
      .reduce((sum, [, n]) => sum + n, 0),
    appliedPerHop: applied,
    expectedPerHop,
    totalsPerHop: totals,
    lost,
    doubleApplications: doubles,
    tokensLeftInFlight: leftInFlight.length,
    poisonTokensInFlight: inFlight.length - leftInFlight.length,
    deadLettered: {
      signals: deadIds.size,
      messages: deadHop2.messages + deadHop3.messages,
      hop3Queue: deadHop3.messages,
    },
    store_: {
      tokenRows: rows.total,
      expectedTokenRows: expectedRows,
      byStatus: rows.byStatus,
      rowsPerSignal: +(rows.total / SIGNALS).toFixed(2),
    },
    workers: {
      slots: slots.length,
      starts: slots.reduce((sum, slot) => sum + slot.starts, 0),
      exitedOnTheirOwn: unexpectedExits,
      startupFailures: startupFailures.length,
    },
    proxies: Object.fromEntries(proxies.map((proxy) => [proxy.options.name, proxy.stats])),
    ...(storeKind === 'postgres' ? { postgres: { ...pgSchemas, backendsTerminated } } : {}),
    timing: {
      sendingSeconds: Math.round(sendingMs / 1000),
      quiescenceSeconds: Math.round(quiesceMs / 1000),
      backlogPauses,
    },
    examples,
    logs: runDir,
  };
  printReport(report);
  process.stdout.write(`SOAK RESULT ${JSON.stringify(report)}\n`);
  if (violations.length > 0) {
    process.stdout.write(`SOAK FAILED — replay with: node --import tsx soak/run.ts ${replayArgs()}\n`);
    return 1;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------- helpers

/** The command line again, with the seed (drawn at random if it was not given). */
function replayArgs(): string {
  const given = process.argv.slice(2);
  return (args.seed === undefined ? [...given, '--seed', SEED] : given).join(' ');
}

/** The commit the workers ran (with `+changes` when the tree differs from it), so a report names its code. */
function sourceCommit(): string {
  const git = (...gitArgs: string[]) =>
    execFileSync('git', gitArgs, {
      cwd: new URL('..', import.meta.url),
      encoding: 'utf8',
      stdio: 'pipe',
    }).trim();
  try {
    const commit = git('rev-parse', '--short=12', 'HEAD');
    return git('status', '--porcelain', '--untracked-files=no') === '' ? commit : `${commit}+changes`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function amqpUrl(hostAndPort: string): string {
  const auth = `${encodeURIComponent(decodeURIComponent(AMQP_BASE.username || 'guest'))}:${encodeURIComponent(decodeURIComponent(AMQP_BASE.password || 'guest'))}`;
  return `amqp://${auth}@${hostAndPort}/${encodeURIComponent(vhost)}`;
}

/**
 * How many times each hop applied each signal, as the handlers recorded it (the store-specific bit; see
 * applicationCounter in soak/worker.ts): the key-value state, or on PostgreSQL the application's own table,
 * read whole once.
 */
async function applicationCounts(
  store: TokenStore,
  ownSchema: string | undefined,
): Promise<(role: Role, id: string) => Promise<number>> {
  if (ownSchema === undefined) {
    return async (role, id) => Number((await store.readState(appliedKey(role, id)))?.value ?? 0);
  }
  const { rows } = await postgresAdmin((client) =>
    client.query<{ hop: string; signal: string; applications: number }>(ownTableSql(ownSchema).readAll),
  );
  const counts = new Map(rows.map((row) => [`${row.hop}/${row.signal}`, row.applications]));
  return async (role, id) => counts.get(`${role}/${id}`) ?? 0;
}

/** PostgreSQL schemas of soak runs: `soak_<creation time, base 36 seconds>_<random>`, and the same with `_app`. */
const SOAK_SCHEMA = /^soak_([0-9a-z]+)_[0-9a-f]{8}(?:_app)?$/;
/** Schemas left behind by a harness that was killed are dropped by a later run once they are this old. */
const STALE_SCHEMA_S = 6 * 60 * 60;

function postgresSchemaNames(): { store: string; app: string } {
  const store = `soak_${Math.floor(Date.now() / 1000).toString(36)}_${randomBytes(4).toString('hex')}`;
  return { store, app: `${store}_app` };
}

async function dropStaleSchemas(client: pg.Client): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  const { rows } = await client.query<{ nspname: string }>(
    "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'soak\\_%'",
  );
  for (const { nspname } of rows) {
    const created = Number.parseInt(SOAK_SCHEMA.exec(nspname)?.[1] ?? '', 36);
    if (Number.isFinite(created) && now - created > STALE_SCHEMA_S) {
      log(`dropping the schema ${nspname} left behind by an earlier run`);
      await client.query(`DROP SCHEMA IF EXISTS "${nspname}" CASCADE`);
    }
  }
}

/** A connection of the harness's own, straight to PostgreSQL (bounded: the end of a run must not hang on it). */
async function postgresAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: POSTGRES_URL,
    connectionTimeoutMillis: 10_000,
    statement_timeout: 30_000,
    lock_timeout: 10_000,
    application_name: 'tollgate-soak-harness',
  });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function mintWithRetry(edge: HttpEdgeClient, url: string, payload: SoakPayload): Promise<TokenRecord> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await edge.mint({ method: 'POST', url }, payload as unknown as JsonValue);
    } catch (error) {
      if (attempt >= 10) throw error;
      await sleep(200 * attempt);
    }
  }
}

function isPoisonedHop2(token: TokenRecord, poisonIds: ReadonlySet<string>): boolean {
  const payload = token.payload as SoakPayload | undefined;
  const destination = token.destination;
  return (
    payload?.poison === true &&
    poisonIds.has(payload.id) &&
    destination?.medium === 'amqp' &&
    destination.routingKey === queues.hop2
  );
}

async function liveTokens(store: TokenStore): Promise<TokenRecord[]> {
  const tokens: TokenRecord[] = [];
  for (const status of ['issued', 'pending', 'dispatched'] as const) {
    let cursor: string | undefined;
    for (let page = 0; page < 1_000; page++) {
      const result = await store.listByStatus(status, { limit: 500, ...(cursor ? { cursor } : {}) });
      tokens.push(...result.items);
      cursor = result.cursor;
      if (!cursor) break;
    }
  }
  return tokens;
}

async function tokenRows(
  store: TokenStore,
): Promise<{ total: number; byStatus: Partial<Record<TokenStatus, number>> }> {
  const byStatus: Partial<Record<TokenStatus, number>> = {};
  let total = 0;
  for (const status of TOKEN_STATUSES) {
    let cursor: string | undefined;
    let n = 0;
    for (let page = 0; page < 10_000; page++) {
      const result = await store.listByStatus(status, { limit: 1_000, ...(cursor ? { cursor } : {}) });
      n += result.items.length;
      cursor = result.cursor;
      if (!cursor) break;
    }
    if (n > 0) byStatus[status] = n;
    total += n;
  }
  return { total, byStatus };
}

/** A plain amqplib connection for inspecting the soak's queues; reopened whenever it was closed. */
class Probe {
  private open: Promise<{ model: ChannelModel; channel: Channel }> | undefined;
  private live: { model: ChannelModel; channel: Channel } | undefined;

  constructor(private readonly url: string) {}

  async channel(): Promise<Channel> {
    if (!this.open) {
      this.open = (async () => {
        const model = await connect(this.url);
        model.on('error', () => undefined);
        const channel = await model.createChannel();
        channel.on('error', () => undefined);
        const live = { model, channel };
        const lost = () => {
          if (this.live === live) this.live = undefined;
          this.open = undefined;
        };
        model.on('close', lost);
        channel.on('close', lost);
        this.live = live;
        return live;
      })();
      this.open.catch(() => {
        this.open = undefined;
      });
    }
    return (await this.open).channel;
  }

  /** Ready messages in a queue, or -1 if the broker could not be asked. */
  async messageCount(queue: string): Promise<number> {
    try {
      return (await (await this.channel()).checkQueue(queue)).messageCount;
    } catch {
      return -1;
    }
  }

  async close(): Promise<void> {
    const live = this.live;
    this.live = undefined;
    this.open = undefined;
    await live?.model.close().catch(() => undefined);
  }
}

/** Takes every message off a dead-letter queue: the distinct logical signals in it, and how many copies. */
async function drainIds(channel: Channel, queue: string): Promise<{ ids: Set<string>; messages: number }> {
  const ids = new Set<string>();
  let messages = 0;
  for (let i = 0; i < 1_000_000; i++) {
    const message = await channel.get(queue, { noAck: true });
    if (message === false) break;
    messages += 1;
    try {
      const payload = JSON.parse(message.content.toString('utf8')) as SoakPayload;
      ids.add(payload.id);
    } catch {
      ids.add(`(unparseable #${messages})`);
    }
  }
  return { ids, messages };
}

async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await run(item);
      }
    }),
  );
}

function printReport(report: SoakReport): void {
  const lines = [
    '',
    `Tollgate soak — store ${report.store}, seed ${report.seed}, commit ${report.commit}: ${report.ok ? 'OK' : 'FAILED'}`,
    `  logical signals sent      ${report.logicalSignals} (poison: ${report.poison})`,
    `  copies sent               ${report.copies.sent} (processed ${report.copies.processed}, duplicate answers ${report.copies.duplicate}, already consumed ${report.copies.alreadyConsumed}, gave up ${report.copies.failed}; HTTP retries ${report.copies.retries})`,
    `  faults injected           ${report.faultsTotal}: ${Object.entries(report.faults)
      .map(([kind, n]) => `${kind}=${n}`)
      .join(' ')}`,
    `  applied per hop           ${ROLES.map((role) => `${role}=${report.appliedPerHop[role]}/${report.expectedPerHop[role]}`).join(' ')}`,
    `  signals lost              ${report.lost}`,
    `  double applications       ${report.doubleApplications}`,
    `  tokens left in flight     ${report.tokensLeftInFlight}`,
    `  dead-lettered             ${report.deadLettered.signals} signals (${report.deadLettered.messages} messages), poison ${report.poison}`,
    `  store size                ${report.store_.tokenRows} token rows for ${report.logicalSignals} signals (expected ${report.store_.expectedTokenRows}; ${report.store_.rowsPerSignal} per signal)`,
    `  time                      sending ${report.timing.sendingSeconds}s, quiescence ${report.timing.quiescenceSeconds}s`,
    ...report.violations.map((violation) => `  VIOLATION: ${violation}`),
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  log(`harness failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.stdout.write(
    `SOAK RESULT ${JSON.stringify({ seed: SEED, store: storeKind, ok: false, violations: [`harness failure: ${String(error)}`], logs: runDir })}\n`,
  );
  exitCode = 1;
} finally {
  await cleanUp(exitCode === 0);
}
process.exit(exitCode);
