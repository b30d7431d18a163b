import { randomFillSync } from 'node:crypto';
import { TOKEN_ID_PATTERN } from './id-pattern.js';

export { TOKEN_ID_PATTERN };

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

const TOKEN_ID = new RegExp(TOKEN_ID_PATTERN);

export function isTokenId(value: unknown): value is string {
  return typeof value === 'string' && TOKEN_ID.test(value);
}

/** Conversation ids share the token id alphabet; a root token's conversation defaults to a fresh id. */
export const newConversationId = newTokenId;
export const isConversationId = isTokenId;
