import { randomBytes } from 'node:crypto';

/** 128 random bits, base64url without padding: 22 characters. */
export function newTokenId(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * Ids are ours (22 base64url chars) or chosen by a caller at the sync-async boundary.
 * Caller ids are restricted to a URL- and header-safe alphabet so they can travel anywhere unescaped.
 */
const TOKEN_ID = /^[A-Za-z0-9_-]{8,128}$/;

export function isTokenId(value: unknown): value is string {
  return typeof value === 'string' && TOKEN_ID.test(value);
}

/** Conversation ids share the token id alphabet; a root token's conversation defaults to a fresh id. */
export const newConversationId = newTokenId;
export const isConversationId = isTokenId;
