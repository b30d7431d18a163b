import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, TollgateError } from '../../src/core/errors.js';
import {
  CONFIG_FILE,
  configSecrets,
  DEFAULTS,
  describeStore,
  ENV,
  ENV_NAMES,
  loadConfig,
  NOT_SETTINGS,
  redactUrl,
  SETTINGS,
  settingsTable,
} from '../../src/gateway/config/index.js';

const KEY = 'k-0123456789abcdef';

function failure(env: Record<string, string>, files: Record<string, string> = {}): TollgateError {
  try {
    loadConfig(env, (path) => {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error('missing'), { code: 'ENOENT' });
      return text;
    });
  } catch (error) {
    if (error instanceof TollgateError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('gateway configuration', () => {
  it('starts on a fresh machine with nothing set: SQLite in ./data, local RabbitMQ, loopback, port 8080', () => {
    const config = loadConfig({});
    expect(config.store).toEqual({ kind: 'sqlite', filename: './data/tollgate.db' });
    expect(config.amqpUrl).toBe('amqp://guest:guest@127.0.0.1:5672');
    expect(config.port).toBe(8080);
    expect(config.host).toBe('127.0.0.1');
    expect(config.hostReason).toBe('no-api-key');
    expect(config.bridges).toEqual({ ingress: [], egress: [] });
    expect(config.bodyLimitBytes).toBe(DEFAULTS.bodyLimitBytes);
  });

  it('binds to all interfaces once an API key is set, unless a host is configured', () => {
    expect(loadConfig({ [ENV.apiKeysAdmin]: KEY })).toMatchObject({
      host: '0.0.0.0',
      hostReason: 'api-keys-set',
    });
    expect(loadConfig({ [ENV.apiKeysRead]: KEY, [ENV.host]: '10.0.0.1' })).toMatchObject({
      host: '10.0.0.1',
      hostReason: 'configured',
    });
  });

  it('reads comma-separated key lists per scope', () => {
    const config = loadConfig({
      [ENV.apiKeysRead]: `${KEY}1, ${KEY}2`,
      [ENV.apiKeysMint]: `${KEY}3`,
      [ENV.apiKeysAdmin]: `${KEY}4,`,
    });
    expect(config.apiKeys).toEqual({ read: [`${KEY}1`, `${KEY}2`], mint: [`${KEY}3`], admin: [`${KEY}4`] });
  });

  it('selects DynamoDB with endpoint, region and table names', () => {
    const config = loadConfig({
      [ENV.store]: 'dynamodb',
      [ENV.dynamodbEndpoint]: 'http://localhost:8000',
      [ENV.dynamodbRegion]: 'eu-west-1',
      [ENV.dynamodbTokensTable]: 'tg-tokens',
      [ENV.dynamodbStateTable]: 'tg-state',
      [ENV.dynamodbCreateTables]: 'true',
      [ENV.dynamodbStatusShards]: '8',
      [ENV.dynamodbGroupCommits]: 'false',
      [ENV.tombstoneRetentionMs]: '60000',
    });
    expect(config.store).toEqual({
      kind: 'dynamodb',
      endpoint: 'http://localhost:8000',
      region: 'eu-west-1',
      tokensTable: 'tg-tokens',
      stateTable: 'tg-state',
      createTables: true,
      statusShards: 8,
      groupCommits: false,
      tombstoneRetentionMs: 60000,
    });
    expect(loadConfig({ [ENV.store]: 'dynamodb' }).store).toMatchObject({ groupCommits: true });
  });

  it('selects PostgreSQL with its defaults: schema tollgate, 10 connections, tables not created', () => {
    const url = 'postgres://tollgate:s3cret@db.internal:5432/app';
    const config = loadConfig({ [ENV.store]: 'postgres', [ENV.postgresUrl]: url });
    expect(config.store).toEqual({
      kind: 'postgres',
      url,
      schema: DEFAULTS.postgres.schema,
      poolSize: DEFAULTS.postgres.poolSize,
      createTables: false,
    });
    expect(DEFAULTS).toMatchObject({ postgres: { schema: 'tollgate', poolSize: 10 } });
  });

  it('reads every PostgreSQL setting from the environment and from the config file (camelCase)', () => {
    const fromEnv = loadConfig({
      [ENV.store]: 'postgres',
      [ENV.postgresUrl]: 'postgresql://u:p@127.0.0.1/test?sslmode=disable',
      [ENV.postgresSchema]: 'tg_orders',
      [ENV.postgresPoolSize]: '4',
      [ENV.postgresCreateTables]: 'true',
      [ENV.tombstoneRetentionMs]: '60000',
    });
    expect(fromEnv.store).toEqual({
      kind: 'postgres',
      url: 'postgresql://u:p@127.0.0.1/test?sslmode=disable',
      schema: 'tg_orders',
      poolSize: 4,
      createTables: true,
      tombstoneRetentionMs: 60000,
    });
    const file = JSON.stringify({
      store: 'postgres',
      postgres: { url: 'postgres://u:p@db/app', schema: 'tg', poolSize: 3, createTables: true },
    });
    const fromFile = loadConfig({ [ENV.config]: '/etc/tollgate.json' }, () => file);
    expect(fromFile.store).toEqual({
      kind: 'postgres',
      url: 'postgres://u:p@db/app',
      schema: 'tg',
      poolSize: 3,
      createTables: true,
    });
    // The environment wins over the file, setting by setting.
    const mixed = loadConfig(
      { [ENV.config]: '/etc/tollgate.json', [ENV.postgresUrl]: 'postgres://other/app2' },
      () => file,
    );
    expect(mixed.store).toMatchObject({ url: 'postgres://other/app2', schema: 'tg', poolSize: 3 });
    const bad = failure(
      { [ENV.config]: '/c.json' },
      { '/c.json': JSON.stringify({ store: 'postgres', postgres: { url: 'mysql://u:pw@h/db' } }) },
    );
    expect(bad.details.setting).toBe('/c.json:postgres.url');
  });

  it('accepts a Unix socket given by the host option', () => {
    const url = 'postgres:///app?host=/run/postgresql';
    expect(loadConfig({ [ENV.store]: 'postgres', [ENV.postgresUrl]: url }).store).toMatchObject({ url });
  });

  it.each([
    ['not a url', 'hunter2-secret'],
    ['http://tollgate:hunter2-secret@db/app', 'wrong protocol'],
    ['postgres://tollgate:hunter2-secret@/app', 'no host'],
    ['postgres://tollgate:hunter2-secret@db', 'no database'],
    ['postgres://tollgate:hunter2-secret@db/', 'empty database'],
    ['postgresql://tollgate:hunter2-secret%@db/app', 'bad percent-encoding in the password'],
    ['postgres://tollgate:hunter2-secret@db:99999/app', 'bad port'],
  ])('refuses the PostgreSQL URL %s (%s) without repeating the password', (url) => {
    const error = failure({ [ENV.store]: 'postgres', [ENV.postgresUrl]: url });
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.details.setting).toBe(ENV.postgresUrl);
    expect(error.message).toContain(ENV.postgresUrl);
    expect(`${error.message} ${JSON.stringify(error.details)}`).not.toContain('hunter2');
  });

  it('describes the store for logs without its credentials, and lists the passwords to mask', () => {
    const config = loadConfig({
      [ENV.store]: 'postgres',
      [ENV.postgresUrl]: 'postgres://tollgate:p%40ss-w0rd@db:5432/app',
      [ENV.amqpUrl]: 'amqp://guest:rabbit-pw@rabbit:5672',
    });
    const described = describeStore(config.store);
    expect(described).toEqual({
      kind: 'postgres',
      url: 'postgres://tollgate:***@db:5432/app',
      schema: 'tollgate',
      poolSize: 10,
      createTables: false,
    });
    expect(JSON.stringify(described)).not.toContain('w0rd');
    expect(configSecrets(config).sort()).toEqual(['p%40ss-w0rd', 'p@ss-w0rd', 'rabbit-pw'].sort());
    expect(configSecrets(loadConfig({ [ENV.amqpUrl]: 'off' }))).toEqual([]);
    // node-postgres also reads a password given as an option of the URL.
    const option = loadConfig({
      [ENV.store]: 'postgres',
      [ENV.postgresUrl]: 'postgres://tollgate@db/app?password=opt%20secret&sslmode=disable',
      [ENV.amqpUrl]: 'off',
    });
    expect(describeStore(option.store).url).toBe('postgres://tollgate@db/app?password=***&sslmode=disable');
    expect(configSecrets(option)).toEqual(expect.arrayContaining(['opt secret', 'opt%20secret']));
    expect(describeStore(loadConfig({}).store)).toEqual({ kind: 'sqlite', filename: DEFAULTS.sqlitePath });
  });

  it('reads bridges from the environment as JSON and from a config file, with defaults filled in', () => {
    const bridges = {
      ingress: [{ route: 'orders', exchange: 'shop', routingKey: 'order.placed' }],
      egress: [{ queue: 'payments.out', url: 'http://pay.local/v1/pay' }],
    };
    const fromEnv = loadConfig({ [ENV.bridges]: JSON.stringify(bridges) });
    expect(fromEnv.bridges.ingress).toEqual(bridges.ingress);
    expect(fromEnv.bridges.egress).toEqual([
      {
        queue: 'payments.out',
        url: 'http://pay.local/v1/pay',
        method: 'POST',
        bindings: [],
        attempts: 5,
        timeoutMs: 10_000,
      },
    ]);
    const file = JSON.stringify({
      port: 9090,
      bridges,
      apiKeys: { admin: [KEY] },
      store: 'sqlite',
      sqlitePath: '/tmp/x.db',
    });
    const fromFile = loadConfig({ [ENV.config]: '/etc/tollgate.json' }, () => file);
    expect(fromFile).toMatchObject({
      port: 9090,
      host: '0.0.0.0',
      store: { kind: 'sqlite', filename: '/tmp/x.db' },
    });
    expect(fromFile.bridges.ingress).toEqual(bridges.ingress);
    // The environment wins over the file.
    expect(loadConfig({ [ENV.config]: '/etc/tollgate.json', [ENV.port]: '7070' }, () => file).port).toBe(
      7070,
    );
  });

  it('runs without a broker when the AMQP URL is "off"', () => {
    expect(loadConfig({ [ENV.amqpUrl]: 'off' }).amqpUrl).toBeNull();
  });

  it.each([
    [{ [ENV.port]: 'eighty' }, ENV.port],
    [{ [ENV.port]: '70000' }, ENV.port],
    [{ [ENV.port]: '80.5' }, ENV.port],
    [{ [ENV.store]: 'mysql' }, ENV.store],
    [{ [ENV.logLevel]: 'loud' }, ENV.logLevel],
    [{ [ENV.amqpUrl]: 'http://rabbit' }, ENV.amqpUrl],
    [{ [ENV.apiKeysAdmin]: 'short' }, ENV.apiKeysAdmin],
    [{ [ENV.bridges]: '{not json' }, ENV.bridges],
    [{ [ENV.bridges]: '[]' }, ENV.bridges],
    [
      { [ENV.bridges]: '{"ingress":[{"route":"a b","exchange":"x","routingKey":"k"}]}' },
      `${ENV.bridges}.ingress[0].route`,
    ],
    [{ [ENV.bridges]: '{"ingress":[{"route":"a","exchange":"x"}]}' }, `${ENV.bridges}.ingress[0].routingKey`],
    [{ [ENV.bridges]: '{"egress":[{"queue":"q","url":"ftp://x"}]}' }, `${ENV.bridges}.egress[0].url`],
    [
      { [ENV.bridges]: '{"egress":[{"queue":"q","url":"http://x","method":"GET"}]}' },
      `${ENV.bridges}.egress[0].method`,
    ],
    [
      { [ENV.bridges]: '{"egress":[{"queue":"q","url":"http://x","bindings":[{"exchange":"e"}]}]}' },
      `${ENV.bridges}.egress[0].bindings[0].routingKey`,
    ],
    [
      {
        [ENV.bridges]:
          '{"ingress":[{"route":"a","exchange":"x","routingKey":"k"},{"route":"a","exchange":"y","routingKey":"k"}]}',
      },
      `${ENV.bridges}.ingress`,
    ],
    [{ [ENV.store]: 'dynamodb', [ENV.dynamodbEndpoint]: 'localhost:8000' }, ENV.dynamodbEndpoint],
    [{ [ENV.store]: 'dynamodb', [ENV.dynamodbTokensTable]: 'x' }, ENV.dynamodbTokensTable],
    [{ [ENV.store]: 'dynamodb', [ENV.dynamodbCreateTables]: 'yes' }, ENV.dynamodbCreateTables],
    [{ [ENV.store]: 'dynamodb', [ENV.dynamodbStatusShards]: '0' }, ENV.dynamodbStatusShards],
    [{ [ENV.store]: 'dynamodb', [ENV.dynamodbStatusShards]: '65' }, ENV.dynamodbStatusShards],
    [{ [ENV.store]: 'postgres' }, ENV.postgresUrl],
    [
      { [ENV.store]: 'postgres', [ENV.postgresUrl]: 'postgres://h/db', [ENV.postgresSchema]: 'Tollgate' },
      ENV.postgresSchema,
    ],
    [
      { [ENV.store]: 'postgres', [ENV.postgresUrl]: 'postgres://h/db', [ENV.postgresSchema]: 'pg_tg' },
      ENV.postgresSchema,
    ],
    [
      { [ENV.store]: 'postgres', [ENV.postgresUrl]: 'postgres://h/db', [ENV.postgresSchema]: 'a-b' },
      ENV.postgresSchema,
    ],
    [
      { [ENV.store]: 'postgres', [ENV.postgresUrl]: 'postgres://h/db', [ENV.postgresPoolSize]: '0' },
      ENV.postgresPoolSize,
    ],
    [
      { [ENV.store]: 'postgres', [ENV.postgresUrl]: 'postgres://h/db', [ENV.postgresPoolSize]: 'ten' },
      ENV.postgresPoolSize,
    ],
    [
      { [ENV.store]: 'postgres', [ENV.postgresUrl]: 'postgres://h/db', [ENV.postgresCreateTables]: 'yes' },
      ENV.postgresCreateTables,
    ],
    [{ [ENV.bodyLimitBytes]: '10' }, ENV.bodyLimitBytes],
    [{ [ENV.shutdownTimeoutMs]: '-1' }, ENV.shutdownTimeoutMs],
    [{ [ENV.config]: '/nope.json' }, ENV.config],
  ])('refuses %o naming the bad setting', (env, setting) => {
    const error = failure(env);
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.details.setting).toBe(setting);
  });

  it('names the file and key of a bad setting in the config file', () => {
    const error = failure({ [ENV.config]: '/c.json' }, { '/c.json': '{"port":"x"}' });
    expect(error.details.setting).toBe('/c.json:port');
    expect(failure({ [ENV.config]: '/c.json' }, { '/c.json': '{oops' }).details.setting).toBe(ENV.config);
  });

  it('lists every environment variable it reads', () => {
    expect(ENV_NAMES).toContain('TOLLGATE_PORT');
    expect(ENV_NAMES.every((name) => name.startsWith('TOLLGATE_'))).toBe(true);
    expect(new Set(ENV_NAMES).size).toBe(ENV_NAMES.length);
  });

  it('masks the password of a URL for logs', () => {
    expect(redactUrl('amqp://guest:secret@rabbit:5672/vh')).toBe('amqp://guest:***@rabbit:5672/vh');
  });
});

describe('gateway configuration schema', () => {
  it('refuses unknown TOLLGATE_ variables, naming every one with the closest setting', () => {
    const error = failure({ TOLLGATE_PROT: '8080', TOLLGATE_API_KEY_ADMIN: KEY, TOLLGATE_ZZZ: '' });
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.details.setting).toBe('TOLLGATE_PROT, TOLLGATE_API_KEY_ADMIN, TOLLGATE_ZZZ');
    expect(error.message).toContain('TOLLGATE_PORT (for TOLLGATE_PROT)');
    expect(error.message).toContain('TOLLGATE_API_KEYS_ADMIN (for TOLLGATE_API_KEY_ADMIN)');
    const one = failure({ [ENV.port]: '8080', TOLLGATE_SHUTDOWN_TIMEOUT: '5000' });
    expect(one.message).toBe(
      'invalid setting TOLLGATE_SHUTDOWN_TIMEOUT: is not a setting; did you mean TOLLGATE_SHUTDOWN_TIMEOUT_MS?',
    );
  });

  it('ignores variables of other programs and accepts the TOLLGATE_ variables of tests, soak and crash points', () => {
    const others = { PATH: '/bin', AWS_REGION: 'eu-west-1', tollgate_port: 'x', NODE_OPTIONS: '' };
    const known = Object.fromEntries(Object.keys(NOT_SETTINGS).map((name) => [name, 'x']));
    expect(loadConfig({ ...others, ...known, [ENV.port]: '9000' }).port).toBe(9000);
  });

  it('refuses unknown keys in the config file, at any depth, together with unknown variables', () => {
    const file = JSON.stringify({
      prot: 1,
      relay: { delay: 5 },
      postgres: { pool: 3 },
      bridges: { egress: [{ queue: 'q', url: 'http://x', metod: 'PUT' }] },
    });
    const error = failure({ [ENV.config]: '/c.json', TOLLGATE_HOTS: 'x' }, { '/c.json': file });
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(String(error.details.setting).split(', ')).toEqual([
      'TOLLGATE_HOTS',
      '/c.json:prot',
      '/c.json:relay.delay',
      '/c.json:postgres.pool',
      '/c.json:bridges.egress[0].metod',
    ]);
    expect(error.message).toContain('/c.json:port (for /c.json:prot)');
    expect(error.message).toContain('/c.json:relay.delayMs (for /c.json:relay.delay)');
    expect(error.message).toContain('/c.json:bridges.egress[0].method (for /c.json:bridges.egress[0].metod)');
    // JSON given in a variable is held to the same schema.
    const fromEnv = failure({ [ENV.bridges]: '{"ingres":[]}' });
    expect(fromEnv.details.setting).toBe(`${ENV.bridges}.ingres`);
    expect(fromEnv.message).toContain(`did you mean ${ENV.bridges}.ingress?`);
  });

  it.each([
    [{ [ENV.egressPrefetch]: 'many' }, ENV.egressPrefetch, 'must be an integer from 1 to 10000'],
    [{ [ENV.relayLeaseMs]: '1e3' }, ENV.relayLeaseMs, 'must be an integer from 100 to 9007199254740991'],
    [{ [ENV.postgresCreateTables]: 'on' }, ENV.postgresCreateTables, 'must be true or false'],
    [{ [ENV.apiKeysRead]: 'short' }, ENV.apiKeysRead, 'every API key must be at least 16 characters'],
    [
      { [ENV.apiKeysMint]: `${KEY} x,${KEY}é` },
      ENV.apiKeysMint,
      'API keys are printable ASCII without spaces',
    ],
    [{ [ENV.bridges]: '{oops' }, ENV.bridges, 'must be JSON: {"ingress":[...],"egress":[...]}'],
    [
      { [ENV.logLevel]: 'loud' },
      ENV.logLevel,
      'must be one of fatal, error, warn, info, debug, trace, silent',
    ],
    [{ [ENV.port]: '70000' }, ENV.port, 'must be an integer from 0 to 65535'],
  ])('refuses a value of the wrong type in the environment: %o', (env, setting, problem) => {
    const error = failure(env);
    expect(error.details.setting).toBe(setting);
    expect(error.message).toBe(`invalid setting ${setting}: ${problem}`);
  });

  it.each([
    [{ port: '8080' }, 'port', 'must be an integer from 0 to 65535'],
    [{ relay: { delayMs: 1.5 } }, 'relay.delayMs', 'must be an integer from 0 to 9007199254740991'],
    [{ relay: 5 }, 'relay', 'must be an object'],
    [{ postgres: { createTables: 'true' } }, 'postgres.createTables', 'must be true or false'],
    [{ apiKeys: { read: KEY } }, 'apiKeys.read', 'must be a list of keys'],
    [{ sqlitePath: 7 }, 'sqlitePath', 'must be a string'],
    [{ bridges: { ingress: {} } }, 'bridges.ingress', 'must be a list'],
    [{ bridges: { egress: ['q'] } }, 'bridges.egress[0]', 'must be an object { queue, url, method }'],
    [
      { bridges: { egress: [{ queue: 'q', url: 'http://x', attempts: '3' }] } },
      'bridges.egress[0].attempts',
      'must be an integer from 1 to 100',
    ],
    [{ amqpUrl: 'http://rabbit' }, 'amqpUrl', 'must be an absolute amqp: or amqps: URL, or off'],
  ])('refuses a value of the wrong type in the config file: %o', (file, key, problem) => {
    const error = failure({ [ENV.config]: '/c.json' }, { '/c.json': JSON.stringify(file) });
    expect(error.code).toBe(ErrorCodes.CONFIG_INVALID);
    expect(error.details.setting).toBe(`/c.json:${key}`);
    expect(error.message).toBe(`invalid setting /c.json:${key}: ${problem}`);
  });

  it('reads the problem base from the environment or the file, and leaves it unset by default', () => {
    expect(loadConfig({}).problemBase).toBeUndefined();
    expect('problemBase' in loadConfig({})).toBe(false);
    const base = 'https://errors.example.com/problems/';
    expect(loadConfig({ [ENV.problemBase]: base }).problemBase).toBe(base);
    expect(ENV.problemBase).toBe('TOLLGATE_PROBLEM_BASE');
    const file = JSON.stringify({ problemBase: base });
    expect(loadConfig({ [ENV.config]: '/c.json' }, () => file).problemBase).toBe(base);
    expect(failure({ [ENV.problemBase]: 'problems' }).details.setting).toBe(ENV.problemBase);
  });

  it('names each variable after its key in the file: TOLLGATE_ and the path in upper snake case', () => {
    expect(SETTINGS.map((s) => s.env)).toEqual(ENV_NAMES.filter((name) => name !== CONFIG_FILE.env));
    const pairs = Object.fromEntries(SETTINGS.map((s) => [s.path.join('.'), s.env]));
    expect(pairs).toMatchObject({
      port: 'TOLLGATE_PORT',
      'relay.delayMs': 'TOLLGATE_RELAY_DELAY_MS',
      'apiKeys.admin': 'TOLLGATE_API_KEYS_ADMIN',
      'dynamodb.statusShards': 'TOLLGATE_DYNAMODB_STATUS_SHARDS',
      'postgres.createTables': 'TOLLGATE_POSTGRES_CREATE_TABLES',
      tokenTtlMs: 'TOLLGATE_TOKEN_TTL_MS',
    });
    // Every setting is either a setting or a known bystander, never both.
    expect(ENV_NAMES.filter((name) => name in NOT_SETTINGS)).toEqual([]);
  });

  it('renders the docs table from the schema: one row per variable, with its key, default and rule', () => {
    const rows = settingsTable().split('\n').slice(2);
    expect(rows).toHaveLength(ENV_NAMES.length);
    expect(rows.map((row) => /`(TOLLGATE_[A-Z_]+)`/.exec(row)?.[1])).toEqual(ENV_NAMES);
    expect(settingsTable()).toContain(
      '| `port` | `TOLLGATE_PORT` | `8080` | port the API listens on (integer, 0 to 65535) |',
    );
    expect(settingsTable()).toContain('| `relay.leaseMs` | `TOLLGATE_RELAY_LEASE_MS` | `30000` |');
  });

  it('knows every TOLLGATE_ variable the repository sets or reads (tests, bench, soak, packaging)', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const self = fileURLToPath(import.meta.url);
    const seen = new Set<string>();
    const declared = new Set<string>();
    const visit = (path: string): void => {
      if (statSync(path).isDirectory()) {
        for (const entry of readdirSync(path)) if (entry !== 'node_modules') visit(join(path, entry));
        return;
      }
      if (path === self || path.endsWith('.md')) return;
      const text = readFileSync(path, 'utf8');
      for (const [name] of text.matchAll(/\bTOLLGATE_[A-Z0-9_]+/g)) seen.add(name);
      for (const [, name] of text.matchAll(/\b(?:const|let|function|class)\s+(TOLLGATE_\w+)/g))
        declared.add(name ?? '');
    };
    const places = [
      'src',
      'test',
      'bench',
      'soak',
      'scripts',
      'deploy',
      '.ci',
      'Dockerfile',
      'docker-compose.yml',
    ];
    for (const place of places) if (existsSync(join(root, place))) visit(join(root, place));
    const strays = [...seen].filter(
      (name) =>
        !name.endsWith('_') && // a prefix (TOLLGATE_API_KEYS_*), or the codes' TOLLGATE_ERR_
        !name.startsWith('TOLLGATE_ERR_') &&
        !declared.has(name) &&
        !ENV_NAMES.includes(name) &&
        !(name in NOT_SETTINGS),
    );
    expect(strays, 'add them to the schema, or to NOT_SETTINGS if they are not settings').toEqual([]);
    expect(seen).toContain('TOLLGATE_TEST_POSTGRES_URL');
  });
});
