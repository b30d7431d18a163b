import type { TokenRecord, TokenStatus } from './token.js';

/*
 * The fields of a TokenRecord, once: every store derives its encoding, decoding and column list from this
 * table. A field added to TokenRecord fails to compile until it is listed here; a store then needs at most a
 * schema migration. Stores map each logical type to their own encoding (SQL columns, DynamoDB attributes).
 */

/** What a field holds, independent of any store. */
export type FieldType =
  /** Free text (ids, names, fingerprints). */
  | 'text'
  /** One of TOKEN_STATUSES. */
  | 'status'
  /** Milliseconds since the epoch, a non-negative integer. */
  | 'instant'
  /** A non-negative integer count. */
  | 'count'
  /** A structured value, kept by every store as its JSON text so that it reads back exactly. */
  | 'json';

/** The TypeScript value each logical type holds. */
interface FieldValue {
  text: string;
  status: TokenStatus;
  instant: number;
  count: number;
  json: unknown;
}

export interface FieldSpec {
  readonly type: FieldType;
  /** Absent on some records; stores write nothing (SQL NULL, no attribute) when it is. */
  readonly optional: boolean;
}

type OptionalKey<T> = { [K in keyof T]-?: object extends Pick<T, K> ? K : never }[keyof T];

/** A spec whose optionality and logical type agree with the field's declaration in TokenRecord. */
type SpecOf<K extends keyof TokenRecord> = {
  readonly type: {
    [F in FieldType]: NonNullable<TokenRecord[K]> extends FieldValue[F] ? F : never;
  }[FieldType];
  readonly optional: K extends OptionalKey<TokenRecord> ? true : false;
};

/** What the table must be: one spec per TokenRecord key, none missing, none extra. */
export type TokenFieldTable = { readonly [K in keyof TokenRecord]-?: SpecOf<K> };

/** Every field of TokenRecord, in the order the SQL stores select them. */
export const TOKEN_FIELDS = {
  id: { type: 'text', optional: false },
  conversationId: { type: 'text', optional: false },
  parentId: { type: 'text', optional: true },
  mintedBy: { type: 'text', optional: false },
  destination: { type: 'json', optional: true },
  fingerprint: { type: 'text', optional: true },
  payload: { type: 'json', optional: true },
  headers: { type: 'json', optional: true },
  status: { type: 'status', optional: false },
  mintedAt: { type: 'instant', optional: false },
  dispatchedAt: { type: 'instant', optional: true },
  attempts: { type: 'count', optional: false },
  expiresAt: { type: 'instant', optional: true },
  consumedAt: { type: 'instant', optional: true },
  consumedBy: { type: 'text', optional: true },
  response: { type: 'json', optional: true },
  leaseUntil: { type: 'instant', optional: true },
  retainUntil: { type: 'instant', optional: true },
  commitId: { type: 'text', optional: true },
  dueAt: { type: 'instant', optional: true },
} as const satisfies TokenFieldTable;

export type TokenField = keyof typeof TOKEN_FIELDS;

/** The table as a list, in its order. */
export const TOKEN_FIELD_LIST: ReadonlyArray<{ readonly name: TokenField } & FieldSpec> = Object.entries(
  TOKEN_FIELDS,
).map(([name, spec]) => ({ name: name as TokenField, ...spec }));
