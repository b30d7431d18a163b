import type { TokenRecord } from '../core/token.js';
import { TOKEN_FIELD_LIST, type TokenField } from '../core/token-fields.js';
import { DECODE_ORDER } from './token-codec.js';

/*
 * The token record as the SQL stores (SQLite, PostgreSQL) write and read it, derived from the field table:
 * a field is the snake_case column of its name; an absent field is NULL; a json field is its JSON text (a column
 * read back arrives as that text); everything else is stored as it is.
 */

/** The column of a record field: `mintedAt` is `minted_at`. */
export function columnOf(field: TokenField): string {
  return field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** The record's columns, in table order: token reads select these in array mode (one TokenTuple per row). */
export const TOKEN_COLUMN_LIST: readonly string[] = TOKEN_FIELD_LIST.map((field) => columnOf(field.name));
export const TOKEN_COLUMNS = TOKEN_COLUMN_LIST.join(', ');

/**
 * The columns a token is inserted with: the record's, then `medium` (the destination's medium, a column of its
 * own so that the relay can filter on it), in the order tokenValues gives them.
 */
export const INSERT_COLUMN_LIST: readonly string[] = [...TOKEN_COLUMN_LIST, 'medium'];
export const INSERT_COLUMNS = INSERT_COLUMN_LIST.join(', ');

/** A row as selected with TOKEN_COLUMNS: one value per field, in table order. */
export type TokenTuple = readonly unknown[];

const JSON_FIELDS: readonly boolean[] = TOKEN_FIELD_LIST.map((field) => field.type === 'json');

/** A token's values in INSERT_COLUMNS order. */
export function tokenValues(token: TokenRecord): unknown[] {
  const values: unknown[] = new Array(INSERT_COLUMN_LIST.length);
  for (let i = 0; i < TOKEN_FIELD_LIST.length; i++) {
    const value = token[(TOKEN_FIELD_LIST[i] as { name: TokenField }).name];
    values[i] = value === undefined ? null : JSON_FIELDS[i] ? JSON.stringify(value) : value;
  }
  values[TOKEN_FIELD_LIST.length] = token.destination?.medium ?? null;
  return values;
}

/** Where each field sits in a TokenTuple, in the codec's decode order: a read walks this plan and nothing else. */
const READ_PLAN = DECODE_ORDER.map((field) => ({
  name: field.name,
  at: TOKEN_FIELD_LIST.findIndex((listed) => listed.name === field.name),
  json: field.type === 'json',
}));

// Every token read goes through here (the cheap check of every hop), so it is a plain loop over a precomputed plan.
export function fromTuple(row: TokenTuple): TokenRecord {
  const token: Record<string, unknown> = {};
  for (const { name, at, json } of READ_PLAN) {
    const value = row[at];
    if (value === null || value === undefined) continue;
    token[name] = json ? JSON.parse(value as string) : value;
  }
  return token as unknown as TokenRecord;
}
