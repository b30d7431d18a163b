import { describe, expect, it } from 'vitest';
import { ErrorCodes, TollgateError } from '../../src/core/errors.js';
import { DEFAULTS, ENV, ENV_NAMES, loadConfig, redactUrl } from '../../src/gateway/config.js';

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
    [{ [ENV.store]: 'postgres' }, ENV.store],
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
