import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { newConversationId, newTokenId } from '../../src/core/ids.js';
import { pendingToken } from '../../src/core/mint.js';
import { processSignal } from '../../src/core/processor.js';
import type { TokenStore } from '../../src/core/store.js';
import type { Destination, TokenRecord, TokenStatus } from '../../src/core/token.js';
import { ENV } from '../../src/gateway/config/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** One key per scope, and one the gateway does not know. */
export const KEYS = {
  read: 'console-read-key-0123456789',
  mint: 'console-mint-key-0123456789',
  admin: 'console-admin-key-0123456789',
  wrong: 'console-wrong-key-0123456789',
} as const;

export interface GatewayProcess {
  process: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  url: string;
  /** Everything the process wrote, stdout then stderr. */
  output(): string;
}

/** Every line every gateway of this test file wrote (the key-leak check reads them all, restarts included). */
export const gatewayOutput: string[] = [];

/**
 * Starts the gateway as `npm start` does (src/gateway/main.ts under tsx) with the console's keys, on the given
 * port and SQLite file, and waits for its "gateway listening" line.
 */
export async function startGatewayProcess(options: {
  port: number;
  sqlitePath: string;
  amqpUrl: string;
  env?: Record<string, string>;
}): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/gateway/main.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      [ENV.host]: '127.0.0.1',
      [ENV.port]: String(options.port),
      [ENV.sqlitePath]: options.sqlitePath,
      [ENV.amqpUrl]: options.amqpUrl,
      [ENV.apiKeysRead]: KEYS.read,
      [ENV.apiKeysMint]: KEYS.mint,
      [ENV.apiKeysAdmin]: KEYS.admin,
      // Debug: the most the gateway ever logs about a request, so a leaked key would show.
      [ENV.logLevel]: 'debug',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      gatewayOutput.push(stdout, stderr);
      resolve({ code, signal });
    }),
  );
  const output = () => `${stdout}\n${stderr}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const listening = stdout
      .split('\n')
      .map((line) => (line.startsWith('{') ? (JSON.parse(line) as { msg?: string; url?: string }) : {}))
      .find((line) => line.msg === 'gateway listening');
    if (listening?.url) return { process: child, exited, url: listening.url, output };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the gateway did not start:\n${output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Stops a gateway with SIGTERM and waits for it to exit. */
export async function stopGateway(gateway: Pick<GatewayProcess, 'process' | 'exited'>): Promise<void> {
  if (gateway.process.exitCode === null && gateway.process.signalCode === null)
    gateway.process.kill('SIGTERM');
  await gateway.exited;
}

const CONSOLE_INPUTS = ['console', 'scripts/build-console.ts', 'src/core/id-pattern.ts', 'src/core/ids.ts'];
const BUILT = join(ROOT, 'dist/console/index.html');

function newestInput(path: string): number {
  const absolute = join(ROOT, path);
  if (!existsSync(absolute)) return 0;
  const stat = statSync(absolute);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of readdirSync(absolute, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || entry.parentPath.includes('node_modules')) continue;
    newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** Builds the console (scripts/build-console.ts) when dist/console is missing or older than its sources. */
export async function ensureConsoleBuilt(): Promise<void> {
  const inputs = Math.max(...CONSOLE_INPUTS.map(newestInput));
  if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= inputs) return;
  await run(process.execPath, ['--import', 'tsx', join(ROOT, 'scripts/build-console.ts')], {
    cwd: ROOT,
    timeout: 120_000,
  });
}

/** A small client of the gateway's API, as the tests' independent view of what the page should show. */
export class Api {
  constructor(
    readonly url: string,
    readonly key: string,
  ) {}

  async get<T>(path: string): Promise<T> {
    const res = await fetch(`${this.url}${path}`, { headers: { authorization: `Bearer ${this.key}` } });
    if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    const res = await fetch(`${this.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }

  /** Every token of a status, through all the pages of GET /v1/tokens. */
  async countByStatus(status: TokenStatus): Promise<number> {
    let count = 0;
    let cursor: string | undefined;
    do {
      const query = `status=${status}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const page = await this.get<{ items: unknown[]; cursor?: string }>(`/v1/tokens?${query}`);
      count += page.items.length;
      cursor = page.cursor;
    } while (cursor !== undefined);
    return count;
  }
}

/** The conversation graph as GET /v1/conversations/:id answers it. */
export interface ConversationAnswer {
  id: string;
  nodes: Array<{
    id: string;
    status: TokenStatus;
    parentId?: string;
    entersFrom?: string;
    leavesTo?: string;
  }>;
  edges: Array<{ from: string; to: string }>;
  truncated: boolean;
}

const queue = (routingKey: string): Destination => ({ medium: 'amqp', exchange: '', routingKey });

/**
 * A conversation of three hops run by the real core on the gateway's store: a token issued through the API to a
 * caller from another system (so the conversation enters from that system's token), consumed by `orders`,
 * which emits to `payments` over AMQP, which emits to `shipping` over HTTP, which emits a signal that leaves for
 * another system's issuing endpoint and is still pending. Four tokens, three edges between them.
 */
export async function threeHopConversation(
  store: TokenStore,
  mintApi: Api,
): Promise<{ conversationId: string; tokens: string[]; outsideParent: string; leavesTo: string }> {
  const outsideParent = newTokenId();
  const conversationId = newConversationId();
  const payload = { order: 'o-42', note: 'payload-never-shown' };
  const root = await mintApi.post<{ id: string }>('/v1/tokens', {
    payload,
    conversationId,
    parentId: outsideParent,
  });
  const tokens = [root.id];
  const hops: Array<{ endpoint: string; next: Destination }> = [
    { endpoint: 'orders', next: queue('payments') },
    { endpoint: 'payments', next: { medium: 'http', method: 'POST', url: 'http://shipping.internal/ship' } },
    {
      endpoint: 'shipping',
      next: {
        medium: 'http',
        method: 'POST',
        url: 'http://carrier.example:9090/v1/pickups',
        issuer: { url: 'http://carrier.example:9090/v1/tokens', credential: 'carrier' },
      },
    },
  ];
  let incoming = { id: root.id, payload: payload as Record<string, unknown> };
  for (const [i, hop] of hops.entries()) {
    const nextPayload = { order: 'o-42', step: i + 1 };
    const outcome = await processSignal({
      store,
      endpoint: hop.endpoint,
      tokenId: incoming.id,
      payload: incoming.payload,
      handler: (ctx) => ctx.emit(hop.next, nextPayload),
    });
    if (outcome.kind !== 'processed') throw new Error(`hop ${hop.endpoint}: ${outcome.kind}`);
    const emitted = outcome.result;
    tokens.push(emitted);
    // The first two signals were sent (a relay would mark them so); the last one waits for the relay.
    if (i < hops.length - 1) await store.markDispatched([emitted], Date.now());
    incoming = { id: emitted, payload: nextPayload };
  }
  return { conversationId, tokens, outsideParent, leavesTo: 'http://carrier.example:9090' };
}

/**
 * A conversation of `size` tokens minted straight into the store: a tree (each token's parent an earlier one, up
 * to four children each), most consumed, the leaves' last quarter still pending.
 */
export async function wideConversation(store: TokenStore, size: number): Promise<string> {
  const conversationId = newConversationId();
  const start = Date.now() - 60_000;
  const tokens: TokenRecord[] = [];
  for (let i = 0; i < size; i++) {
    const parent = i === 0 ? undefined : tokens[Math.floor((i - 1) / 4)];
    const token = pendingToken(
      { destination: queue(`step-${i % 7}`), payload: { i } },
      {
        mintedBy: `service-${i % 5}`,
        conversationId,
        now: start + i * 10,
        ...(parent ? { parentId: parent.id } : {}),
      },
    );
    if (i < (size * 3) / 4) {
      token.status = 'consumed';
      token.consumedAt = token.mintedAt + 5 + (i % 40);
      token.consumedBy = `service-${(i + 1) % 5}`;
      token.dispatchedAt = token.mintedAt + 1;
    }
    tokens.push(token);
  }
  await store.mint(tokens);
  return conversationId;
}

/** Shares of the seeded statuses, in tenths. */
const SEED_MIX: ReadonlyArray<[TokenStatus, number]> = [
  ['pending', 4],
  ['issued', 1.5],
  ['expired', 1.5],
  ['revoked', 1],
  ['dispatched', 1],
  ['consumed', 1],
];

/**
 * `count` tokens minted into the store in one transaction (SqliteTokenStore.mint: one prepared insert per token),
 * spread over the last `spanMs`, oldest first, in conversations of `perConversation` tokens; the statuses mixed
 * as SEED_MIX says. Pending tokens go to AMQP queues: a gateway without a broker never sends them.
 */
export async function seedTokens(
  store: TokenStore,
  count: number,
  options: { spanMs: number; perConversation: number },
): Promise<{ byStatus: Record<string, number>; conversations: string[] }> {
  const now = Date.now();
  const start = now - options.spanMs;
  const step = options.spanMs / count;
  const statuses: TokenStatus[] = [];
  for (const [status, tenths] of SEED_MIX) for (let i = 0; i < tenths * 2; i++) statuses.push(status);
  const byStatus: Record<string, number> = {};
  const conversations: string[] = [];
  const tokens: TokenRecord[] = new Array(count);
  let conversationId = '';
  for (let i = 0; i < count; i++) {
    if (i % options.perConversation === 0) {
      conversationId = newConversationId();
      conversations.push(conversationId);
    }
    const status = statuses[i % statuses.length] as TokenStatus;
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    const mintedAt = Math.floor(start + i * step);
    const token: TokenRecord = {
      id: newTokenId(),
      conversationId,
      mintedBy: 'seed',
      destination: queue(`seed-${i % 13}`),
      status,
      mintedAt,
      attempts: status === 'pending' ? 1 + (i % 3) : 0,
    };
    if (status === 'issued') token.expiresAt = now + 86_400_000;
    if (status === 'expired') token.expiresAt = mintedAt + 60_000;
    if (status === 'dispatched' || status === 'consumed') token.dispatchedAt = mintedAt + 3;
    if (status === 'consumed') {
      token.consumedAt = mintedAt + 20;
      token.consumedBy = 'seed-consumer';
    }
    tokens[i] = token;
  }
  await store.mint(tokens);
  return { byStatus, conversations };
}
