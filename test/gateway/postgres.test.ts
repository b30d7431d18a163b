import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCodes, isTollgateError, type TollgateError } from '../../src/core/errors.js';
import { configSecrets, ENV, type Env, loadConfig } from '../../src/gateway/config/index.js';
import { createLogger } from '../../src/gateway/logging.js';
import { startGateway } from '../../src/gateway/runtime.js';
import { LogCapture } from './support.js';

/**
 * The gateway on the PostgreSQL store: settings, start-up failures with their codes, and credentials kept out of
 * every log line. Uses the local PostgreSQL (trust authentication, so any password is accepted: the URLs carry a
 * unique one that each test then looks for in the output).
 */
const PG_HOST = process.env.TOLLGATE_TEST_PG_HOST ?? '127.0.0.1';
const PG_PORT = process.env.TOLLGATE_TEST_PG_PORT ?? '5432';
const PG_DB = process.env.TOLLGATE_TEST_PG_DB ?? 'test';
const PG_USER = process.env.TOLLGATE_TEST_PG_USER ?? 'postgres';
const ADMIN_URL = `postgres://${PG_USER}@${PG_HOST}:${PG_PORT}/${PG_DB}`;

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'src/gateway/main.ts');

const unique = () => randomBytes(6).toString('hex');
/** A password that appears nowhere else, so finding it in output can only be a leak. */
const password = () => `pw-${unique()}-S3cret`;
const urlWith = (secret: string, host = `${PG_HOST}:${PG_PORT}`) =>
  `postgres://${PG_USER}:${secret}@${host}/${PG_DB}`;

function postgresEnv(url: string, extra: Env = {}): Record<string, string> {
  const env: Record<string, string> = {
    [ENV.store]: 'postgres',
    [ENV.postgresUrl]: url,
    [ENV.host]: '127.0.0.1',
    [ENV.port]: '0',
    [ENV.amqpUrl]: 'off',
    [ENV.logLevel]: 'info',
    [ENV.shutdownTimeoutMs]: '5000',
  };
  for (const [key, value] of Object.entries(extra)) if (value !== undefined) env[key] = value;
  return env;
}

const schemasToDrop: string[] = [];
afterAll(async () => {
  if (schemasToDrop.length === 0) return;
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    for (const schema of schemasToDrop) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
});

async function schemaExists(schema: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    const result = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    return result.rowCount === 1;
  } finally {
    await client.end();
  }
}

async function startFailure(env: Env, logs: LogCapture): Promise<TollgateError> {
  const config = loadConfig(env);
  try {
    const gateway = await startGateway(config, createLogger('info', logs));
    await gateway.stop();
  } catch (error) {
    if (isTollgateError(error)) return error;
    throw error;
  }
  throw new Error('expected the start to fail');
}

interface MainRun {
  code: number | null;
  stdout: string;
  stderr: string;
  lines: Array<Record<string, unknown>>;
}

/** Runs the real process entry, as `npm start` does, until it exits by itself. */
function runMain(env: Record<string, string>, timeoutMs = 30_000): Promise<MainRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
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
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway did not exit within ${timeoutMs} ms: ${stdout} ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const lines = stdout
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => {
          try {
            return JSON.parse(line) as Record<string, unknown>;
          } catch {
            return { raw: line };
          }
        });
      resolve({ code, stdout, stderr, lines });
    });
  });
}

describe('gateway on PostgreSQL: configuration', () => {
  it.each([
    ['not a url at all'],
    ['mysql://postgres:SECRET@127.0.0.1:5432/test'],
    ['postgres://postgres:SECRET@127.0.0.1:5432'],
    ['postgres://postgres:SECRET@:5432/test'],
  ])('refuses %s with TOLLGATE_ERR_CONFIG_INVALID naming the variable', (template) => {
    const secret = password();
    let error: unknown;
    try {
      loadConfig(postgresEnv(template.replace('SECRET', secret)));
    } catch (caught) {
      error = caught;
    }
    expect(isTollgateError(error)).toBe(true);
    const refusal = error as TollgateError;
    expect(refusal.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(refusal.details.setting).toBe(ENV.postgresUrl);
    expect(refusal.message).toContain(ENV.postgresUrl);
    expect(`${refusal.message}${JSON.stringify(refusal.details)}${refusal.stack}`).not.toContain(secret);
  });

  it('masks configured passwords in every log line, whoever logs them', () => {
    const secret = password();
    const config = loadConfig(postgresEnv(urlWith(secret)));
    const logs = new LogCapture();
    const logger = createLogger('info', logs, configSecrets(config));
    logger.error(
      { err: new Error(`could not connect to ${urlWith(secret)}`), url: urlWith(secret) },
      `failed: ${secret}`,
    );
    expect(logs.lines).toHaveLength(1);
    expect(logs.text).not.toContain(secret);
    expect(logs.lines[0]?.msg).toBe('failed: ***');
    expect(logs.lines[0]?.url).toBe(urlWith('***'));
  });

  it('refuses a malformed URL at `npm start`: exit 1, one log line with the code, no password', async () => {
    const secret = password();
    const run = await runMain(postgresEnv(`postgres://postgres:${secret}@127.0.0.1:5432`));
    expect(run.code).toBe(1);
    expect(run.lines).toHaveLength(1);
    expect(run.lines[0]).toMatchObject({
      level: 60,
      code: ErrorCodes.CONFIG_INVALID,
      setting: ENV.postgresUrl,
    });
    expect(String(run.lines[0]?.msg)).toMatch(/^invalid configuration: .*TOLLGATE_POSTGRES_URL/);
    expect(run.stdout + run.stderr).not.toContain(secret);
  });
});

describe('gateway on PostgreSQL: start', () => {
  it('starts on a fresh schema it creates, issues a token through the API and reports ready', async () => {
    const schema = `tg_gw_${unique()}`;
    schemasToDrop.push(schema);
    const secret = password();
    const config = loadConfig(
      postgresEnv(urlWith(secret), {
        [ENV.postgresSchema]: schema,
        [ENV.postgresCreateTables]: 'true',
        [ENV.postgresPoolSize]: '3',
      }),
    );
    expect(config.store).toMatchObject({ kind: 'postgres', schema, poolSize: 3, createTables: true });
    // No secrets given to the logger: the gateway's own lines must be clean by themselves.
    const logs = new LogCapture();
    const gateway = await startGateway(config, createLogger('info', logs));
    try {
      expect(gateway.store.kind).toBe('postgres');
      expect(await schemaExists(schema)).toBe(true);

      const issued = await fetch(`${gateway.url}/v1/tokens`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ payload: { order: 42 } }),
      });
      expect(issued.status).toBe(201);
      const token = (await issued.json()) as { id: string; status: string };
      expect(token.status).toBe('issued');
      const read = await fetch(`${gateway.url}/v1/tokens/${encodeURIComponent(token.id)}`);
      expect(read.status).toBe(200);
      expect(((await read.json()) as { id: string }).id).toBe(token.id);
      expect(await gateway.store.getToken(token.id)).toMatchObject({ id: token.id, status: 'issued' });

      const ready = await fetch(`${gateway.url}/health/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ok', checks: { store: 'ok' } });

      const opened = logs.lines.find((line) => line.msg === 'store open');
      expect(opened?.store).toEqual({
        kind: 'postgres',
        url: urlWith('***'),
        schema,
        poolSize: 3,
        createTables: true,
      });
    } finally {
      await gateway.stop();
    }
    expect(logs.text).not.toContain(secret);
  });

  it('stops the start with TOLLGATE_ERR_STORE_UNAVAILABLE when the server cannot be reached', async () => {
    const secret = password();
    const logs = new LogCapture();
    const error = await startFailure(postgresEnv(urlWith(secret, '127.0.0.1:1')), logs);
    expect(error.code).toBe(ErrorCodes.STORE_UNAVAILABLE);
    expect(`${error.message}${JSON.stringify(error.details)}`).not.toContain(secret);
    expect(logs.text).not.toContain(secret);
  });

  it('stops the start with TOLLGATE_ERR_STORE_SCHEMA_MISSING when the schema is absent and not to be created', async () => {
    const schema = `tg_gw_missing_${unique()}`;
    const secret = password();
    const logs = new LogCapture();
    const error = await startFailure(postgresEnv(urlWith(secret), { [ENV.postgresSchema]: schema }), logs);
    expect(error.code).toBe(ErrorCodes.STORE_SCHEMA_MISSING);
    // The message says what to do about it.
    expect(error.message).toMatch(/001_tollgate\.sql|createTables|CREATE_TABLES/i);
    expect(await schemaExists(schema)).toBe(false);
    expect(logs.text).not.toContain(secret);
  });

  it.each([
    [
      'an unreachable server',
      (secret: string) => postgresEnv(urlWith(secret, '127.0.0.1:1')),
      ErrorCodes.STORE_UNAVAILABLE,
    ],
    [
      'a missing schema',
      (secret: string) => postgresEnv(urlWith(secret), { [ENV.postgresSchema]: `tg_gw_missing_${unique()}` }),
      ErrorCodes.STORE_SCHEMA_MISSING,
    ],
  ])(
    '`npm start` on %s exits 1 with one fatal line carrying the code, no password',
    async (_what, env, code) => {
      const secret = password();
      const run = await runMain(env(secret));
      expect(run.code).toBe(1);
      const fatal = run.lines.filter((line) => line.level === 60);
      expect(fatal).toHaveLength(1);
      // The Tollgate code, not a driver's (ECONNREFUSED stays in err.details), and which store it was opening.
      expect(fatal[0]).toMatchObject({
        code,
        store: { kind: 'postgres', url: expect.stringContaining(':***@') },
      });
      if (code === ErrorCodes.STORE_SCHEMA_MISSING)
        expect(String(fatal[0]?.hint)).toContain(ENV.postgresCreateTables);
      expect(String(fatal[0]?.msg)).toMatch(/^gateway failed to start: /);
      expect(String(fatal[0]?.msg)).not.toContain('\n');
      expect(run.stdout + run.stderr).not.toContain(secret);
    },
  );
});
