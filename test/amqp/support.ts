import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Channel, type ChannelModel, connect, type GetMessage } from 'amqplib';
import { newTokenId } from '../../src/core/ids.js';
import type { RelayStats } from '../../src/core/relay.js';
import type { TokenStore } from '../../src/core/store.js';
import type { TokenStatus } from '../../src/core/token.js';
import type { StoreConfig } from '../../src/stores/open.js';
import type { ConsumerStats } from '../../src/transports/amqp/consumer.js';
import { deadLetterNames } from '../../src/transports/amqp/topology.js';
import { AMQP_URL } from '../support/rabbitmq.js';

export { AMQP_URL };

/** A name no other test (or concurrent test run) uses. */
export function uniqueName(prefix: string): string {
  return `tg-test.${prefix}.${newTokenId()
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, 10)}`;
}

/** Polls until `check` returns true; fails with `what` and the last observed value after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  {
    timeoutMs = 30_000,
    intervalMs = 50,
    describe,
  }: { timeoutMs?: number; intervalMs?: number; describe?: () => Promise<unknown> | unknown } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) {
      const state = describe ? JSON.stringify(await describe()) : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${state}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export async function stateNumber(store: TokenStore, key: string): Promise<number> {
  const item = await store.readState(key);
  return typeof item?.value === 'number' ? item.value : 0;
}

export async function statusesOf(store: TokenStore, ids: readonly string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const id of ids) {
    const status: TokenStatus | 'absent' = (await store.getToken(id))?.status ?? 'absent';
    counts[status] = (counts[status] ?? 0) + 1;
  }
  return counts;
}

/** All tokens the store knows with a status, across pages. */
export async function tokensWithStatus(store: TokenStore, status: TokenStatus): Promise<number> {
  let total = 0;
  let cursor: string | undefined;
  do {
    const page = await store.listByStatus(status, { limit: 500, ...(cursor ? { cursor } : {}) });
    total += page.items.length;
    cursor = page.cursor;
  } while (cursor);
  return total;
}

/** A plain amqplib connection for arranging and inspecting the broker from tests. */
export class BrokerProbe {
  private constructor(
    private readonly model: ChannelModel,
    readonly channel: Channel,
  ) {}

  static async open(url = AMQP_URL): Promise<BrokerProbe> {
    const model = await connect(url);
    model.on('error', () => undefined);
    const channel = await model.createChannel();
    channel.on('error', () => undefined);
    return new BrokerProbe(model, channel);
  }

  async messageCount(queue: string): Promise<number> {
    return (await this.channel.checkQueue(queue)).messageCount;
  }

  /** Takes every ready message off a queue (acking them). */
  async drain(queue: string): Promise<GetMessage[]> {
    const messages: GetMessage[] = [];
    for (;;) {
      const message = await this.channel.get(queue, { noAck: true });
      if (message === false) return messages;
      messages.push(message);
    }
  }

  /** Deletes queues with their dead-letter queue and exchange, and the given exchanges. */
  async cleanUp(queues: readonly string[], exchanges: readonly string[] = []): Promise<void> {
    for (const queue of queues) {
      const dead = deadLetterNames(queue);
      await this.channel.deleteQueue(queue).catch(() => undefined);
      await this.channel.deleteQueue(dead.queue).catch(() => undefined);
      await this.channel.deleteExchange(dead.exchange).catch(() => undefined);
    }
    for (const exchange of exchanges) await this.channel.deleteExchange(exchange).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.model.close().catch(() => undefined);
  }
}

export interface WorkerSpec {
  storeConfig: StoreConfig;
  url?: string;
  queue: string;
  downstreamQueue: string;
  crashAt?: string;
  crashAfter?: number;
  relayDelayMs?: number;
}

export interface RunningWorker {
  child: ChildProcess;
  /** Resolves when the worker said it is consuming. */
  ready: Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  /** The stats a worker prints when it stops on SIGTERM. */
  stats(): WorkerStats | undefined;
}

export interface WorkerStats {
  orders: ConsumerStats;
  relay?: RelayStats;
}

const WORKER = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));

/** Starts `fixtures/worker.ts` in a real child process (so SIGKILL is a real crash). */
export function startWorker(spec: WorkerSpec): RunningWorker {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TOLLGATE_WORKER_SPEC: JSON.stringify({ ...spec, url: spec.url ?? AMQP_URL }),
  };
  delete env.TOLLGATE_CRASH_AT;
  delete env.TOLLGATE_CRASH_AFTER;
  if (spec.crashAt) env.TOLLGATE_CRASH_AT = spec.crashAt;
  if (spec.crashAfter) env.TOLLGATE_CRASH_AFTER = String(spec.crashAfter);
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  const collect = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.includes('WORKER READY')) markReady();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  const stats = () => {
    const line = output.split('\n').find((text) => text.startsWith('WORKER STATS '));
    return line ? (JSON.parse(line.slice('WORKER STATS '.length)) as WorkerStats) : undefined;
  };
  return { child, ready, exited, output: () => output, stats };
}
