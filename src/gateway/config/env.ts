import { ConfigError } from '../../core/errors.js';
import { CONFIG_FILE, ENV_NAMES, NOT_SETTINGS, SETTINGS, type Setting } from './settings.js';
import { closest } from './suggest.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** A name the gateway does not know, and the known one it was probably meant to be. */
export interface UnknownName {
  name: string;
  suggestion: string | undefined;
}

/** What the environment sets: settings (as the values the schema expects) and unknown TOLLGATE_ variables. */
export interface EnvSettings {
  values: ReadonlyMap<Setting, unknown>;
  unknown: UnknownName[];
}

const BY_VARIABLE = new Map(SETTINGS.map((setting) => [setting.env, setting]));
const BOOLEANS = new Map([
  ['true', true],
  ['1', true],
  ['false', false],
  ['0', false],
]);

/** Reads the TOLLGATE_ variables; any other variable is none of the gateway's business. */
export function readEnv(env: Env): EnvSettings {
  const values = new Map<Setting, unknown>();
  const unknown: UnknownName[] = [];
  for (const [name, text] of Object.entries(env)) {
    if (!name.startsWith('TOLLGATE_') || name === CONFIG_FILE.env || name in NOT_SETTINGS) continue;
    const setting = BY_VARIABLE.get(name);
    if (setting === undefined) unknown.push({ name, suggestion: closest(name, ENV_NAMES) });
    // An empty variable is unset: compose files and manifests write them.
    else if (text !== undefined && text !== '') values.set(setting, fromText(setting, text));
  }
  return { values, unknown };
}

/**
 * A variable's text as the value its schema expects: integers and booleans parsed, lists split at commas, objects
 * parsed as JSON. Text that does not convert is kept, for the schema to refuse with its own message.
 */
function fromText(setting: Setting, text: string): unknown {
  const schema = setting.schema as { type?: unknown; properties?: Record<string, { type?: unknown }> };
  switch (schema.type) {
    case 'integer':
      return /^-?\d+$/.test(text) ? Number(text) : text;
    case 'boolean':
      return BOOLEANS.get(text) ?? text;
    case 'array':
      return text
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item !== '');
    case 'object':
      try {
        return JSON.parse(text);
      } catch {
        const shape = Object.entries(schema.properties ?? {}).map(
          ([key, property]) => `"${key}":${property.type === 'array' ? '[...]' : '...'}`,
        );
        throw new ConfigError(setting.env, `must be JSON: {${shape.join(',')}}`);
      }
    default:
      return text;
  }
}
