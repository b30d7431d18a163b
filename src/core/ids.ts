import { randomFillSync } from 'node:crypto';

// One call into the CSPRNG per 256 ids instead of one per id: the call, not the bytes, is what costs.
const POOL_BYTES = 16 * 256;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let offset = POOL_BYTES;

/** 128 random bits, base64url without padding: 22 characters. */
export function newTokenId(): string {
  if (offset + 16 > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString('base64url', offset, offset + 16);
  offset += 16;
  return id;
}

/**
 * Ids are ours (22 base64url chars) or chosen by a caller at the sync-async boundary.
 * Caller ids are restricted to a URL- and header-safe alphabet so they can travel anywhere unescaped.
 */
export const TOKEN_ID_PATTERN = '^[A-Za-z0-9_-]{8,128}$';
const TOKEN_ID = new RegExp(TOKEN_ID_PATTERN);

export function isTokenId(value: unknown): value is string {
  return typeof value === 'string' && TOKEN_ID.test(value);
}

/** Conversation ids share the token id alphabet; a root token's conversation defaults to a fresh id. */
export const newConversationId = newTokenId;
export const isConversationId = isTokenId;
