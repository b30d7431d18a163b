import { readFileSync } from 'node:fs';
import { ConfigError } from '../../core/errors.js';
import { CONFIG_FILE } from './settings.js';

export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}

/** The config file's settings as written: a JSON object, checked against the schema by the caller. */
export function readConfigFile(path: string, readFile: (path: string) => string): Record<string, unknown> {
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(CONFIG_FILE.env, `cannot read ${path} (${code})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(CONFIG_FILE.env, `${path} is not valid JSON`);
  }
  if (!isRecord(parsed)) throw new ConfigError(CONFIG_FILE.env, `${path} must hold a JSON object`);
  return parsed;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
