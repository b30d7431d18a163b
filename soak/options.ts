import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { rabbitmqctl } from './processes.js';
import { ROLES, type Role } from './shared.js';

/* The soak's command line, the settings drawn from it, and the run's names (its folder, vhost, queues). */

export const { values: args } = parseArgs({
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
export const storeKind =
  STORE_KINDS.find((kind) => kind === args.store) ??
  fail(`--store must be sqlite, dynamodb or postgres, not ${args.store}`);
export const SIGNALS = positiveInt('signals');
export const DURATION_MS = Number(args.duration) * 1000;
export const SEED = args.seed ?? randomBytes(4).toString('hex');
export const POISON_RATE = Number(args['poison-rate']);
export const FAULT_INTERVAL_MS = Number(args['fault-interval']);
export const QUIESCE_TIMEOUT_MS = Number(args['quiesce-timeout']) * 1000;
export const CONCURRENCY = positiveInt('concurrency');
export const STATUS_SHARDS = positiveInt('status-shards');
if (STATUS_SHARDS > 1 && storeKind !== 'dynamodb') fail('--status-shards applies to --store dynamodb only');
export const MAX_BACKLOG = positiveInt('max-backlog');
export const BROKER_RESTARTS = args['broker-restarts'] === true;
export const WORKER_COUNTS = parseWorkers(args.workers ?? '');
if (args.bug !== undefined && args.bug !== 'fresh-token') fail(`unknown --bug ${args.bug}`);
export const AMQP_BASE = new URL(args['amqp-url'] ?? '');
export const POSTGRES_URL = args['postgres-url'] ?? '';
/** PostgreSQL: connections per worker process (8 workers share the server's max_connections with the harness). */
export const POSTGRES_WORKER_POOL = 5;
export const NODE_ARGS = args['rabbitmq-node'] ? ['-n', args['rabbitmq-node']] : [];
export const ctl = (commandArgs: readonly string[], timeoutMs?: number) =>
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

export function fail(message: string): never {
  process.stderr.write(`soak: ${message}\n`);
  process.exit(2);
}

export const log = (message: string): void => {
  process.stderr.write(`[soak ${SEED}] ${message}\n`);
};

// ---------------------------------------------------------------------------------------------- the run's names

export const runId = `${SEED.replace(/[^A-Za-z0-9]/g, '').slice(0, 16)}${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
export const runDir = join(tmpdir(), 'tollgate-soak', runId);
export const vhost = `tollgate-soak-${runId}`;
/** PostgreSQL: the workers' connections carry this application_name (the terminate-backends fault ends them). */
export const pgWorkerApplication = `tollgate-soak-${runId}`.slice(0, 63);
export const queues = { hop2: `soak.${runId}.hop2`, hop3: `soak.${runId}.hop3` };

/** The command line again, with the seed (drawn at random if it was not given). */
export function replayArgs(): string {
  const given = process.argv.slice(2);
  return (args.seed === undefined ? [...given, '--seed', SEED] : given).join(' ');
}

/** The commit the workers ran (with `+changes` when the tree differs from it), so a report names its code. */
export function sourceCommit(): string {
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

export function amqpUrl(hostAndPort: string): string {
  const auth = `${encodeURIComponent(decodeURIComponent(AMQP_BASE.username || 'guest'))}:${encodeURIComponent(decodeURIComponent(AMQP_BASE.password || 'guest'))}`;
  return `amqp://${auth}@${hostAndPort}/${encodeURIComponent(vhost)}`;
}
