import { ConfigError } from '../../core/errors.js';
import type { StoreConfig } from '../../stores/open.js';
import { isAmqpOff } from './checks.js';
import type { Env } from './env.js';
import { DEFAULT_REGION, type Settings } from './schema.js';
import { ENV } from './settings.js';

/** The settings resolve into the store to open; the others pass through as they are. */
type StoreSettings = 'store' | 'sqlitePath' | 'dynamodb' | 'postgres' | 'tombstoneRetentionMs';

/** The loaded configuration: the settings, with the store, the host, the broker and the token expiry resolved. */
export type GatewayConfig = Omit<Settings, StoreSettings | 'host' | 'amqpUrl' | 'tokenTtlMs'> & {
  host: string;
  /** Why the host was chosen, for the start-up log line (binding to loopback must be explained). */
  hostReason: 'configured' | 'api-keys-set' | 'no-api-key';
  store: StoreConfig;
  /** null = run without a broker (token API only; ingress answers 503). */
  amqpUrl: string | null;
  /** Expiry of tokens issued through the API when the caller sets none (the `tokenTtlMs` setting). */
  defaultTokenTtlMs: number;
};

/** What follows from valid settings: defaults that depend on other settings, and the chosen store's options. */
export function resolve(settings: Settings, env: Env): GatewayConfig {
  const { host, amqpUrl, tokenTtlMs, store, sqlitePath, dynamodb, postgres, tombstoneRetentionMs, ...rest } =
    settings;
  const anyKey = Object.values(settings.apiKeys).some((keys) => keys.length > 0);
  return {
    ...rest,
    host: host ?? (anyKey ? '0.0.0.0' : '127.0.0.1'),
    hostReason: host !== undefined ? 'configured' : anyKey ? 'api-keys-set' : 'no-api-key',
    store: storeConfig(settings, env),
    amqpUrl: isAmqpOff(amqpUrl) ? null : amqpUrl,
    defaultTokenTtlMs: tokenTtlMs,
  };
}

function storeConfig(settings: Settings, env: Env): StoreConfig {
  const retention = settings.tombstoneRetentionMs;
  const retentionPart = retention === undefined ? {} : { tombstoneRetentionMs: retention };
  switch (settings.store) {
    case 'sqlite':
      return { kind: 'sqlite', filename: settings.sqlitePath, ...retentionPart };
    case 'postgres': {
      const { url, schema, poolSize, createTables } = settings.postgres;
      if (url === undefined) {
        // Missing altogether: name the variable, which is where it is usually set (a file may set postgres.url).
        throw new ConfigError(
          ENV.postgresUrl,
          `is required when ${ENV.store}=postgres: postgres://user:password@host[:port]/database`,
        );
      }
      return { kind: 'postgres', url, schema, poolSize, createTables, ...retentionPart };
    }
    case 'dynamodb': {
      const { endpoint, region, tokensTable, stateTable, createTables, statusShards, groupCommits } =
        settings.dynamodb;
      return {
        kind: 'dynamodb',
        ...(endpoint !== undefined ? { endpoint } : {}),
        region: region ?? env.AWS_REGION ?? DEFAULT_REGION,
        tokensTable,
        stateTable,
        createTables,
        ...(statusShards !== undefined ? { statusShards } : {}),
        groupCommits,
        ...retentionPart,
      };
    }
  }
}
