import type { TSchema } from 'typebox';
import { CONFIG_FILE, SETTINGS } from './settings.js';

/** The parts of a setting's schema the docs show. */
interface Shown {
  type?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  default?: unknown;
  defaultText?: string;
  description?: string;
}

/**
 * The settings table of the docs (docs/gateway.md), rendered from the schema: the file key, the variable, the
 * default and what the setting does, with its type and bounds.
 */
export function settingsTable(): string {
  const rows = [
    ['—', `\`${CONFIG_FILE.env}\``, '—', CONFIG_FILE.description],
    ...SETTINGS.map((setting) => [
      `\`${setting.path.join('.')}\``,
      `\`${setting.env}\``,
      defaultOf(setting.schema),
      describe(setting.schema),
    ]),
  ];
  const lines = [['setting', 'env var', 'default', 'description'], ['---', '---', '---', '---'], ...rows];
  return lines
    .map((cells) => `| ${cells.map((cell) => cell.replace(/\|/g, '\\|')).join(' | ')} |`)
    .join('\n');
}

function defaultOf(schema: TSchema): string {
  const shown = schema as Shown;
  if (shown.defaultText !== undefined) return shown.defaultText;
  const value = shown.default;
  if (value === undefined) return '—';
  if (typeof value === 'object' && value !== null && Object.keys(value).length === 0) return 'none';
  return `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;
}

function describe(schema: TSchema): string {
  const shown = schema as Shown;
  const rule = ruleOf(shown);
  return rule === undefined ? (shown.description ?? '') : `${shown.description ?? ''} (${rule})`;
}

function ruleOf(shown: Shown): string | undefined {
  if (Array.isArray(shown.enum)) return `one of ${shown.enum.map((v) => `\`${v}\``).join(', ')}`;
  switch (shown.type) {
    case 'integer':
      return shown.maximum === Number.MAX_SAFE_INTEGER
        ? `integer, at least ${shown.minimum}`
        : `integer, ${shown.minimum} to ${shown.maximum}`;
    case 'boolean':
      return '`true` or `false`';
    case 'array':
      return 'comma-separated in the variable, a list in the file';
    default:
      return undefined;
  }
}
