import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { fingerprint, type JsonValue } from '../../src/core/fingerprint.js';
import { pendingToken } from '../../src/core/mint.js';
import type { TokenStore } from '../../src/core/store.js';
import type { TokenRecord } from '../../src/core/token.js';
import { type ProblemKind, problemDetailsSchema, problemType } from '../../src/transports/http/index.js';

const validateProblem = new Ajv({ allErrors: true }).compile(problemDetailsSchema);

export async function listen(app: FastifyInstance): Promise<string> {
  return app.listen({ host: '127.0.0.1', port: 0 });
}

/** Mints a pending root token for an HTTP request, as an edge client would. */
export async function mintFor(store: TokenStore, url: string, payload: JsonValue): Promise<TokenRecord> {
  const token = pendingToken(
    { destination: { medium: 'http', method: 'POST', url }, payload },
    { mintedBy: 'test', now: Date.now() },
  );
  await store.mint([token]);
  return token;
}

export interface Answer {
  status: number;
  headers: Headers;
  body: string;
  json: unknown;
}

export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, body: text, json };
}

/** Checks an error answer: status, content type, a body valid against the published schema, and its type. */
export function expectProblem(answer: Answer, status: number, kind: ProblemKind): void {
  expect(answer.status).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const valid = validateProblem(answer.json);
  expect(validateProblem.errors ?? [], JSON.stringify(answer.json)).toEqual([]);
  expect(valid).toBe(true);
  expect(answer.json).toMatchObject({ type: problemType(kind), status });
}

export function tokenHeader(id: string): Record<string, string> {
  return { 'exactly-once-token': id };
}

export { stablePort } from '../support/free-port.js';
export { fingerprint };

const TSX_ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Child {
  process: ChildProcess;
  /** Resolves with the first stdout line matching `pattern`. */
  line(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** Runs a fixture script in its own Node process (with tsx), as a real separate system. */
export function runFixture(script: string, env: Record<string, string>): Child {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL(`fixtures/${script}`, import.meta.url))],
    {
      cwd: TSX_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const wake of waiters.splice(0)) wake();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      for (const wake of waiters.splice(0)) wake();
      resolve({ code, signal });
    });
  });
  return {
    process: child,
    exited,
    output: () => `stdout:\n${stdout}\nstderr:\n${stderr}`,
    async line(pattern, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const match = stdout.match(pattern);
        if (match) return match;
        if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
          throw new Error(`fixture ${script} never printed ${pattern}\n${stdout}\n${stderr}`);
        }
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 200);
        });
      }
    },
  };
}

/** A promise with its resolver (Node 20 has no Promise.withResolvers). */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}
