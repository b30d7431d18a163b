import { readFileSync } from 'node:fs';
import { ConfigError } from '../core/errors.js';
import { MAX_STATUS_SHARDS, type StoreConfig } from '../stores/open.js';

/** HTTP ingress: `POST /v1/signals/:route` publishes the body to this exchange/routing key. */
export interface IngressRoute {
  route: string;
  exchange: string;
  routingKey: string;
}

/** AMQP→HTTP egress: messages on `queue` are delivered to `url` with the token header. */
export interface EgressRoute {
  queue: string;
  url: string;
  method: string;
  /** Exchanges the queue is bound to (declared with the queue). Refused messages go to `<queue>.dead`. */
  bindings: Array<{ exchange: string; routingKey: string }>;
  /** HTTP attempts per delivery before the message is requeued for later. Default 5. */
  attempts: number;
  /** Per-request timeout. Default 10 s. */
  timeoutMs: number;
}

export interface BridgesConfig {
  ingress: IngressRoute[];
  egress: EgressRoute[];
}

/** Keys per scope. Admin implies read and mint. No key at all → the API is open but bound to loopback. */
export interface ApiKeysConfig {
  read: string[];
  mint: string[];
  admin: string[];
}

export interface GatewayConfig {
  host: string;
  /** Why the host was chosen, for the start-up log line (binding to loopback must be explained). */
  hostReason: 'configured' | 'api-keys-set' | 'no-api-key';
  port: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  store: StoreConfig;
  /** null = run without a broker (token API only; ingress answers 503). */
  amqpUrl: string | null;
  apiKeys: ApiKeysConfig;
  bridges: BridgesConfig;
  bodyLimitBytes: number;
  /** Expiry of tokens issued through the API when the caller sets none. */
  defaultTokenTtlMs: number;
  relay: { delayMs: number; intervalMs: number; leaseMs: number };
  egressPrefetch: number;
  shutdownTimeoutMs: number;
}

/**
 * Every environment variable the gateway reads. Exported so packaging (compose, Kubernetes) is tested against
 * the real list and cannot drift from it.
 */
export const ENV = {
  config: 'TOLLGATE_CONFIG',
  host: 'TOLLGATE_HOST',
  port: 'TOLLGATE_PORT',
  logLevel: 'TOLLGATE_LOG_LEVEL',
  store: 'TOLLGATE_STORE',
  sqlitePath: 'TOLLGATE_SQLITE_PATH',
  dynamoEndpoint: 'TOLLGATE_DYNAMODB_ENDPOINT',
  dynamoRegion: 'TOLLGATE_DYNAMODB_REGION',
  dynamoTokensTable: 'TOLLGATE_DYNAMODB_TOKENS_TABLE',
  dynamoStateTable: 'TOLLGATE_DYNAMODB_STATE_TABLE',
  dynamoCreateTables: 'TOLLGATE_DYNAMODB_CREATE_TABLES',
  dynamoStatusShards: 'TOLLGATE_DYNAMODB_STATUS_SHARDS',
  postgresUrl: 'TOLLGATE_POSTGRES_URL',
  postgresSchema: 'TOLLGATE_POSTGRES_SCHEMA',
  postgresPoolSize: 'TOLLGATE_POSTGRES_POOL_SIZE',
  postgresCreateTables: 'TOLLGATE_POSTGRES_CREATE_TABLES',
  tombstoneRetentionMs: 'TOLLGATE_TOMBSTONE_RETENTION_MS',
  amqpUrl: 'TOLLGATE_AMQP_URL',
  apiKeysRead: 'TOLLGATE_API_KEYS_READ',
  apiKeysMint: 'TOLLGATE_API_KEYS_MINT',
  apiKeysAdmin: 'TOLLGATE_API_KEYS_ADMIN',
  bridges: 'TOLLGATE_BRIDGES',
  bodyLimitBytes: 'TOLLGATE_BODY_LIMIT_BYTES',
  tokenTtlMs: 'TOLLGATE_TOKEN_TTL_MS',
  relayDelayMs: 'TOLLGATE_RELAY_DELAY_MS',
  relayIntervalMs: 'TOLLGATE_RELAY_INTERVAL_MS',
  relayLeaseMs: 'TOLLGATE_RELAY_LEASE_MS',
  egressPrefetch: 'TOLLGATE_EGRESS_PREFETCH',
  shutdownTimeoutMs: 'TOLLGATE_SHUTDOWN_TIMEOUT_MS',
} as const;

export const ENV_NAMES: readonly string[] = Object.values(ENV);

export const DEFAULTS = {
  port: 8080,
  sqlitePath: './data/tollgate.db',
  amqpUrl: 'amqp://guest:guest@127.0.0.1:5672',
  dynamoRegion: 'us-east-1',
  dynamoTokensTable: 'tollgate-tokens',
  dynamoStateTable: 'tollgate-state',
  postgresSchema: 'tollgate',
  postgresPoolSize: 10,
  bodyLimitBytes: 256 * 1024,
  tokenTtlMs: 24 * 60 * 60 * 1000,
  relayDelayMs: 10_000,
  relayIntervalMs: 2_000,
  relayLeaseMs: 30_000,
  egressPrefetch: 16,
  egressAttempts: 5,
  egressTimeoutMs: 10_000,
  shutdownTimeoutMs: 10_000,
} as const;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const STORE_KINDS = ['sqlite', 'dynamodb', 'postgres'] as const;
/**
 * The PostgreSQL store's rule for schema names: lower case, so the name typed unquoted in psql is the same
 * schema (an unquoted name folds to lower case), and at most 63 bytes, so PostgreSQL never truncates it.
 */
const PG_SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;
/** Names AMQP and URLs accept without escaping; also keeps route names safe in a URL path. */
const NAME = /^[A-Za-z0-9._:-]{1,255}$/;
const ROUTE = /^[A-Za-z0-9_-]{1,64}$/;
/** Writing "off" (or "none") as the AMQP URL runs the gateway without a broker. */
const AMQP_OFF = new Set(['off', 'none', '']);

/** The optional JSON file (TOLLGATE_CONFIG): same settings as the environment, camelCase; env wins. */
interface FileConfig {
  host?: unknown;
  port?: unknown;
  logLevel?: unknown;
  store?: unknown;
  sqlitePath?: unknown;
  dynamodb?: unknown;
  /** `{ url, schema, poolSize, createTables }` */
  postgres?: unknown;
  tombstoneRetentionMs?: unknown;
  amqpUrl?: unknown;
  apiKeys?: unknown;
  bridges?: unknown;
  bodyLimitBytes?: unknown;
  tokenTtlMs?: unknown;
  relay?: unknown;
  egressPrefetch?: unknown;
  shutdownTimeoutMs?: unknown;
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads and validates the whole configuration at start. Throws ConfigError naming the first bad setting
 * (the env variable, or the file path and key), so a typo fails the start instead of a later request.
 */
export function loadConfig(
  env: Env = process.env,
  readFile: (path: string) => string = readText,
): GatewayConfig {
  const file = readConfigFile(env[ENV.config], readFile);
  const source = (envName: string, fileKey: string, fileValue: unknown): Setting => {
    const raw = env[envName];
    if (raw !== undefined && raw !== '') return { name: envName, value: raw, fromEnv: true };
    return { name: `${env[ENV.config]}:${fileKey}`, value: fileValue, fromEnv: false };
  };

  const apiKeys: ApiKeysConfig = {
    read: keyList(source(ENV.apiKeysRead, 'apiKeys.read', field(file.apiKeys, 'read'))),
    mint: keyList(source(ENV.apiKeysMint, 'apiKeys.mint', field(file.apiKeys, 'mint'))),
    admin: keyList(source(ENV.apiKeysAdmin, 'apiKeys.admin', field(file.apiKeys, 'admin'))),
  };
  const anyKey = apiKeys.read.length + apiKeys.mint.length + apiKeys.admin.length > 0;
  const hostSetting = optionalString(source(ENV.host, 'host', file.host));
  const relay = file.relay;

  return {
    host: hostSetting ?? (anyKey ? '0.0.0.0' : '127.0.0.1'),
    hostReason: hostSetting !== undefined ? 'configured' : anyKey ? 'api-keys-set' : 'no-api-key',
    port: integer(source(ENV.port, 'port', file.port), DEFAULTS.port, 0, 65_535),
    logLevel: oneOf(source(ENV.logLevel, 'logLevel', file.logLevel), LOG_LEVELS, 'info'),
    store: storeConfig(env, file, source),
    amqpUrl: amqpUrl(source(ENV.amqpUrl, 'amqpUrl', file.amqpUrl)),
    apiKeys,
    bridges: bridges(source(ENV.bridges, 'bridges', file.bridges)),
    bodyLimitBytes: integer(
      source(ENV.bodyLimitBytes, 'bodyLimitBytes', file.bodyLimitBytes),
      DEFAULTS.bodyLimitBytes,
      1024,
      // A token's payload must fit a DynamoDB item (400 KB) with room for the record's other fields.
      380 * 1024,
    ),
    defaultTokenTtlMs: integer(
      source(ENV.tokenTtlMs, 'tokenTtlMs', file.tokenTtlMs),
      DEFAULTS.tokenTtlMs,
      1000,
    ),
    relay: {
      delayMs: integer(
        source(ENV.relayDelayMs, 'relay.delayMs', field(relay, 'delayMs')),
        DEFAULTS.relayDelayMs,
        0,
      ),
      intervalMs: integer(
        source(ENV.relayIntervalMs, 'relay.intervalMs', field(relay, 'intervalMs')),
        DEFAULTS.relayIntervalMs,
        10,
      ),
      leaseMs: integer(
        source(ENV.relayLeaseMs, 'relay.leaseMs', field(relay, 'leaseMs')),
        DEFAULTS.relayLeaseMs,
        100,
      ),
    },
    egressPrefetch: integer(
      source(ENV.egressPrefetch, 'egressPrefetch', file.egressPrefetch),
      DEFAULTS.egressPrefetch,
      1,
      10_000,
    ),
    shutdownTimeoutMs: integer(
      source(ENV.shutdownTimeoutMs, 'shutdownTimeoutMs', file.shutdownTimeoutMs),
      DEFAULTS.shutdownTimeoutMs,
      100,
    ),
  };
}

interface Setting {
  /** What to name in an error: the env variable, or `file:key`. */
  name: string;
  value: unknown;
  fromEnv: boolean;
}

function readText(path: string): string {
  return readFileSync(path, 'utf8');
}

function readConfigFile(path: string | undefined, readFile: (path: string) => string): FileConfig {
  if (path === undefined || path === '') return {};
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    throw new ConfigError(
      ENV.config,
      `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(ENV.config, `${path} is not valid JSON`);
  }
  if (!isRecord(parsed)) throw new ConfigError(ENV.config, `${path} must hold a JSON object`);
  return parsed as FileConfig;
}

function storeConfig(
  env: Env,
  file: FileConfig,
  source: (envName: string, fileKey: string, fileValue: unknown) => Setting,
): StoreConfig {
  const kind = oneOf(source(ENV.store, 'store', file.store), STORE_KINDS, 'sqlite');
  const retention = source(ENV.tombstoneRetentionMs, 'tombstoneRetentionMs', file.tombstoneRetentionMs);
  const tombstoneRetentionMs = retention.value === undefined ? undefined : integer(retention, 0, 0);
  const retentionPart = tombstoneRetentionMs === undefined ? {} : { tombstoneRetentionMs };
  if (kind === 'sqlite') {
    const filename =
      optionalString(source(ENV.sqlitePath, 'sqlitePath', file.sqlitePath)) ?? DEFAULTS.sqlitePath;
    return { kind, filename, ...retentionPart };
  }
  if (kind === 'postgres') return postgresConfig(file, source, retentionPart);
  const dynamo = file.dynamodb;
  const endpoint = optionalString(source(ENV.dynamoEndpoint, 'dynamodb.endpoint', field(dynamo, 'endpoint')));
  if (endpoint !== undefined) {
    requireUrl(source(ENV.dynamoEndpoint, 'dynamodb.endpoint', endpoint), ['http:', 'https:']);
  }
  const table = (envName: string, key: string, fallback: string): string => {
    const setting = source(envName, `dynamodb.${key}`, field(dynamo, key));
    const value = optionalString(setting) ?? fallback;
    // DynamoDB's own rule for table names.
    if (!/^[A-Za-z0-9_.-]{3,255}$/.test(value)) {
      throw new ConfigError(setting.name, 'a table name is 3-255 characters of A-Z a-z 0-9 _ - .');
    }
    return value;
  };
  const createTables = boolean(
    source(ENV.dynamoCreateTables, 'dynamodb.createTables', field(dynamo, 'createTables')),
    false,
  );
  const shards = source(ENV.dynamoStatusShards, 'dynamodb.statusShards', field(dynamo, 'statusShards'));
  const statusShards = shards.value === undefined ? undefined : integer(shards, 1, 1, MAX_STATUS_SHARDS);
  return {
    kind,
    ...(endpoint !== undefined ? { endpoint } : {}),
    region:
      optionalString(source(ENV.dynamoRegion, 'dynamodb.region', field(dynamo, 'region'))) ??
      env.AWS_REGION ??
      DEFAULTS.dynamoRegion,
    tokensTable: table(ENV.dynamoTokensTable, 'tokensTable', DEFAULTS.dynamoTokensTable),
    stateTable: table(ENV.dynamoStateTable, 'stateTable', DEFAULTS.dynamoStateTable),
    createTables,
    ...(statusShards !== undefined ? { statusShards } : {}),
    ...retentionPart,
  };
}

function postgresConfig(
  file: FileConfig,
  source: (envName: string, fileKey: string, fileValue: unknown) => Setting,
  retentionPart: { tombstoneRetentionMs?: number },
): StoreConfig {
  const pg = file.postgres;
  const setting = (envName: string, key: string) => source(envName, `postgres.${key}`, field(pg, key));
  const url = postgresUrl(setting(ENV.postgresUrl, 'url'));
  const schemaSetting = setting(ENV.postgresSchema, 'schema');
  const schema = optionalString(schemaSetting) ?? DEFAULTS.postgresSchema;
  if (!PG_SCHEMA.test(schema) || schema.startsWith('pg_')) {
    throw new ConfigError(
      schemaSetting.name,
      'a schema name is 1-63 characters of a-z 0-9 _, not starting with a digit or pg_',
    );
  }
  return {
    kind: 'postgres',
    url,
    schema,
    // PostgreSQL allows 100 connections by default: the pool size times the replicas must stay below that.
    poolSize: integer(setting(ENV.postgresPoolSize, 'poolSize'), DEFAULTS.postgresPoolSize, 1, 1000),
    createTables: boolean(setting(ENV.postgresCreateTables, 'createTables'), false),
    ...retentionPart,
  };
}

/**
 * postgres://user:password@host[:port]/database[?options]. Checked here so a typo fails the start with the
 * variable's name rather than as a connection error. No message repeats the value: it holds the password.
 */
function postgresUrl(setting: Setting): string {
  const value = setting.value;
  if (value === undefined || value === '') {
    // Missing altogether: name the variable, which is where it is usually set (a file may set postgres.url).
    throw new ConfigError(
      ENV.postgresUrl,
      `is required when ${ENV.store}=postgres: postgres://user:password@host[:port]/database`,
    );
  }
  if (typeof value !== 'string') throw new ConfigError(setting.name, 'must be a string');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(
      setting.name,
      'is not a URL; expected postgres://user:password@host[:port]/database',
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(setting.name, 'must be a postgres: or postgresql: URL');
  }
  // A Unix socket has no host in the URL but a `host` option: postgres:///db?host=/run/postgresql
  if (url.hostname === '' && !url.searchParams.get('host')) {
    throw new ConfigError(setting.name, 'has no host');
  }
  const decoded = (part: string): string | undefined => {
    try {
      return decodeURIComponent(part);
    } catch {
      return undefined;
    }
  };
  if (decoded(url.username) === undefined || decoded(url.password) === undefined) {
    throw new ConfigError(setting.name, 'has a malformed user or password (percent-encode % : @ / ?)');
  }
  const database = decoded(url.pathname.replace(/^\//, ''));
  if (database === undefined) throw new ConfigError(setting.name, 'has a malformed database name');
  if (database === '') throw new ConfigError(setting.name, 'has no database name (postgres://…/database)');
  return value;
}

function amqpUrl(setting: Setting): string | null {
  if (setting.value === undefined) return DEFAULTS.amqpUrl;
  const value = optionalString(setting) ?? '';
  if (AMQP_OFF.has(value.toLowerCase())) return null;
  requireUrl(setting, ['amqp:', 'amqps:']);
  return value;
}

function bridges(setting: Setting): BridgesConfig {
  let value = setting.value;
  if (value === undefined) return { ingress: [], egress: [] };
  if (setting.fromEnv) {
    try {
      value = JSON.parse(String(value));
    } catch {
      throw new ConfigError(setting.name, 'must be JSON: {"ingress":[...],"egress":[...]}');
    }
  }
  if (!isRecord(value))
    throw new ConfigError(setting.name, 'must be an object with ingress and egress lists');
  const ingress = list(value.ingress, `${setting.name}.ingress`).map((item, i) =>
    ingressRoute(item, `${setting.name}.ingress[${i}]`),
  );
  const egress = list(value.egress, `${setting.name}.egress`).map((item, i) =>
    egressRoute(item, `${setting.name}.egress[${i}]`),
  );
  const routes = ingress.map((r) => r.route);
  const duplicate = routes.find((route, i) => routes.indexOf(route) !== i);
  if (duplicate !== undefined)
    throw new ConfigError(`${setting.name}.ingress`, `route "${duplicate}" appears twice`);
  return { ingress, egress };
}

function ingressRoute(item: unknown, name: string): IngressRoute {
  if (!isRecord(item)) throw new ConfigError(name, 'must be an object { route, exchange, routingKey }');
  const route = requiredMatch(item.route, `${name}.route`, ROUTE, '1-64 characters of A-Z a-z 0-9 _ -');
  // '' is the AMQP default exchange: allowed (routing key = queue name).
  const exchange =
    item.exchange === '' ? '' : requiredMatch(item.exchange, `${name}.exchange`, NAME, 'an exchange name');
  const routingKey = typeof item.routingKey === 'string' ? item.routingKey : undefined;
  if (routingKey === undefined || routingKey.length > 255) {
    throw new ConfigError(`${name}.routingKey`, 'must be a string of at most 255 characters');
  }
  return { route, exchange, routingKey };
}

function egressRoute(item: unknown, name: string): EgressRoute {
  if (!isRecord(item)) throw new ConfigError(name, 'must be an object { queue, url, method }');
  const queue = requiredMatch(item.queue, `${name}.queue`, NAME, 'a queue name');
  const url = requireUrl({ name: `${name}.url`, value: item.url, fromEnv: false }, ['http:', 'https:']);
  const method = item.method === undefined ? 'POST' : item.method;
  if (typeof method !== 'string' || !/^(POST|PUT|PATCH)$/.test(method)) {
    throw new ConfigError(`${name}.method`, 'must be POST, PUT or PATCH (the signal has a body)');
  }
  const bindings = list(item.bindings, `${name}.bindings`).map((binding, i) => {
    const at = `${name}.bindings[${i}]`;
    if (!isRecord(binding)) throw new ConfigError(at, 'must be an object { exchange, routingKey }');
    const exchange = requiredMatch(binding.exchange, `${at}.exchange`, NAME, 'an exchange name');
    if (typeof binding.routingKey !== 'string' || binding.routingKey.length > 255) {
      throw new ConfigError(`${at}.routingKey`, 'must be a string of at most 255 characters');
    }
    return { exchange, routingKey: binding.routingKey };
  });
  return {
    queue,
    url,
    method,
    bindings,
    attempts: integer(
      { name: `${name}.attempts`, value: item.attempts, fromEnv: false },
      DEFAULTS.egressAttempts,
      1,
      100,
    ),
    timeoutMs: integer(
      { name: `${name}.timeoutMs`, value: item.timeoutMs, fromEnv: false },
      DEFAULTS.egressTimeoutMs,
      10,
      600_000,
    ),
  };
}

function keyList(setting: Setting): string[] {
  const value = setting.value;
  if (value === undefined) return [];
  const keys = setting.fromEnv
    ? String(value)
        .split(',')
        .map((k) => k.trim())
        .filter((k) => k !== '')
    : value;
  if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) {
    throw new ConfigError(setting.name, 'must be a list of keys');
  }
  for (const key of keys as string[]) {
    // Short keys can be guessed; the length is the only strength check a config loader can make.
    if (key.length < 16) throw new ConfigError(setting.name, 'every API key must be at least 16 characters');
    if (!/^[\x21-\x7e]+$/.test(key))
      throw new ConfigError(setting.name, 'API keys are printable ASCII without spaces');
  }
  return [...(keys as string[])];
}

function integer(setting: Setting, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (setting.value === undefined) return fallback;
  const value = setting.fromEnv
    ? /^-?\d+$/.test(String(setting.value))
      ? Number(setting.value)
      : Number.NaN
    : setting.value;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(setting.name, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

function boolean(setting: Setting, fallback: boolean): boolean {
  const value = setting.value;
  if (value === undefined) return fallback;
  if (value === true || value === 'true' || value === '1') return true;
  if (value === false || value === 'false' || value === '0') return false;
  throw new ConfigError(setting.name, 'must be true or false');
}

function oneOf<T extends string>(setting: Setting, allowed: readonly T[], fallback: T): T {
  if (setting.value === undefined) return fallback;
  if (typeof setting.value === 'string' && (allowed as readonly string[]).includes(setting.value)) {
    return setting.value as T;
  }
  throw new ConfigError(setting.name, `must be one of ${allowed.join(', ')}`);
}

function optionalString(setting: Setting): string | undefined {
  if (setting.value === undefined) return undefined;
  if (typeof setting.value !== 'string') throw new ConfigError(setting.name, 'must be a string');
  return setting.value;
}

function requiredMatch(value: unknown, name: string, pattern: RegExp, what: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw new ConfigError(name, `must be ${what}`);
  return value;
}

function requireUrl(setting: Setting, protocols: readonly string[]): string {
  const value = setting.value;
  let url: URL | undefined;
  try {
    url = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || !protocols.includes(url.protocol)) {
    throw new ConfigError(setting.name, `must be an absolute ${protocols.join(' or ')} URL`);
  }
  return value as string;
}

function list(value: unknown, name: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ConfigError(name, 'must be a list');
  return value;
}

function field(parent: unknown, key: string): unknown {
  return isRecord(parent) ? parent[key] : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Query options that carry a password (node-postgres reads every option of the URL). */
const PASSWORD_OPTIONS = ['password', 'sslpassword'] as const;

/** A URL (AMQP, PostgreSQL) with its password masked, for logs: in the user info and in password options. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    for (const option of PASSWORD_OPTIONS)
      if (parsed.searchParams.has(option)) parsed.searchParams.set(option, '***');
    return parsed.toString();
  } catch {
    return '(unparseable url)';
  }
}

/** What the start-up log says about the store: everything but credentials. */
export function describeStore(store: StoreConfig): Record<string, unknown> {
  switch (store.kind) {
    case 'sqlite':
      return { kind: store.kind, filename: store.filename };
    case 'postgres':
      return {
        kind: store.kind,
        url: redactUrl(store.url),
        schema: store.schema,
        poolSize: store.poolSize,
        createTables: store.createTables,
      };
    case 'dynamodb':
      return {
        kind: store.kind,
        ...(store.endpoint !== undefined ? { endpoint: store.endpoint } : {}),
        region: store.region,
        tokensTable: store.tokensTable,
        stateTable: store.stateTable,
      };
  }
}

/**
 * The passwords in the configuration (PostgreSQL and AMQP URLs), as they could appear in a log line: encoded
 * and decoded. The logger masks them wherever they appear, whatever logged them (a driver's error included).
 */
export function configSecrets(config: Pick<GatewayConfig, 'store' | 'amqpUrl'>): string[] {
  const urls = [config.store.kind === 'postgres' ? config.store.url : null, config.amqpUrl];
  const secrets = new Set<string>();
  const add = (value: string) => {
    if (value !== '') secrets.add(value);
  };
  for (const url of urls) {
    if (url === null) continue;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      continue; // an unparseable URL never passed validation
    }
    // User info is kept percent-encoded by URL; an option's value comes back decoded.
    add(parsed.password);
    try {
      add(decodeURIComponent(parsed.password));
    } catch {
      // Validation refuses a malformed one.
    }
    for (const option of PASSWORD_OPTIONS) {
      const value = parsed.searchParams.get(option) ?? '';
      add(value);
      add(encodeURIComponent(value));
      add(new URLSearchParams({ v: value }).toString().slice(2));
    }
  }
  return [...secrets];
}
