import type { TSchema } from 'typebox';
import type { TLocalizedValidationError } from 'typebox/error';
import { ConfigError } from '../../core/errors.js';
import type { UnknownName } from './env.js';
import { isRecord } from './file.js';
import { Settings } from './schema.js';
import { CONFIG_FILE, SETTINGS, type Setting } from './settings.js';
import { closest } from './suggest.js';

/** Where the settings came from, to name a bad one the way the operator wrote it. */
export interface Origins {
  /** The config file's path, when there is one. */
  file: string | undefined;
  /** The settings the environment set (it wins over the file). */
  env: ReadonlySet<Setting>;
}

/** The parts of a JSON Schema node an error message draws on. */
interface SchemaFacts {
  type?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  problem?: unknown;
  properties?: Record<string, TSchema>;
  items?: TSchema;
}

/** The first validation error as a ConfigError naming the setting (and the place inside it) and the rule. */
export function invalid(error: TLocalizedValidationError, origins: Origins): ConfigError {
  const at = pointer(error.instancePath);
  const params = error.params as { requiredProperties?: string[]; message?: string };
  // A missing property is named, and explained by its own rule.
  const path = error.keyword === 'required' ? [...at, params.requiredProperties?.[0] ?? ''] : at;
  const problem =
    error.keyword === '~refine' ? String(params.message) : expectation(schemaAt(path) ?? Settings);
  return new ConfigError(nameOf(path, origins), problem);
}

/** Keys the schema does not know, wherever they are: the file's, and those of JSON given in a variable. */
export function unknownKeys(settings: unknown, origins: Origins): UnknownName[] {
  return [...strangers(Settings, settings, [])].map(({ at, key, known }) => {
    const name = nameOf([...at, key], origins);
    const suggestion = closest(key, known);
    // The same name with the known key in place of the unknown one.
    return { name, suggestion: suggestion && name.slice(0, name.length - key.length) + suggestion };
  });
}

/** One refusal naming every unknown variable and key, so a start does not stop on each in turn. */
export function refuseUnknown(unknown: readonly UnknownName[]): void {
  if (unknown.length === 0) return;
  const one = unknown.length === 1;
  const hints = unknown.flatMap(({ name, suggestion }) =>
    suggestion === undefined ? [] : [one ? suggestion : `${suggestion} (for ${name})`],
  );
  const hint = hints.length === 0 ? '' : `; did you mean ${hints.join(', ')}?`;
  throw new ConfigError(
    unknown.map((u) => u.name).join(', '),
    `${one ? 'is not a setting' : 'are not settings'}${hint}`,
  );
}

/** What a value must be, from the schema: the node's own `problem`, else its type and bounds. */
function expectation(schema: TSchema): string {
  const node = facts(schema);
  if (typeof node.problem === 'string') return node.problem;
  if (Array.isArray(node.enum)) return `must be one of ${node.enum.join(', ')}`;
  switch (node.type) {
    case 'integer':
      return `must be an integer from ${node.minimum} to ${node.maximum}`;
    case 'boolean':
      return 'must be true or false';
    case 'array':
      return 'must be a list';
    case 'object':
      return 'must be an object';
    default:
      return 'must be a string';
  }
}

/**
 * A place in the settings as an error names it: the variable if the environment set the setting, else
 * `file:key`; then the place inside the setting (`TOLLGATE_BRIDGES.ingress[0].route`). A comma-separated list
 * is named as a whole.
 */
function nameOf(path: readonly string[], origins: Origins): string {
  const setting = SETTINGS.find((s) => s.path.every((part, i) => path[i] === part));
  const file = origins.file ?? CONFIG_FILE.env;
  if (setting === undefined) return `${file}:${path.join('.')}`;
  const fromEnv = origins.env.has(setting) || origins.file === undefined;
  const name = fromEnv ? setting.env : `${file}:${setting.path.join('.')}`;
  if (isList(setting.schema)) return name;
  const inside = path.slice(setting.path.length);
  return name + inside.map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`)).join('');
}

function isList(schema: TSchema): boolean {
  const node = facts(schema);
  return node.type === 'array' && facts(node.items ?? schema).type !== 'object';
}

function schemaAt(path: readonly string[]): TSchema | undefined {
  let node: TSchema | undefined = Settings;
  for (const part of path) {
    if (node === undefined) return undefined;
    const current = facts(node);
    const properties = current.properties ?? {};
    node =
      current.type === 'array'
        ? current.items
        : Object.hasOwn(properties, part)
          ? properties[part]
          : undefined;
  }
  return node;
}

/** Every key of an object the schema closes (all of them), with the keys that would have been known there. */
function* strangers(
  schema: TSchema,
  value: unknown,
  at: readonly string[],
): Generator<{ at: readonly string[]; key: string; known: string[] }> {
  const node = facts(schema);
  if (node.type === 'array' && node.items !== undefined && Array.isArray(value)) {
    for (const [i, item] of value.entries()) yield* strangers(node.items, item, [...at, String(i)]);
  }
  if (node.type !== 'object' || !isRecord(value)) return;
  const properties = node.properties ?? {};
  for (const [key, child] of Object.entries(value)) {
    const property = Object.hasOwn(properties, key) ? properties[key] : undefined;
    if (property === undefined) yield { at, key, known: Object.keys(properties) };
    else yield* strangers(property, child, [...at, key]);
  }
}

function facts(schema: TSchema): SchemaFacts {
  return schema as SchemaFacts;
}

/** A JSON Pointer's parts: `/bridges/ingress/0` → bridges, ingress, 0. */
function pointer(instancePath: string): string[] {
  if (instancePath === '') return [];
  return instancePath
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'));
}
