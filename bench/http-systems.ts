/**
 * Cross-system HTTP hop benchmark: system A (this process, its own SQLite file) dispatches pending signals to
 * system B (a child process with the fastify plugin and its issuing route), against the same hop when B works
 * on A's own SQLite file. Each hop: (issue at B +) send with the token + mark dispatched in A.
 *
 *   npx tsx bench/http-systems.ts            (or `npm run bench -- http`)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Fastify from 'fastify';
import { Dispatcher } from '../src/core/dispatcher.js';
import { pendingToken } from '../src/core/mint.js';
import type { Destination, TokenRecord } from '../src/core/token.js';
import { SqliteTokenStore } from '../src/stores/sqlite/sqlite-store.js';
import { HttpSignalSender, tollgateOf, tollgatePlugin } from '../src/transports/http/index.js';
import { fmt, measure, printTable, ratio } from './measure.js';
import { runtimeArgs } from './paths.js';
import { recordTarget } from './results.js';

const CONCURRENCY = 16;
const WARMUP_HOPS = 500;
const MEASURED_HOPS = 5_000;
const ROUNDS = 2;
const KEY = 'bench-issuing-key-0123456789';
const PAYLOAD = { item: 'widget', quantity: 3 };
const VARIANTS = ['same store', 'cross-system'] as const;
type Variant = (typeof VARIANTS)[number];

interface Receiver {
  url: string;
  stop(): void;
}

export async function runCrossSystemHttpBench(options: { hops?: number } = {}): Promise<void> {
  const measuredHops = options.hops ?? MEASURED_HOPS;
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-bench-systems-'));
  const aFile = join(dir, 'a.db');
  const a = new SqliteTokenStore({ filename: aFile });
  const receivers = new Map<Variant, Receiver>([
    ['same store', await startReceiver(aFile)],
    ['cross-system', await startReceiver(join(dir, 'b.db'))],
  ]);
  const sender = new HttpSignalSender({ credentials: (name) => (name === 'b' ? KEY : undefined) });
  const dispatcher = new Dispatcher({ store: a, senders: [sender] });
  try {
    const run = async (variant: Variant, hops: number) => {
      const url = receivers.get(variant)!.url;
      const destination: Destination =
        variant === 'same store'
          ? { medium: 'http', method: 'POST', url: `${url}/hop` }
          : {
              medium: 'http',
              method: 'POST',
              url: `${url}/hop`,
              issuer: { url: `${url}/v1/tokens`, credential: 'b' },
            };
      const tokens = await premint(a, destination, hops);
      let failed = 0;
      const cpuBefore = process.cpuUsage();
      const measured = await measure(hops, CONCURRENCY, async (i) => {
        const report = await dispatcher.dispatch([tokens[i]!], 'hop');
        failed += report.failed.length;
      });
      const cpu = process.cpuUsage(cpuBefore);
      return { ...measured, failed, cpuMicrosPerHop: (cpu.user + cpu.system) / hops };
    };

    for (const variant of VARIANTS) await run(variant, WARMUP_HOPS);
    const best = new Map<Variant, Awaited<ReturnType<typeof run>>>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of VARIANTS) {
        const measured = await run(variant, measuredHops);
        const previous = best.get(variant);
        if (!previous || measured.perSecond > previous.perSecond) best.set(variant, measured);
      }
    }
    printTable(
      `HTTP hop between systems on SQLite: best of ${ROUNDS} rounds of ${measuredHops} dispatched signals, ` +
        `${CONCURRENCY} in flight (A here, B in a child process)`,
      VARIANTS.map((variant) => {
        const r = best.get(variant)!;
        return {
          hop: variant,
          'hops/s': fmt(r.perSecond),
          'p50 ms': fmt(r.p50Ms, 2),
          'p99 ms': fmt(r.p99Ms, 2),
          'sender CPU µs/hop': fmt(r.cpuMicrosPerHop),
          failed: r.failed,
        };
      }),
    );
    const same = best.get('same store')!;
    const cross = best.get('cross-system')!;
    console.log(
      `cross-system / same store: throughput ${ratio(cross.perSecond, same.perSecond)}x (target >= 0.6), ` +
        `p50 ${ratio(cross.p50Ms, same.p50Ms)}x, sender CPU per hop ${ratio(cross.cpuMicrosPerHop, same.cpuMicrosPerHop)}x. ` +
        'The cross-system hop makes an extra round trip (the issue call) and B inserts the issued token before ' +
        'its hop consumes it; the same-store hop has A and B take turns at the write lock of one SQLite file.',
    );
    recordTarget({
      id: 'http.cross-system',
      title: 'HTTP hop between systems (issue + send) / same-store hop',
      figure: `${fmt(cross.perSecond)} vs ${fmt(same.perSecond)} hops/s, p50 ${fmt(cross.p50Ms, 2)} vs ${fmt(same.p50Ms, 2)} ms`,
      value: cross.perSecond / same.perSecond,
      unit: 'ratio',
      op: '>=',
      target: 0.6,
    });
  } finally {
    sender.close();
    for (const receiver of receivers.values()) receiver.stop();
    await a.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Pending tokens as A's hops would have left them, minted before the clock starts. */
async function premint(
  store: SqliteTokenStore,
  destination: Destination,
  count: number,
): Promise<TokenRecord[]> {
  const now = Date.now();
  const tokens = Array.from({ length: count }, () =>
    pendingToken({ destination, payload: PAYLOAD }, { mintedBy: 'bench', now }),
  );
  for (let i = 0; i < tokens.length; i += 1_000) await store.mint(tokens.slice(i, i + 1_000));
  return tokens;
}

/** System B in a child process on `filename`; resolves with its URL once it listens. */
function startReceiver(filename: string): Promise<Receiver> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...runtimeArgs(), fileURLToPath(import.meta.url), '--receiver', filename],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`receiver exited with ${code} before it listened`)));
    createInterface({ input: child.stdout }).once('line', (url) =>
      resolve({ url, stop: () => child.kill('SIGTERM') }),
    );
  });
}

/** The receiving system: an exactly-once route with one state write, and the plugin's issuing route. */
async function serveReceiver(filename: string): Promise<void> {
  const store = new SqliteTokenStore({ filename });
  const app = Fastify({ logger: false });
  await app.register(tollgatePlugin, { store, endpoint: 'b', issuing: { keys: [KEY] } });
  app.post('/hop', { config: { exactlyOnce: true } }, async (request) => {
    const work = tollgateOf(request);
    work.put(`order:${work.token.id}`, work.payload);
    return { ok: true };
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  process.stdout.write(`${url}\n`);
  process.once('SIGTERM', () => {
    void app.close().then(() => store.close());
  });
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  const at = process.argv.indexOf('--receiver');
  if (at >= 0) await serveReceiver(process.argv[at + 1]!);
  else await runCrossSystemHttpBench();
}
