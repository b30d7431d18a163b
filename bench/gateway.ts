/**
 * Gateway ingress benchmark: HTTP request → token check → publish with broker confirm → 202, through the real
 * gateway process as production runs it (`node dist/src/gateway/main.js`, built first when dist is missing or
 * older than src), against a plain fastify route that publishes the same message on a plain amqplib confirm
 * channel. Both run as child processes and publish to the same exchange and queue. Also reports the gateway's
 * RSS at idle and its peak under load.
 *
 * Run: npx tsx bench/gateway.ts [--duration=S]   (or through bench/run.ts). Needs RabbitMQ (TOLLGATE_TEST_AMQP_URL).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { connect } from 'amqplib';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { fingerprint } from '../src/core/fingerprint.js';
import { newConversationId, newTokenId } from '../src/core/ids.js';
import type { TokenRecord } from '../src/core/token.js';
import { ENV } from '../src/gateway/config/index.js';
import { SqliteTokenStore } from '../src/stores/sqlite/sqlite-store.js';
import { stablePort } from '../test/support/free-port.js';
import { fmt, printTable, ratio } from './measure.js';
import { REPO_ROOT, runtimeArgs } from './paths.js';
import { PROFILE_DIR, printSummary } from './profile.js';
import { recordNote, recordTarget } from './results.js';

const AMQP_URL = process.env.TOLLGATE_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const ROOT = REPO_ROOT;
const EXCHANGE = 'tollgate.bench.ingress';
const QUEUE = 'tollgate.bench.ingress.sink';
const BODY = { orderId: 'bench-order', amount: 4200, currency: 'EUR' };
const CONNECTIONS = 32;
const WARMUP_S = 2;
const DURATION_S = 8;
const ROUNDS = 3;
/** The gateway's entry as production starts it (`npm run start:prod`). */
const GATEWAY_ENTRY = 'dist/src/gateway/main.js';
/** The node flags of `npm run start:prod` (the Dockerfile's CMD has the same): the bench runs what production runs. */
const GATEWAY_NODE_FLAGS = (
  JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
).scripts['start:prod']!.split(/\s+/).filter((part) => part.startsWith('--'));
/** Peak RSS the issue allows the gateway under this load. */
const PEAK_RSS_TARGET_MB = 150;
/** Live tokens cycled through by the load (the ingress does not consume them, so each can be posted again). */
const TOKENS = 5_000;
const BASELINE_FLAG = '--baseline-server';
const BENCH_FILE = fileURLToPath(import.meta.url);

interface LoadResult {
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  /** CPU time (user + system) of the server process per request: where a throughput gap is spent. */
  cpuUsPerRequest: number;
}

export interface GatewayBenchOptions {
  /** Measured seconds per contender and round. Default 8. */
  durationS?: number;
  /** Node flags for the gateway process instead of those of `npm run start:prod` (e.g. `--max-semi-space-size=8`). */
  gatewayNodeArgs?: string[];
}

export async function runGatewayBench(options: GatewayBenchOptions = {}): Promise<void> {
  const durationS = options.durationS ?? DURATION_S;
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-gw-bench-'));
  await prepareBroker();
  const dbFile = join(dir, 'gateway.db');
  const tokens = await mintTokens(dbFile);
  const port = await stablePort();
  const profileDir = PROFILE_DIR ? join(PROFILE_DIR, 'gateway') : undefined;
  const gatewayArgs = [
    ...(options.gatewayNodeArgs ?? GATEWAY_NODE_FLAGS),
    ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    GATEWAY_ENTRY,
  ];
  const gateway = await startChild(gatewayArgs, `http://127.0.0.1:${port}`, {
    [ENV.port]: String(port),
    [ENV.sqlitePath]: dbFile,
    [ENV.amqpUrl]: AMQP_URL,
    // Per-request info lines would measure the log pipe; warnings and errors still go out.
    [ENV.logLevel]: 'warn',
    [ENV.bridges]: JSON.stringify({ ingress: [{ route: 'bench', exchange: EXCHANGE, routingKey: 'order' }] }),
  });
  let baseline: Child | undefined;
  try {
    const baselinePort = await stablePort();
    baseline = await startChild(
      [
        ...runtimeArgs(),
        ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, 'baseline')}`] : []),
        BENCH_FILE,
        BASELINE_FLAG,
        String(baselinePort),
      ],
      `http://127.0.0.1:${baselinePort}`,
      {},
    );
    await sleep(1_000);
    const idleRssMb = rssMb(gateway.process);
    // Interleaved rounds (baseline, gateway, baseline, gateway, ...) so drift on the machine hits both alike, and
    // each side's best round counts: three of them, as in the HTTP bench, since a round of either side may land on
    // a busy moment of this shared machine.
    const plainChild = baseline.process;
    const peak = sampleRss(gateway.process);
    const plainRounds: LoadResult[] = [];
    const gatewayRounds: LoadResult[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      plainRounds.push(await load(`${baseline.url}/signal`, tokens, plainChild, durationS));
      gatewayRounds.push(await load(`${gateway.url}/v1/signals/bench`, tokens, gateway.process, durationS));
    }
    const plain = best(plainRounds);
    const gw = best(gatewayRounds);
    const peakRssMb = peak.stop();
    printTable('Gateway ingress (HTTP → token check → confirmed publish → 202)', [
      row('plain fastify + amqplib confirm', plain),
      row('Tollgate gateway', gw),
    ]);
    console.log(
      `throughput ratio gateway/plain: ${ratio(gw.perSecond, plain.perSecond)}; ` +
        `p99 ${fmt(gw.p99Ms, 1)} ms vs ${fmt(plain.p99Ms, 1)} ms`,
    );
    const rssLine = `gateway (${['node', ...gatewayArgs].join(' ')}) RSS: idle ${fmt(idleRssMb, 1)} MB, peak under load ${fmt(peakRssMb, 1)} MB`;
    console.log(rssLine);
    recordNote(rssLine);
    console.log(
      `(${CONNECTIONS} connections, ${WARMUP_S} s warm-up + ${durationS} s measured per round, best of ${ROUNDS} rounds; ` +
        `SQLite store, local RabbitMQ, persistent messages)`,
    );
    recordTarget({
      id: 'gateway.ingress.throughput',
      title: 'Gateway ingress / plain fastify + amqplib with confirms',
      figure: `${fmt(gw.perSecond)} vs ${fmt(plain.perSecond)} req/s, p99 ${fmt(gw.p99Ms, 1)} vs ${fmt(plain.p99Ms, 1)} ms, server CPU ${fmt(gw.cpuUsPerRequest)} vs ${fmt(plain.cpuUsPerRequest)} µs/req`,
      value: gw.perSecond / plain.perSecond,
      unit: 'ratio',
      op: '>=',
      target: 1,
    });
    recordTarget({
      id: 'gateway.rss.peak',
      title: 'Gateway peak RSS under the ingress bench',
      figure: `idle ${fmt(idleRssMb, 1)} MB, peak ${fmt(peakRssMb, 1)} MB (${['node', ...gatewayArgs].join(' ')})`,
      value: peakRssMb,
      unit: 'MB',
      op: '<=',
      target: PEAK_RSS_TARGET_MB,
    });
  } finally {
    await stopChild(gateway.process);
    if (baseline) await stopChild(baseline.process);
    if (profileDir) {
      summariseProfile('the gateway', profileDir);
      summariseProfile('the plain baseline', join(profileDir, 'baseline'));
    }
    await cleanupBroker();
    rmSync(dir, { recursive: true, force: true });
  }
}

function row(name: string, r: LoadResult): Record<string, string | number> {
  return {
    contender: name,
    'req/s': fmt(r.perSecond),
    'p50 ms': fmt(r.p50Ms, 1),
    'p99 ms': fmt(r.p99Ms, 1),
    'server CPU µs/req': fmt(r.cpuUsPerRequest),
    'non-2xx': r.non2xx,
    errors: r.errors,
  };
}

function best(rounds: readonly LoadResult[]): LoadResult {
  return rounds.reduce((a, b) => (a.perSecond >= b.perSecond ? a : b));
}

async function prepareBroker(): Promise<void> {
  const connection = await connect(AMQP_URL);
  const channel = await connection.createChannel();
  await channel.assertExchange(EXCHANGE, 'topic', { durable: true });
  // A bounded sink: the bench measures publishing, not a queue growing without a consumer.
  await channel.assertQueue(QUEUE, {
    durable: true,
    arguments: { 'x-max-length': 20_000, 'x-overflow': 'drop-head' },
  });
  await channel.bindQueue(QUEUE, EXCHANGE, '#');
  await connection.close();
}

async function cleanupBroker(): Promise<void> {
  const connection = await connect(AMQP_URL);
  const channel = await connection.createChannel();
  await channel.deleteQueue(QUEUE).catch(() => undefined);
  await channel.deleteExchange(EXCHANGE).catch(() => undefined);
  await connection.close().catch(() => undefined);
}

/** Issued tokens bound to BODY, written straight into the gateway's SQLite file (setup is not timed). */
async function mintTokens(filename: string): Promise<string[]> {
  const store = new SqliteTokenStore({ filename });
  const now = Date.now();
  const tokens: TokenRecord[] = Array.from({ length: TOKENS }, () => ({
    id: newTokenId(),
    conversationId: newConversationId(),
    mintedBy: 'bench',
    status: 'issued',
    fingerprint: fingerprint(BODY),
    mintedAt: now,
    expiresAt: now + 3_600_000,
    attempts: 0,
  }));
  await store.mint(tokens);
  await store.close();
  return tokens.map((t) => t.id);
}

/**
 * Builds dist (tsc -p tsconfig.build.json) unless the gateway's entry there is newer than every file under src.
 * tsc still emits when the tree has a type error; the bench then runs what it emitted and says so.
 */
function ensureBuilt(): void {
  const entry = join(ROOT, GATEWAY_ENTRY);
  const built = existsSync(entry) ? statSync(entry).mtimeMs : 0;
  if (built > newestMtime(join(ROOT, 'src'))) return;
  console.log(`building dist for the gateway (${GATEWAY_ENTRY} missing or older than src)…`);
  try {
    execFileSync(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
  } catch (error) {
    if (!existsSync(entry)) throw error;
    console.warn('tsc reported errors; the bench runs what it emitted:');
    console.warn(String((error as { stdout?: Buffer }).stdout ?? '').slice(0, 2_000));
  }
}

/** A contender's `--cpu-prof` profile (its whole life, start-up included: a small part of it). */
function summariseProfile(whose: string, dir: string): void {
  if (!existsSync(dir)) return;
  const newest = readdirSync(dir)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => join(dir, name))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!newest) return;
  console.log(`\nCPU profile of ${whose}: ${newest}`);
  printSummary(JSON.parse(readFileSync(newest, 'utf8')));
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

async function load(
  url: string,
  tokens: readonly string[],
  server: ChildProcess,
  durationS: number,
): Promise<LoadResult> {
  const run = (duration: number) => {
    let next = 0;
    return autocannon({
      url,
      connections: CONNECTIONS,
      duration,
      requests: [
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(BODY),
          setupRequest: (request) => {
            const token = tokens[next++ % tokens.length] as string;
            return { ...request, headers: { ...request.headers, 'exactly-once-token': token } };
          },
        },
      ],
    });
  };
  await run(WARMUP_S);
  const cpuBefore = cpuMs(server);
  const result = await run(durationS);
  const cpuUsed = cpuMs(server) - cpuBefore;
  return {
    cpuUsPerRequest: result.requests.total > 0 ? (cpuUsed * 1000) / result.requests.total : 0,
    perSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

interface Child {
  process: ChildProcess;
  url: string;
}

/** Starts `node <args>` and waits until `url` answers /health/live (or any HTTP answer). */
async function startChild(args: string[], url: string, env: Record<string, string>): Promise<Child> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited with ${child.exitCode}`);
    try {
      await fetch(`${url}/health/live`);
      return { process: child, url };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${args.join(' ')} did not start`);
    }
    await sleep(100);
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(12_000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

function rssMb(child: ChildProcess): number {
  try {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const kb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    return kb / 1024;
  } catch {
    return 0;
  }
}

/** utime + stime of a process, in ms (Linux /proc; clock ticks are 100 Hz there). */
function cpuMs(child: ChildProcess): number {
  try {
    const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

function sampleRss(child: ChildProcess): { stop(): number } {
  let peak = rssMb(child);
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMb(child));
  }, 200);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, rssMb(child));
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The baseline contender: a plain fastify route publishing the same message on a plain confirm channel. */
async function baselineServer(): Promise<void> {
  const connection = await connect(AMQP_URL);
  const channel = await connection.createConfirmChannel();
  const app = Fastify();
  app.post('/signal', async (request, reply) => {
    const token = request.headers['exactly-once-token'];
    if (typeof token !== 'string') return reply.code(400).send({ error: 'token header missing' });
    await new Promise<void>((resolve, reject) => {
      channel.publish(
        EXCHANGE,
        'order',
        Buffer.from(JSON.stringify(request.body)),
        {
          persistent: true,
          mandatory: true,
          contentType: 'application/json',
          messageId: token,
          headers: { 'exactly-once-token': token },
        },
        (error: unknown) => (error ? reject(error) : resolve()),
      );
    });
    return reply.code(202).send({ token });
  });
  await app.listen({
    host: '127.0.0.1',
    port: Number(process.argv[process.argv.indexOf(BASELINE_FLAG) + 1]),
  });
  process.on('SIGTERM', () => {
    void app
      .close()
      .then(() => connection.close())
      .finally(() => process.exit(0));
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  if (process.argv.includes(BASELINE_FLAG)) await baselineServer();
  else {
    const duration = process.argv.find((arg) => arg.startsWith('--duration='));
    await runGatewayBench(duration ? { durationS: Number(duration.slice('--duration='.length)) } : {});
  }
}
