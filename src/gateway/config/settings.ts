import type { TProperties, TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { isGroup, Settings, type TGroup } from './schema.js';

/** One setting of the schema, as the environment, the docs and error messages see it. */
export interface Setting {
  /** Its key in the config file: `['relay', 'delayMs']`. */
  path: readonly string[];
  /** Its name in `ENV`: `relayDelayMs`. */
  key: string;
  /** Its environment variable: `TOLLGATE_RELAY_DELAY_MS`. */
  env: string;
  schema: TSchema;
}

/** The variable naming the optional JSON config file; it has no key in the file, so it is no setting. */
export const CONFIG_FILE = {
  env: 'TOLLGATE_CONFIG',
  description: 'JSON file with the same settings in camelCase; the environment wins, setting by setting',
} as const;

/** Every setting, in the schema's order. */
export const SETTINGS: readonly Setting[] = settingsOf(Settings.properties, []);

type Joined<Prefix extends string, K extends string> = Prefix extends '' ? K : `${Prefix}${Capitalize<K>}`;
/** The `ENV` names of the settings of a schema: `relayDelayMs` for `relay.delayMs`. */
export type SettingKey<P extends TProperties, Prefix extends string = ''> = {
  [K in keyof P & string]: P[K] extends TGroup<infer Q>
    ? SettingKey<Q, Joined<Prefix, K>>
    : Joined<Prefix, K>;
}[keyof P & string];

/**
 * Every environment variable the gateway reads, by setting. Exported so packaging (compose, Kubernetes) is
 * tested against the real list and cannot drift from it.
 */
export const ENV = {
  config: CONFIG_FILE.env,
  ...Object.fromEntries(SETTINGS.map((setting) => [setting.key, setting.env])),
} as Readonly<Record<SettingKey<typeof Settings.properties> | 'config', string>>;

export const ENV_NAMES: readonly string[] = Object.values(ENV);

/**
 * The `TOLLGATE_*` variables that are not gateway settings, and who reads them. A gateway refuses any other
 * unknown `TOLLGATE_*` variable, and some of its parents pass their whole environment on (bench/gateway.ts),
 * so every such variable of the repository is listed here; a test keeps the list complete.
 */
export const NOT_SETTINGS: Readonly<Record<string, string>> = {
  TOLLGATE_CRASH_AT: 'crash tests: the protocol step at which the process kills itself (src/core/crash.ts)',
  TOLLGATE_CRASH_AFTER: 'crash tests: which pass through that step kills it',
  TOLLGATE_TEST_AMQP_URL: 'tests and benchmarks: the RabbitMQ to use',
  TOLLGATE_TEST_POSTGRES_URL: 'tests: the PostgreSQL to use',
  TOLLGATE_TEST_PG_HOST: 'tests and benchmarks: PostgreSQL host',
  TOLLGATE_TEST_PG_PORT: 'tests and benchmarks: PostgreSQL port',
  TOLLGATE_TEST_PG_DB: 'tests and benchmarks: PostgreSQL database',
  TOLLGATE_TEST_PG_USER: 'tests and benchmarks: PostgreSQL user',
  TOLLGATE_TEST_QUIET: 'tests: silences the AMQP scenario fixture',
  TOLLGATE_WORKER_SPEC: 'tests: what the AMQP worker fixture runs',
  TOLLGATE_SOAK_AMQP_URL: 'soak: the RabbitMQ to use',
  TOLLGATE_SOAK_POSTGRES_URL: 'soak: the PostgreSQL to use',
};

/** The variable of a setting: TOLLGATE_ and its path in upper snake case. */
function envName(path: readonly string[]): string {
  const words = path.map((part) => part.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase());
  return `TOLLGATE_${words.join('_')}`;
}

function keyOf(path: readonly string[]): string {
  return path.map((part, i) => (i === 0 ? part : part.charAt(0).toUpperCase() + part.slice(1))).join('');
}

function settingsOf(properties: TProperties, parent: readonly string[]): Setting[] {
  return Object.entries(properties).flatMap(([name, schema]) => {
    const path = [...parent, name];
    if (isGroup(schema)) return settingsOf(schema.properties, path);
    return [{ path, key: keyOf(path), env: envName(path), schema }];
  });
}

/** Every setting's default: the configuration of a gateway started with nothing set. */
export const DEFAULTS: Readonly<Settings> = Value.Default(Settings, {}) as Settings;
