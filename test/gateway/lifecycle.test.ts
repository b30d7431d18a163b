import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Channel, type ChannelModel, connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newTokenId } from '../../src/core/ids.js';
import { ENV } from '../../src/gateway/config/index.js';
import { AmqpHeaders, deadLetterNames, declareConsumerQueue } from '../../src/transports/amqp/index.js';
import { AMQP_URL } from '../support/rabbitmq.js';
import { scratchDir } from './support.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'src/gateway/main.ts');

interface Child {
  process: ChildProcess;
  lines: Array<Record<string, unknown>>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs the real process entry, as `npm start` does, with the given environment. */
function startMain(env: Record<string, string>): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let newline = buffer.indexOf('\n');
    while (newline >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      try {
        lines.push(JSON.parse(line));
      } catch {
        lines.push({ raw: line });
      }
      newline = buffer.indexOf('\n');
    }
  });
  child.stderr?.on('data', () => undefined);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { process: child, lines, exit };
}

async function listening(child: Child, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = child.lines.find((l) => l.msg === 'gateway listening');
    if (line) return String(line.url);
    if (child.process.exitCode !== null)
      throw new Error(`gateway exited early: ${JSON.stringify(child.lines)}`);
    if (Date.now() > deadline) throw new Error('gateway did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
}

let model: ChannelModel;
let probe: Channel;
beforeAll(async () => {
  model = await connect(AMQP_URL);
  probe = await model.createChannel();
});
afterAll(async () => {
  await model.close();
});

describe('gateway process (main.ts)', () => {
  it('exits 1 with a log naming the bad setting when the configuration is invalid', async () => {
    const child = startMain({ [ENV.port]: 'eighty', [ENV.sqlitePath]: join(scratchDir(), 'bad.db') });
    const { code } = await child.exit;
    expect(code).toBe(1);
    const fatal = child.lines.find((l) => l.level === 60);
    expect(fatal).toMatchObject({ code: 'TOLLGATE_ERR_CONFIG_INVALID', setting: ENV.port });
    expect(String(fatal?.msg)).toContain('TOLLGATE_PORT');
  });

  it('exits 1 naming a misspelled TOLLGATE_* variable instead of ignoring it', async () => {
    const misspelled = ENV.relayDelayMs.replace(/_MS$/, ''); // the unit left off
    const child = startMain({
      [ENV.port]: '0',
      [ENV.sqlitePath]: join(scratchDir(), 'misspelled.db'),
      [misspelled]: '500',
    });
    const { code } = await child.exit;
    expect(code).toBe(1);
    const fatal = child.lines.find((l) => l.level === 60);
    expect(fatal).toMatchObject({ code: 'TOLLGATE_ERR_CONFIG_INVALID' });
    expect(String(fatal?.msg)).toContain(`${misspelled}:`);
    expect(String(fatal?.msg)).toContain(ENV.relayDelayMs);
  });

  it('answers problems under the base set by TOLLGATE_PROBLEM_BASE', async () => {
    const base = 'https://docs.example.com/tollgate/problems/';
    const child = startMain({
      [ENV.port]: '0',
      [ENV.sqlitePath]: join(scratchDir(), `problems-${newTokenId()}.db`),
      [ENV.amqpUrl]: 'off',
      [ENV.problemBase]: base,
    });
    try {
      const url = await listening(child);
      const res = await fetch(`${url}/v1/tokens/${newTokenId()}`);
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({
        type: `${base}token-not-found`,
        status: 404,
        code: 'TOLLGATE_ERR_TOKEN_NOT_FOUND',
      });
    } finally {
      child.process.kill('SIGTERM');
      await child.exit;
    }
  });

  it('exits 1 with a clear log when the store cannot be opened', async () => {
    // A store path under a regular file cannot be created.
    const blocker = join(scratchDir(), `blocker-${newTokenId()}`);
    writeFileSync(blocker, 'not a folder');
    const child = startMain({ [ENV.port]: '0', [ENV.sqlitePath]: join(blocker, 'x.db') });
    const { code } = await child.exit;
    expect(code).toBe(1);
    expect(child.lines.find((l) => l.level === 60)?.msg).toMatch(/^gateway failed to start/);
  });

  it('loses nothing when SIGTERM arrives during ingress load, and exits 0 within the bound', async () => {
    const suffix = newTokenId()
      .replace(/[^A-Za-z0-9]/g, '')
      .slice(0, 10);
    const exchange = `tg-gw.term.${suffix}`;
    const queue = `tg-gw.term-q.${suffix}`;
    await declareConsumerQueue(probe, queue, { bindings: [{ exchange, routingKey: 'load' }] });
    const child = startMain({
      [ENV.port]: '0',
      [ENV.sqlitePath]: join(scratchDir(), `term-${suffix}.db`),
      [ENV.amqpUrl]: AMQP_URL,
      [ENV.bridges]: JSON.stringify({ ingress: [{ route: 'load', exchange, routingKey: 'load' }] }),
      [ENV.shutdownTimeoutMs]: '10000',
      [ENV.logLevel]: 'info',
    });
    try {
      const url = await listening(child);
      const tokens: string[] = [];
      for (let i = 0; i < 400; i++) {
        const res = await fetch(`${url}/v1/tokens`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ payload: { n: i } }),
        });
        tokens.push(((await res.json()) as { id: string }).id);
      }

      const accepted = new Set<string>();
      let failed = 0;
      let answered = 0;
      let sigtermAt = 0;
      let next = 0;
      const worker = async () => {
        while (next < tokens.length) {
          const i = next++;
          const id = tokens[i] as string;
          try {
            const res = await fetch(`${url}/v1/signals/load`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'exactly-once-token': id },
              body: JSON.stringify({ n: i }),
            });
            if (res.status === 202) accepted.add(id);
            else failed += 1;
            await res.arrayBuffer();
          } catch {
            failed += 1; // refused or reset: the caller would retry with the same token
          }
          answered += 1;
          if (answered === 150 && sigtermAt === 0) {
            sigtermAt = Date.now();
            child.process.kill('SIGTERM');
          }
        }
      };
      await Promise.all(Array.from({ length: 16 }, worker));
      const { code } = await child.exit;
      const stopMs = Date.now() - sigtermAt;
      expect(code).toBe(0);
      expect(stopMs).toBeLessThan(10_000);
      expect(child.lines.some((l) => l.msg === 'stopped cleanly')).toBe(true);
      expect(accepted.size).toBeGreaterThanOrEqual(150);
      expect(accepted.size + failed).toBe(tokens.length);
      expect(failed).toBeGreaterThan(0); // SIGTERM really landed mid-load

      // Every 202 is a confirmed message in the queue.
      const queued = new Set<string>();
      for (;;) {
        const message = await probe.get(queue, { noAck: true });
        if (message === false) break;
        queued.add(String(message.properties.headers?.[AmqpHeaders.token]));
      }
      const lost = [...accepted].filter((id) => !queued.has(id));
      expect(lost).toEqual([]);
    } finally {
      if (child.process.exitCode === null) child.process.kill('SIGKILL');
      await probe.deleteQueue(queue).catch(() => undefined);
      await probe.deleteQueue(deadLetterNames(queue).queue).catch(() => undefined);
      await probe.deleteExchange(deadLetterNames(queue).exchange).catch(() => undefined);
      await probe.deleteExchange(exchange).catch(() => undefined);
    }
  });
});
