import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import type { SignalSender } from '../../src/core/dispatcher.js';
import type { TokenStore } from '../../src/core/store.js';
import type { TokenRecord } from '../../src/core/token.js';
import { buildGateway, type GatewayDeps } from '../../src/gateway/app.js';
import type { ApiKeysConfig, BridgesConfig } from '../../src/gateway/config/index.js';
import type { Lifecycle, RelayTrigger } from '../../src/gateway/context.js';
import { createLogger } from '../../src/gateway/logging.js';
import { SqliteTokenStore } from '../../src/stores/sqlite/sqlite-store.js';

export const READ_KEY = 'read-key-0123456789abcdef';
export const MINT_KEY = 'mint-key-0123456789abcdef';
export const ADMIN_KEY = 'admin-key-0123456789abcdef';
export const KEYS: ApiKeysConfig = { read: [READ_KEY], mint: [MINT_KEY], admin: [ADMIN_KEY] };

/** Captures log lines so tests can check fields and redaction. */
export class LogCapture extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n'))
      if (line.trim() !== '') this.lines.push(JSON.parse(line));
    done();
  }
  get text(): string {
    return this.lines.map((l) => JSON.stringify(l)).join('\n');
  }
}

/** A publisher that records what it was asked to send (API tests that need no broker). */
export class RecordingPublisher implements SignalSender {
  readonly medium = 'amqp' as const;
  readonly sent: TokenRecord[] = [];
  fail = false;
  async send(token: TokenRecord): Promise<void> {
    if (this.fail) throw new Error('broker said no');
    this.sent.push(token);
  }
}

export interface TestGateway {
  app: FastifyInstance;
  store: TokenStore;
  registry: Registry;
  logs: LogCapture;
  lifecycle: Lifecycle;
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  apiKeys?: ApiKeysConfig;
  bridges?: BridgesConfig;
  publisher?: SignalSender | null;
  relay?: RelayTrigger | null;
  broker?: GatewayDeps['broker'];
  store?: TokenStore;
  clock?: () => number;
  bodyLimitBytes?: number;
}

let scratch: string | undefined;
/** A fresh SQLite store in its own file (real store, no mocks). */
export function sqliteStore(): SqliteTokenStore {
  scratch ??= mkdtempSync(join(tmpdir(), 'tollgate-gw-'));
  return new SqliteTokenStore({
    filename: join(scratch, `${process.pid}-${Math.random().toString(36).slice(2)}.db`),
  });
}

export function scratchDir(): string {
  scratch ??= mkdtempSync(join(tmpdir(), 'tollgate-gw-'));
  return scratch;
}

export async function testGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const store = options.store ?? sqliteStore();
  const registry = new Registry();
  const logs = new LogCapture();
  const lifecycle: Lifecycle = { draining: false };
  const deps: GatewayDeps = {
    store,
    publisher: options.publisher === undefined ? new RecordingPublisher() : options.publisher,
    registry,
    logger: createLogger('info', logs),
    lifecycle,
    relay: options.relay ?? null,
    broker: options.broker ?? null,
    config: {
      apiKeys: options.apiKeys ?? { read: [], mint: [], admin: [] },
      bridges: options.bridges ?? { ingress: [], egress: [] },
      bodyLimitBytes: options.bodyLimitBytes ?? 64 * 1024,
      defaultTokenTtlMs: 60 * 60 * 1000,
    },
  };
  if (options.clock) deps.clock = options.clock;
  const app = buildGateway(deps);
  await app.ready();
  return {
    app,
    store,
    registry,
    logs,
    lifecycle,
    close: async () => {
      await app.close();
      await store.close();
    },
  };
}

/** Value of one sample of a metric, 0 when absent. */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const data = await metric.get();
  const sample = data.values.find((v) =>
    Object.entries(labels).every(([k, value]) => (v.labels as Record<string, unknown>)[k] === value),
  );
  return sample?.value ?? 0;
}

export function bearer(key: string): Record<string, string> {
  return { authorization: `Bearer ${key}` };
}
