/** The gateway's configuration: one schema, read from the environment and an optional JSON file. */
export type { Env } from './env.js';
export { loadConfig } from './load.js';
export type { GatewayConfig } from './resolve.js';
export type { ApiKeysConfig, BridgesConfig, EgressRoute, IngressRoute, Settings } from './schema.js';
export { configSecrets, describeStore, redactUrl } from './secrets.js';
export { CONFIG_FILE, DEFAULTS, ENV, ENV_NAMES, NOT_SETTINGS, SETTINGS } from './settings.js';
export { settingsTable } from './table.js';
