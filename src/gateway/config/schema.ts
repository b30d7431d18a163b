import { type Static, type TObject, type TProperties, type TSchema, Type } from 'typebox';
import { MAX_STATUS_SHARDS } from '../../stores/open.js';
import { isAmqpOff, postgresUrlProblem, repeatedRoute, urlProblem } from './checks.js';

/**
 * The gateway's settings, each written once: its key in the config file is its path here, its environment
 * variable is derived from that path (`relay.delayMs` → `TOLLGATE_RELAY_DELAY_MS`, see settings.ts), and its type,
 * bounds, default and description are the schema's. Options beyond JSON Schema: `problem` (what an error says
 * when the value breaks the rule) and `defaultText` (the docs' words for a default computed at start).
 */

declare const GROUP: unique symbol;
/** Settings that belong together (`relay`): each of its properties is a setting, with a variable of its own. */
export type TGroup<P extends TProperties = TProperties> = TObject<P> & { readonly [GROUP]: true };

export function isGroup(schema: TSchema): schema is TGroup {
  return (schema as { group?: unknown }).group === true;
}

function group<P extends TProperties>(description: string, properties: P): TGroup<P> {
  const options = { description, group: true, additionalProperties: false, default: {} };
  return Type.Object(properties, options) as TObject<P> as TGroup<P>;
}

interface Described {
  description: string;
  default?: number;
  defaultText?: string;
}

/** A safe integer within bounds (JSON numbers beyond 2^53 are not exact). */
function integer(minimum: number, maximum: number, options: Described) {
  return Type.Integer({ minimum, maximum, ...options });
}

function url(protocols: readonly string[], description: string) {
  return Type.Refine(
    Type.String({ description }),
    (value) => urlProblem(value, protocols) === undefined,
    (value) => urlProblem(value, protocols) ?? '',
  );
}

/** DynamoDB's own rule for table names. */
function tableName(defaultName: string, description: string) {
  return Type.String({
    pattern: '^[A-Za-z0-9_.-]{3,255}$',
    problem: 'a table name is 3-255 characters of A-Z a-z 0-9 _ - .',
    default: defaultName,
    description,
  });
}

const MAX = Number.MAX_SAFE_INTEGER;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** Names AMQP and URLs accept without escaping. */
const NAME = '^[A-Za-z0-9._:-]{1,255}$';
export const DEFAULT_REGION = 'us-east-1';

const RoutingKey = Type.String({ maxLength: 255, problem: 'must be a string of at most 255 characters' });

/** HTTP ingress: `POST /v1/signals/:route` publishes the body to this exchange and routing key. */
export const IngressRoute = Type.Object(
  {
    // Also keeps the route safe in a URL path.
    route: Type.String({
      pattern: '^[A-Za-z0-9_-]{1,64}$',
      problem: 'must be 1-64 characters of A-Z a-z 0-9 _ -',
    }),
    // '' is the AMQP default exchange: allowed (the routing key is then a queue name).
    exchange: Type.String({ pattern: `^$|${NAME}`, problem: 'must be an exchange name' }),
    routingKey: RoutingKey,
  },
  { additionalProperties: false, problem: 'must be an object { route, exchange, routingKey }' },
);

const Binding = Type.Object(
  { exchange: Type.String({ pattern: NAME, problem: 'must be an exchange name' }), routingKey: RoutingKey },
  { additionalProperties: false, problem: 'must be an object { exchange, routingKey }' },
);

/** AMQP→HTTP egress: messages on `queue` are delivered to `url` with the token header. */
export const EgressRoute = Type.Object(
  {
    queue: Type.String({ pattern: NAME, problem: 'must be a queue name' }),
    url: url(['http:', 'https:'], 'where each message is delivered'),
    method: Type.Enum(['POST', 'PUT', 'PATCH'], {
      default: 'POST',
      problem: 'must be POST, PUT or PATCH (the signal has a body)',
    }),
    /** Exchanges the queue is bound to (declared with the queue). Refused messages go to `<queue>.dead`. */
    bindings: Type.Array(Binding, { default: [] }),
    /** HTTP attempts per delivery before the message is requeued for later. */
    attempts: integer(1, 100, { default: 5, description: 'HTTP attempts per delivery' }),
    timeoutMs: integer(10, 600_000, { default: 10_000, description: 'per-request timeout' }),
  },
  { additionalProperties: false, problem: 'must be an object { queue, url, method }' },
);

const Bridges = Type.Object(
  {
    ingress: Type.Refine(
      Type.Array(IngressRoute, { default: [] }),
      (routes) => repeatedRoute(routes) === undefined,
      (routes) => `route "${repeatedRoute(routes)}" appears twice`,
    ),
    egress: Type.Array(EgressRoute, { default: [] }),
  },
  {
    additionalProperties: false,
    default: {},
    problem: 'must be an object with ingress and egress lists',
    description:
      'JSON `{ "ingress": [{ "route", "exchange", "routingKey" }], "egress": [{ "queue", "url", "method", ' +
      '"bindings", "attempts", "timeoutMs" }] }`',
  },
);

const ApiKey = Type.Refine(
  // Short keys can be guessed; the length is the only strength check a config loader can make.
  Type.String({ minLength: 16, problem: 'every API key must be at least 16 characters' }),
  (key) => /^[\x21-\x7e]+$/.test(key),
  () => 'API keys are printable ASCII without spaces',
);

function keys(scope: string) {
  return Type.Array(ApiKey, { default: [], problem: 'must be a list of keys', description: scope });
}

export const Settings = Type.Object(
  {
    host: Type.Optional(
      Type.String({
        description: 'interface the API listens on',
        defaultText: '`0.0.0.0` with API keys, else `127.0.0.1`',
      }),
    ),
    port: integer(0, 65_535, { default: 8080, description: 'port the API listens on' }),
    logLevel: Type.Enum(LOG_LEVELS, { default: 'info', description: 'pino level' }),
    store: Type.Enum(['sqlite', 'dynamodb', 'postgres'], { default: 'sqlite', description: 'token store' }),
    sqlitePath: Type.String({ default: './data/tollgate.db', description: 'SQLite file' }),
    dynamodb: group('DynamoDB store', {
      endpoint: Type.Optional(url(['http:', 'https:'], 'DynamoDB endpoint (DynamoDB Local)')),
      region: Type.Optional(
        Type.String({ description: 'AWS region', defaultText: `\`AWS_REGION\`, else \`${DEFAULT_REGION}\`` }),
      ),
      tokensTable: tableName('tollgate-tokens', 'table of tokens'),
      stateTable: tableName('tollgate-state', 'table of handler state'),
      createTables: Type.Boolean({ default: false, description: 'create missing tables (DynamoDB Local)' }),
      statusShards: Type.Optional(
        integer(1, MAX_STATUS_SHARDS, {
          description: 'partition key values per status in the byStatus index; may grow, never shrink',
          defaultText: '`1`',
        }),
      ),
      groupCommits: Type.Boolean({
        default: true,
        description: 'the commits of one turn share one TransactWriteItems where they fit',
      }),
    }),
    postgres: group('PostgreSQL store', {
      url: Type.Optional(
        Type.Refine(
          Type.String({
            description: '`postgres://user:password@host[:port]/database`, required with the postgres store',
          }),
          (value) => postgresUrlProblem(value) === undefined,
          (value) => postgresUrlProblem(value) ?? '',
        ),
      ),
      schema: Type.String({
        // Lower case, so the name typed unquoted in psql is the same schema (an unquoted name folds to lower
        // case), and at most 63 bytes, so PostgreSQL never truncates it.
        pattern: '^(?!pg_)[a-z_][a-z0-9_]{0,62}$',
        problem: 'a schema name is 1-63 characters of a-z 0-9 _, not starting with a digit or pg_',
        default: 'tollgate',
        description: 'PostgreSQL schema',
      }),
      // PostgreSQL allows 100 connections by default: the pool size times the replicas must stay below that.
      poolSize: integer(1, 1000, { default: 10, description: 'connections per gateway' }),
      createTables: Type.Boolean({
        default: false,
        description: 'create the schema if missing (else apply the migrations in `deploy/postgres/`)',
      }),
    }),
    tombstoneRetentionMs: Type.Optional(
      integer(0, MAX, {
        description: 'how long consumed tokens are kept for inspection and replay',
        defaultText: '24 h',
      }),
    ),
    amqpUrl: Type.Refine(
      Type.String({
        default: 'amqp://guest:guest@127.0.0.1:5672',
        description: 'broker; `off` runs without one',
      }),
      (value) => isAmqpOff(value) || urlProblem(value, ['amqp:', 'amqps:']) === undefined,
      () => 'must be an absolute amqp: or amqps: URL, or off',
    ),
    apiKeys: group('API keys per scope (admin implies read and mint); none: open API, bound to loopback', {
      read: keys('keys of the read scope'),
      mint: keys('keys of the mint scope'),
      admin: keys('keys of the admin scope'),
    }),
    bridges: Bridges,
    // A token's payload must fit a DynamoDB item (400 KB) with room for the record's other fields.
    bodyLimitBytes: integer(1024, 380 * 1024, { default: 256 * 1024, description: 'request body limit' }),
    tokenTtlMs: integer(1000, MAX, {
      default: 24 * 60 * 60 * 1000,
      description: 'expiry of tokens issued through the API when the caller sets none',
    }),
    relay: group('relay timing', {
      delayMs: integer(0, MAX, {
        default: 10_000,
        description: 'a token still pending this long after minting is re-dispatched',
      }),
      intervalMs: integer(10, MAX, { default: 2_000, description: 'pause between relay passes' }),
      dueIntervalMs: integer(0, MAX, {
        default: 250,
        description: 'how often scheduled signals that fell due are looked for (0: only at relay passes)',
      }),
      leaseMs: integer(100, MAX, {
        default: 30_000,
        description: 'how long a claimed token is left to one relay',
      }),
    }),
    egressPrefetch: integer(1, 10_000, { default: 16, description: 'egress consumer prefetch' }),
    shutdownTimeoutMs: integer(100, MAX, { default: 10_000, description: 'bound on graceful shutdown' }),
    problemBase: Type.Optional(
      Type.Refine(
        Type.String({ description: 'base URI of the `type` of problem answers' }),
        (value) => URL.canParse(value),
        () => 'must be an absolute URI',
      ),
    ),
    console: group('the web console', {
      enabled: Type.Boolean({
        default: true,
        description: 'serve the web console at `/console`',
      }),
    }),
  },
  { additionalProperties: false },
);

/** The settings with every default filled in. */
export type Settings = Static<typeof Settings>;
export type IngressRoute = Static<typeof IngressRoute>;
export type EgressRoute = Static<typeof EgressRoute>;
export type BridgesConfig = Static<typeof Bridges>;
/** Keys per scope. Admin implies read and mint. No key at all → the API is open but bound to loopback. */
export type ApiKeysConfig = Settings['apiKeys'];
