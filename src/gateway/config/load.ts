import { Value } from 'typebox/value';
import { type Env, readEnv } from './env.js';
import { isRecord, readConfigFile, readText } from './file.js';
import { invalid, refuseUnknown, unknownKeys } from './report.js';
import { type GatewayConfig, resolve } from './resolve.js';
import { Settings } from './schema.js';
import { CONFIG_FILE } from './settings.js';

/**
 * Reads and validates the whole configuration at start, the environment and the optional JSON file alike,
 * against the one schema; the environment wins, setting by setting. Throws ConfigError naming every unknown
 * TOLLGATE_ variable and file key, or else the first bad setting (the variable, or the file and key), so a typo
 * fails the start instead of a later request.
 */
export function loadConfig(
  env: Env = process.env,
  readFile: (path: string) => string = readText,
): GatewayConfig {
  const file = env[CONFIG_FILE.env] || undefined;
  const settings = file === undefined ? {} : readConfigFile(file, readFile);
  const fromEnv = readEnv(env);
  for (const [setting, value] of fromEnv.values) setAt(settings, setting.path, value);
  const origins = { file, env: new Set(fromEnv.values.keys()) };
  refuseUnknown([...fromEnv.unknown, ...unknownKeys(settings, origins)]);

  Value.Default(Settings, settings);
  const [error] = Value.Errors(Settings, settings);
  if (error !== undefined) throw invalid(error, origins);
  return resolve(settings as Settings, env);
}

/** Sets a value at a path, creating the groups on the way; a group the file wrote wrong is left to be refused. */
function setAt(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  const [head, ...rest] = path;
  if (head === undefined) return;
  if (rest.length === 0) {
    target[head] = value;
    return;
  }
  const child = target[head] ?? {};
  target[head] = child;
  if (isRecord(child)) setAt(child, rest, value);
}
