import { type CustomTypesConfig, types } from 'pg';
import type { TokenRecord } from '../../core/token.js';
import { type FieldType, TOKEN_FIELD_LIST } from '../../core/token-fields.js';
import { INSERT_COLUMN_LIST, tokenValues } from '../token-tuple.js';

/* Token records to columns and back: the column lists, how their values parse, and the order rows sort in. */

/**
 * How Tollgate's own statements parse columns: bigint (the instants, counts) as numbers, json as its text
 * (parsed here, so that a JSON `null` payload and an absent one stay apart). Set per statement rather than on the
 * pool, so the handler's queries on the same connection get node-postgres's defaults.
 */
export const TYPES: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === types.builtins.INT8) return parseBigint;
    if (oid === types.builtins.JSON) return identity;
    return types.getTypeParser(oid, format ?? 'text');
  }) as CustomTypesConfig['getTypeParser'],
};

function parseBigint(text: string): number {
  return Number(text);
}
function identity(text: string): string {
  return text;
}

/** The SQL type a logical field type is stored as (json columns are sent as text and cast on insert). */
const SQL_TYPE: Readonly<Record<FieldType, string>> = {
  text: 'text',
  status: 'text',
  instant: 'bigint',
  count: 'integer',
  json: 'text',
};

/** The array type of each of INSERT_COLUMNS, as the insert unnests them. */
export const INSERT_TYPES: readonly string[] = [
  ...TOKEN_FIELD_LIST.map(({ type }) => SQL_TYPE[type]),
  'text',
];

/** Which of INSERT_COLUMNS are json: sent as text, cast back to json on insert. */
export const INSERT_JSON: readonly boolean[] = INSERT_COLUMN_LIST.map(
  (_, i) => TOKEN_FIELD_LIST[i]?.type === 'json',
);

/** What the insert selects from the unnested arrays: INSERT_COLUMNS, json ones cast back to json. */
export const INSERT_SELECT = INSERT_COLUMN_LIST.map((column, i) =>
  INSERT_JSON[i] ? `${column}::json` : column,
).join(', ');

/** Tokens as INSERT_COLUMNS lists them: one array per column, one element per token. */
export function tokenColumns(tokens: readonly TokenRecord[]): unknown[][] {
  const columns: unknown[][] = INSERT_TYPES.map(() => []);
  for (const token of tokens) {
    for (const [i, value] of tokenValues(token).entries()) columns[i]?.push(value);
  }
  return columns;
}

/** Code-unit order; ids are ASCII, where it is the byte order of COLLATE "C". */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function byMintedAtThenId(a: TokenRecord, b: TokenRecord): number {
  return a.mintedAt !== b.mintedAt ? a.mintedAt - b.mintedAt : compareText(a.id, b.id);
}
