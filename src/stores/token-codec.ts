import type { TokenRecord } from '../core/token.js';
import { type FieldSpec, TOKEN_FIELD_LIST, type TokenField } from '../core/token-fields.js';

/* What every store's mapping shares: walking the field table to build a record back from its stored form. */

type Field = { readonly name: TokenField } & FieldSpec;

/** The table's fields, required ones first: decoded records list their keys in this order, in every store. */
export const DECODE_ORDER: readonly Field[] = [
  ...TOKEN_FIELD_LIST.filter((field) => !field.optional),
  ...TOKEN_FIELD_LIST.filter((field) => field.optional),
];

/**
 * A record from a store's reader of one field, which returns undefined for an absent field (and throws, or
 * leaves it to the caller's checks, for a required one).
 */
export function decodeToken(read: (field: Field) => unknown): TokenRecord {
  const token: Record<string, unknown> = {};
  for (const field of DECODE_ORDER) {
    const value = read(field);
    if (value !== undefined) token[field.name] = value;
  }
  return token as unknown as TokenRecord;
}
