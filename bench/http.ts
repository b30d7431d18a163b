/**
 * HTTP hop benchmark: an exactly-once fastify route (one state write) against a plain fastify route doing the
 * same state write on the same SQLite file without tokens. Load comes from autocannon in a separate process,
 * so the load generator does not compete with the server for this process's event loop. Then the hop between
 * two systems with separate stores (bench/http-systems.ts).
 *
 *   npx tsx bench/http.ts            (or through bench/run.ts)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import Fastify, { type FastifyInstance } from 'fastify';
import { newTokenId } from '../src/core/ids.js';
import { pendingToken } from '../src/core/mint.js';
import type { TokenRecord } from '../src/core/token.js';
import { SqliteTokenStore } from '../src/stores/sqlite/sqlite-store.js';
import { tollgateOf, tollgatePlugin } from '../src/transports/http/index.js';
import { runCrossSystemHttpBench } from './http-systems.js';
import { fmt, printTable, ratio, settle } from './measure.js';
import { runtimeArgs } from './paths.js';
import { profiled } from './profile.js';
import { recordTarget } from './results.js';

const CONNECTIONS = 16;
/**
 * Each bench runs in a fresh process (bench/run.ts), so the warm-up is what compiles a route's code: the
 * exactly-once route has more of it, and 2 000 requests left TurboFan still compiling it in the measured rounds.
 */
const WARMUP_REQUESTS = 10_000;
const MEASURED_REQUESTS = 20_000;

export interface HttpBenchOptions {
  /** Measured requests per route and round. Default 20 000. */
  requests?: number;
}
const ROUNDS = 3;
const ROUTES = ['plain', 'exactly-once'] as const;
type Route = (typeof ROUTES)[number];
const PAYLOAD = { item: 'widget', quantity: 3 };

/** What the load process reports back (a subset of autocannon's result). */
export interface LoadResult {
  requests: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  duplicates: number;
}

interface Measured extends LoadResult {
  /** CPU time of this (server) process per request: less sensitive than req/s to other load on the machine. */
  cpuMicrosPerRequest: number;
}

export interface LoadPlan {
  url: string;
  requests: number;
  connections: number;
  body: string;
  /** File with one pre-minted token id per line; each request takes the next one. Absent: no token header. */
  tokensFile?: string;
}

export async function runHttpBench(options: HttpBenchOptions = {}): Promise<void> {
  const measuredRequests = options.requests ?? MEASURED_REQUESTS;
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-http-'));
  const filename = join(dir, 'bench.db');
  const store = new SqliteTokenStore({ filename });
  // The plain route writes the same state table through its own connection, as an app without Tollgate would.
  const plainDb = new Database(filename);
  plainDb.pragma('journal_mode = WAL');
  plainDb.pragma('synchronous = NORMAL');
  plainDb.pragma('busy_timeout = 5000');
  const upsert = plainDb.prepare(
    'INSERT INTO state (key, value, version) VALUES (?, ?, 1) ON CONFLICT(key) DO UPDATE SET value = excluded.value, version = version + 1',
  );
  const writeOnce = plainDb.transaction((key: string, value: string) => upsert.run(key, value)).immediate;

  const app: FastifyInstance = Fastify({ logger: false });
  await app.register(tollgatePlugin, { store, endpoint: 'bench' });
  app.post('/exactly-once', { config: { exactlyOnce: true } }, async (request) => {
    const work = tollgateOf(request);
    work.put(`order:${work.token.id}`, work.payload);
    return { ok: true };
  });
  // The same write: a key of the same shape, at a random place in the table, as the exactly-once route's order
  // key (its token id). A counter would append every plain write at the table's tail, a cheaper write.
  app.post('/plain', async (request) => {
    writeOnce(`order:${newTokenId()}`, JSON.stringify(request.body));
    return { ok: true };
  });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });

  try {
    const tokensFile = join(dir, 'tokens.txt');
    const body = JSON.stringify(PAYLOAD);
    /** Mints the route's tokens and writes them for the load process; returns the load, which alone is timed. */
    const prepare = async (route: Route, requests: number): Promise<() => Promise<Measured>> => {
      const plan: LoadPlan = {
        url: `${base}/${route}`,
        requests,
        connections: CONNECTIONS,
        body,
        tokensFile,
      };
      // Both routes get a token header, so the load process builds the same requests for both: the plain
      // route ignores it.
      const ids =
        route === 'exactly-once'
          ? (await premint(store, plan.url, requests)).map((t) => t.id)
          : Array.from({ length: requests }, () => newTokenId());
      writeFileSync(tokensFile, ids.join('\n'));
      // The premint's WAL pages and garbage, cleared before the clock starts (both routes alike).
      settle(plainDb);
      return async () => {
        const cpuBefore = process.cpuUsage();
        const result = await loadInChildProcess(plan);
        const cpu = process.cpuUsage(cpuBefore);
        return { ...result, cpuMicrosPerRequest: (cpu.user + cpu.system) / result.requests };
      };
    };

    for (const route of ROUTES) await (await prepare(route, WARMUP_REQUESTS))();
    // Rounds alternate the routes so that a noisy neighbour hurts both alike; each route's best round counts.
    const best = new Map<Route, Measured>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const route of ROUTES) {
        // The premint stays out of the profile: only the requests' work is profiled, as only it is timed.
        const measure = await prepare(route, measuredRequests);
        const measured =
          route === 'exactly-once' && round === 0
            ? await profiled('http-route-sqlite', measure)
            : await measure();
        const previous = best.get(route);
        if (!previous || measured.perSecond > previous.perSecond) best.set(route, measured);
      }
    }

    const rows = ROUTES.map((route) => {
      const r = best.get(route)!;
      return {
        route,
        requests: r.requests,
        'req/s': fmt(r.perSecond),
        'p50 ms': fmt(r.p50Ms, 2),
        'p99 ms': fmt(r.p99Ms, 2),
        'server CPU µs/req': fmt(r.cpuMicrosPerRequest),
        'non-2xx': r.non2xx,
        errors: r.errors,
        replays: r.duplicates,
      };
    });
    printTable(
      `HTTP hop on SQLite: best of ${ROUNDS} rounds of ${measuredRequests} requests, ${CONNECTIONS} connections ` +
        '(autocannon in a separate process)',
      rows,
    );
    const plain = best.get('plain')!;
    const exactlyOnce = best.get('exactly-once')!;
    console.log(
      `exactly-once / plain: throughput ${ratio(exactlyOnce.perSecond, plain.perSecond)}x, ` +
        `p50 ${ratio(exactlyOnce.p50Ms, plain.p50Ms)}x, p99 ${ratio(exactlyOnce.p99Ms, plain.p99Ms)}x, ` +
        `server CPU per request ${ratio(exactlyOnce.cpuMicrosPerRequest, plain.cpuMicrosPerRequest)}x`,
    );
    const figure =
      `${fmt(exactlyOnce.perSecond)} vs ${fmt(plain.perSecond)} req/s, p99 ${fmt(exactlyOnce.p99Ms, 2)} vs ` +
      `${fmt(plain.p99Ms, 2)} ms, server CPU ${fmt(exactlyOnce.cpuMicrosPerRequest)} vs ${fmt(plain.cpuMicrosPerRequest)} µs/req`;
    recordTarget({
      id: 'http.sqlite.throughput',
      title: 'HTTP route on SQLite, exactly-once / plain fastify with the same write',
      figure,
      value: exactlyOnce.perSecond / plain.perSecond,
      unit: 'ratio',
      op: '>=',
      target: 0.8,
    });
    recordTarget({
      id: 'http.sqlite.cpu',
      title: 'HTTP route on SQLite, server CPU per request exactly-once / plain',
      figure,
      value: exactlyOnce.cpuMicrosPerRequest / plain.cpuMicrosPerRequest,
      unit: 'ratio',
      op: '<=',
      target: 1.5,
    });
  } finally {
    await app.close();
    plainDb.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  // The hop between systems with separate stores (issue + send) against the same-store hop.
  await runCrossSystemHttpBench(options.requests ? { hops: Math.ceil(options.requests / 4) } : {});
}

/** One token per request, minted before the clock starts (as an edge client would have, earlier). */
async function premint(store: SqliteTokenStore, url: string, count: number): Promise<TokenRecord[]> {
  const now = Date.now();
  const tokens = Array.from({ length: count }, () =>
    pendingToken(
      { destination: { medium: 'http', method: 'POST', url }, payload: PAYLOAD },
      { mintedBy: 'bench', now },
    ),
  );
  for (let i = 0; i < tokens.length; i += 1_000) await store.mint(tokens.slice(i, i + 1_000));
  return tokens;
}

/** Runs `plan` with autocannon in a child process (so the load does not compete for this event loop). */
export function loadInChildProcess(plan: LoadPlan): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...runtimeArgs(), fileURLToPath(import.meta.url), '--load'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) reject(new Error(`load process exited with ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as LoadResult);
    });
    child.stdin.end(JSON.stringify(plan));
  });
}

/** The load process: reads a plan on stdin, runs autocannon, prints a LoadResult line. */
async function runLoad(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const plan = JSON.parse(Buffer.concat(chunks).toString()) as LoadPlan;
  const ids = plan.tokensFile ? readFileSync(plan.tokensFile, 'utf8').split('\n') : [];
  let next = 0;
  let duplicates = 0;
  const { default: autocannon } = await import('autocannon');
  // Timed here, up to the last answer: autocannon notices a finished `amount` only on its once-a-second tick,
  // so its duration (and even the time until it returns) is whole seconds, too coarse for runs this short.
  const started = performance.now();
  let lastAnswerAt = started;
  const result = await autocannon({
    url: plan.url,
    connections: plan.connections,
    amount: plan.requests,
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: plan.body,
        setupRequest: (request) =>
          ids.length === 0
            ? request
            : {
                ...request,
                headers: { ...request.headers, 'exactly-once-token': ids[next++ % ids.length]! },
              },
        onResponse: (_status, _body, _context, headers) => {
          lastAnswerAt = performance.now();
          if (headers?.['exactly-once-status'] === 'duplicate') duplicates += 1;
        },
      },
    ],
  });
  const seconds = (lastAnswerAt - started) / 1000;
  const report: LoadResult = {
    requests: result.requests.total,
    perSecond: result.requests.total / seconds,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    duplicates,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  if (process.argv.includes('--load')) await runLoad();
  else await runHttpBench();
}
