import { describe, expect, it } from 'vitest';
import { ErrorCodes, TollgateError } from '../../src/core/errors.js';
import {
  configSecrets,
  DEFAULTS,
  describeStore,
  ENV,
  ENV_NAMES,
  loadConfig,
  redactUrl,
} from '../../src/gateway/config.js';

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
      [ENV.dynamoEndpoint]: 'http://localhost:8000',
      [ENV.dynamoRegion]: 'eu-west-1',
      [ENV.dynamoTokensTable]: 'tg-tokens',
      [ENV.dynamoStateTable]: 'tg-state',
      [ENV.dynamoCreateTables]: 'true',
      [ENV.dynamoStatusShards]: '8',
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
      tombstoneRetentionMs: 60000,
    });
  });

  it('selects PostgreSQL with its defaults: schema tollgate, 10 connections, tables not created', () => {
    const url = 'postgres://tollgate:s3cret@db.internal:5432/app';
    const config = loadConfig({ [ENV.store]: 'postgres', [ENV.postgresUrl]: url });
    expect(config.store).toEqual({
      kind: 'postgres',
      url,
      schema: DEFAULTS.postgresSchema,
      poolSize: DEFAULTS.postgresPoolSize,
      createTables: false,
    });
    expect(DEFAULTS).toMatchObject({ postgresSchema: 'tollgate', postgresPoolSize: 10 });
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
        attempts: DEFAULTS.egressAttempts,
        timeoutMs: DEFAULTS.egressTimeoutMs,
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
    [{ [ENV.store]: 'dynamodb', [ENV.dynamoEndpoint]: 'localhost:8000' }, ENV.dynamoEndpoint],
    [{ [ENV.store]: 'dynamodb', [ENV.dynamoTokensTable]: 'x' }, ENV.dynamoTokensTable],
    [{ [ENV.store]: 'dynamodb', [ENV.dynamoCreateTables]: 'yes' }, ENV.dynamoCreateTables],
    [{ [ENV.store]: 'dynamodb', [ENV.dynamoStatusShards]: '0' }, ENV.dynamoStatusShards],
    [{ [ENV.store]: 'dynamodb', [ENV.dynamoStatusShards]: '65' }, ENV.dynamoStatusShards],
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
