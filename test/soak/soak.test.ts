import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SoakReport } from '../../soak/shared.js';
import { type DynamoDbLocal, startDynamoDbLocal } from '../support/dynamodb-local.js';
import { POSTGRES_TEST_URL } from '../support/stores.js';

const RUN = fileURLToPath(new URL('../../soak/run.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SEED = 'tollgate-ci-1';
const HARNESS_TIMEOUT_MS = 240_000;

/** Runs the harness in its own process and returns the JSON line it prints, with its output for diagnosis. */
async function soak(
  args: string[],
): Promise<{ result: SoakReport | undefined; code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', RUN, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-200_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  // The harness cleans up on SIGTERM (workers, vhost, tables); SIGKILL only if that hangs.
  const timer = setTimeout(() => child.kill('SIGTERM'), HARNESS_TIMEOUT_MS);
  const hard = setTimeout(() => child.kill('SIGKILL'), HARNESS_TIMEOUT_MS + 40_000);
  const code = await new Promise<number | null>((resolve) =>
    child.on('exit', (exitCode) => resolve(exitCode)),
  );
  clearTimeout(timer);
  clearTimeout(hard);
  const line = output.split('\n').find((text) => text.startsWith('SOAK RESULT '));
  const result = line ? (JSON.parse(line.slice('SOAK RESULT '.length)) as SoakReport) : undefined;
  return { result, code, output };
}

function expectClean(run: Awaited<ReturnType<typeof soak>>): void {
  const { result, code, output } = run;
  expect(result, output.slice(-5_000)).toBeDefined();
  expect(result?.violations, output.slice(-5_000)).toEqual([]);
  expect(result?.ok).toBe(true);
  expect(code).toBe(0);
  expect(result?.seed).toBe(SEED);
  expect(result?.lost).toBe(0);
  expect(result?.doubleApplications).toBe(0);
  expect(result?.tokensLeftInFlight).toBe(0);
  expect(result?.appliedPerHop).toEqual(result?.expectedPerHop);
  expect(result?.deadLettered.signals).toBe(result?.poison);
  expect(result?.faultsTotal).toBeGreaterThan(5);
}

/**
 * A short fixed-seed soak of the whole four-hop conversation (HTTP → AMQP → AMQP → HTTP, several worker
 * processes per hop) under kills, crash points, duplicated sends, closed broker connections, a fault proxy and
 * poison messages: every logical signal applied exactly once per hop, nothing lost, poison dead-lettered.
 * On PostgreSQL the hops count their applications in the application's own table (`ctx.tx`, in the token's
 * transaction) while the store's connections are reset, blackholed, delayed and terminated.
 */
describe('soak (short, fixed seed)', () => {
  let dynamo: DynamoDbLocal | undefined;

  beforeAll(async () => {
    dynamo = await startDynamoDbLocal();
  });

  afterAll(async () => {
    await dynamo?.stop();
  });

  it('SQLite: zero violations', async () => {
    expectClean(await soak(['--store', 'sqlite', '--signals', '150', '--duration', '25', '--seed', SEED]));
  });

  // With the status index in shards: relay claims, sweeps and the final listing read across them under faults.
  it('DynamoDB Local, status index in 4 shards: zero violations', async () => {
    const endpoint = dynamo?.endpoint ?? '';
    expectClean(
      await soak([
        '--store',
        'dynamodb',
        '--dynamodb-endpoint',
        endpoint,
        '--status-shards',
        '4',
        '--signals',
        '120',
        '--duration',
        '25',
        '--seed',
        SEED,
      ]),
    );
  });

  // The harness makes (and drops) a schema of its own for the store and one for the application's table.
  it('PostgreSQL, own table through ctx.tx: zero violations', async () => {
    const run = await soak([
      '--store',
      'postgres',
      '--postgres-url',
      POSTGRES_TEST_URL,
      '--signals',
      '150',
      '--duration',
      '25',
      '--seed',
      SEED,
    ]);
    expectClean(run);
    // The PostgreSQL faults did happen, and the workers' pools recovered from the lost connections: no worker
    // died of them (startup failures, while a reset lasts, are restarted and allowed).
    expect(Object.keys(run.result?.faults ?? {}).some((kind) => kind.startsWith('postgres-proxy:'))).toBe(
      true,
    );
    expect(run.result?.workers.exitedOnTheirOwn).toEqual([]);
  });
});
