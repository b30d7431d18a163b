import type { TokenRecord } from '../core/token.js';
import { TOKEN_FIELD_LIST, type TokenField } from '../core/token-fields.js';
import { decodeToken } from './token-codec.js';

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

/** A token's values in INSERT_COLUMNS order. */
export function tokenValues(token: TokenRecord): unknown[] {
  const values = TOKEN_FIELD_LIST.map(({ name, type }) => {
    const value = token[name];
    if (value === undefined) return null;
    return type === 'json' ? JSON.stringify(value) : value;
  });
  values.push(token.destination?.medium ?? null);
  return values;
}

const POSITION = new Map<TokenField, number>(TOKEN_FIELD_LIST.map((field, i) => [field.name, i]));

export function fromTuple(row: TokenTuple): TokenRecord {
  return decodeToken(({ name, type }) => {
    const value = row[POSITION.get(name) as number];
    if (value === null || value === undefined) return undefined;
    return type === 'json' ? JSON.parse(value as string) : value;
  });
}
