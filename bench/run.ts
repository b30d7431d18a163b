/**
 * npm run bench [-- core amqp http gateway peer postgres scheduling] [--json <path>] [--messages=N] [--requests=N]
 *   [--duration=S] [--signals=N]
 * Prints figures and ratios, then every target row of issue 16 with its value, its target and met / not met; never
 * fails on a number. Writes the same results as JSON (default bench/results/<time>-<commit>.json, gitignored) for
 * bench/compare.ts. Starts DynamoDB Local itself for the DynamoDB rows; the postgres subset uses the local
 * PostgreSQL (and RabbitMQ for its AMQP row).
 *
 * Each bench runs in a process of its own (bench/one.ts), so that what one leaves behind (a large heap, code
 * compiled for it) does not weigh on the next or favour one contender: in one process, the plain HTTP route,
 * measured after the core and AMQP benches, cost 98 and 150 µs of CPU a request in two runs, against 85–91 µs
 * when measured alone. DynamoDB Local (a JVM, slow until warm) is started once, before the first bench with
 * DynamoDB rows, and stopped after the last. Before each bench the run waits for the machine to be idle: on two
 * cores, the broker or the JVM still busy after the bench before took the exactly-once HTTP route from about 130
 * to 170 µs of CPU a request.
 *
 * The size flags shorten a smoke run: AMQP messages per contender on SQLite, HTTP requests per route, gateway
 * seconds per round, signals of the Powertools peer.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DynamoDbLocal, startDynamoDbLocal } from '../test/support/dynamodb-local.js';
import { BENCHES, type BenchName, ON_DYNAMODB, type OneBenchResults } from './one.js';
import { compileBenches, REPO_ROOT } from './paths.js';
import { absorb, collected, machine, printTargets, sourceCommit, writeResults } from './results.js';

const argv = process.argv.slice(2);
const jsonAt = argv.indexOf('--json');
const jsonArg = argv.find((a) => a.startsWith('--json='))?.slice('--json='.length);
const jsonPath = jsonArg ?? (jsonAt >= 0 ? argv[jsonAt + 1] : undefined);
const names = argv.filter((a, i) => !a.startsWith('--') && !(jsonAt >= 0 && i === jsonAt + 1));
const sizeFlags = argv.filter((a) => /^--(messages|requests|duration|signals)=/.test(a));
const unknown = names.filter((name) => !(BENCHES as readonly string[]).includes(name));
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(', ')}; known: ${BENCHES.join(', ')}`);
  process.exit(2);
}
const wanted = BENCHES.filter((name) => names.length === 0 || names.includes(name));

const startedAt = new Date();
const commit = sourceCommit();
const host = machine();
console.log(
  `bench at ${commit} on ${host.cpus} × ${host.model}, ${host.memoryGb} GB, Node ${host.node} (${host.platform})`,
);

// Every bench runs compiled, as the package is built: tsx's output pays for a `__name` call on every closure.
const ONE_BENCH = compileBenches('one.ts');
const scratch = mkdtempSync(join(tmpdir(), 'tollgate-bench-run-'));
const failed: string[] = [];
let dynamo: DynamoDbLocal | undefined;
let rawFloors: Record<string, number> | undefined;
try {
  for (const [i, name] of wanted.entries()) {
    if (ON_DYNAMODB.has(name)) dynamo ??= await startDynamoDbLocal();
    else if (dynamo && !wanted.slice(i).some((later) => ON_DYNAMODB.has(later))) {
      await dynamo.stop();
      dynamo = undefined;
    }
    await untilIdle(name);
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (dynamo) env.BENCH_DYNAMO_ENDPOINT = dynamo.endpoint;
    if (rawFloors) env.BENCH_RAW_FLOORS = JSON.stringify(rawFloors);
    const out = join(scratch, `${name}.json`);
    const code = await runBenchProcess(name, out, env);
    if (code !== 0) {
      console.error(`\nthe ${name} bench failed (exit ${code}); its rows are missing below`);
      failed.push(name);
      continue;
    }
    const part = JSON.parse(readFileSync(out, 'utf8')) as OneBenchResults;
    absorb(part);
    rawFloors = part.rawFloors ?? rawFloors;
  }
} finally {
  await dynamo?.stop();
  rmSync(scratch, { recursive: true, force: true });
}

const results = collected({ commit, startedAt, benches: wanted });
printTargets(results.targets);
const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
const path = jsonPath ?? join(REPO_ROOT, 'bench', 'results', `${stamp}-${commit}.json`);
writeResults(path, results);
console.log(`results written to ${path}`);
// A bench that crashed is a broken bench, not a slow one: that fails the run.
if (failed.length > 0) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exit(1);
}

/** Waits (up to a minute) until the machine is at least 90 % idle over a second; says so if it never is. */
async function untilIdle(name: BenchName): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const idle = await idleShare(1_000);
    if (idle >= 0.9) return;
    if (Date.now() > deadline) {
      console.log(
        `(the machine was still ${Math.round((1 - idle) * 100)} % busy when the ${name} bench started)`,
      );
      return;
    }
  }
}

/** The share of CPU time spent idle over `ms`, from /proc/stat (1 where there is none: not Linux). */
async function idleShare(ms: number): Promise<number> {
  const sample = (): number[] | undefined => {
    try {
      return readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    } catch {
      return undefined;
    }
  };
  const before = sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = sample();
  if (!before || !after) return 1;
  const delta = after.map((value, i) => value - (before[i] ?? 0));
  const total = delta.reduce((sum, value) => sum + value, 0);
  // Field 4 of the cpu line. Not iowait (field 5): a disk still busy (PostgreSQL's checkpoint after the postgres
  // bench) slows the next bench as much as a busy CPU.
  return total > 0 ? (delta[3] ?? 0) / total : 1;
}

function runBenchProcess(name: BenchName, out: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ONE_BENCH, name, out, ...sizeFlags], {
      env,
      stdio: 'inherit',
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}
