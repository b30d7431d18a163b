import { type CustomTypesConfig, types } from 'pg';
import type { TokenRecord } from '../../core/token.js';

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

/** The columns a token is inserted with. */
export const INSERT_COLUMNS = `id, conversation_id, parent_id, minted_by, medium, destination, fingerprint, payload, headers,
  status, minted_at, dispatched_at, attempts, expires_at, consumed_at, consumed_by, commit_id, response, lease_until,
  retain_until`;

/** The SQL type of each of INSERT_COLUMNS. */
export const INSERT_TYPES = [
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'text',
  'bigint',
  'bigint',
  'integer',
  'bigint',
  'bigint',
  'text',
  'text',
  'text',
  'bigint',
  'bigint',
] as const;

/** A token's columns as INSERT_COLUMNS lists them: one array per column, one element per token. */
export function tokenColumns(tokens: readonly TokenRecord[]): unknown[][] {
  const json = (value: unknown) => (value === undefined ? null : JSON.stringify(value));
  const columns: unknown[][] = INSERT_TYPES.map(() => []);
  for (const t of tokens) {
    const row = [
      t.id,
      t.conversationId,
      t.parentId ?? null,
      t.mintedBy,
      t.destination?.medium ?? null,
      json(t.destination),
      t.fingerprint ?? null,
      json(t.payload),
      json(t.headers),
      t.status,
      t.mintedAt,
      t.dispatchedAt ?? null,
      t.attempts,
      t.expiresAt ?? null,
      t.consumedAt ?? null,
      t.consumedBy ?? null,
      t.commitId ?? null,
      json(t.response),
      t.leaseUntil ?? null,
      t.retainUntil ?? null,
    ];
    for (const [i, value] of row.entries()) columns[i]?.push(value);
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
