import type { TokenRecord, TokenStatus } from '../core/token.js';

/*
 * The token record as the SQL stores (SQLite, PostgreSQL) read it back: one column list, one tuple type and one
 * mapping, so a field added to TokenRecord is added here once. JSON columns arrive as their text.
 */

/**
 * Token reads select these columns in array mode. Keep TokenTuple and fromTuple in this order.
 */
export const TOKEN_COLUMNS = `id, conversation_id, parent_id, minted_by, destination, fingerprint, payload, headers, status,
  minted_at, dispatched_at, attempts, expires_at, consumed_at, consumed_by, response, lease_until, retain_until, commit_id`;

export type TokenTuple = [
  id: string,
  conversationId: string,
  parentId: string | null,
  mintedBy: string,
  destination: string | null,
  fingerprint: string | null,
  payload: string | null,
  headers: string | null,
  status: TokenStatus,
  mintedAt: number,
  dispatchedAt: number | null,
  attempts: number,
  expiresAt: number | null,
  consumedAt: number | null,
  consumedBy: string | null,
  response: string | null,
  leaseUntil: number | null,
  retainUntil: number | null,
  commitId: string | null,
];

export function fromTuple(row: TokenTuple): TokenRecord {
  const [
    id,
    conversationId,
    parentId,
    mintedBy,
    destination,
    fingerprint,
    payload,
    headers,
    status,
    mintedAt,
    dispatchedAt,
    attempts,
    expiresAt,
    consumedAt,
    consumedBy,
    response,
    leaseUntil,
    retainUntil,
    commitId,
  ] = row;
  const token: TokenRecord = { id, conversationId, mintedBy, status, mintedAt, attempts };
  if (parentId !== null) token.parentId = parentId;
  if (destination !== null) token.destination = JSON.parse(destination);
  if (fingerprint !== null) token.fingerprint = fingerprint;
  if (payload !== null) token.payload = JSON.parse(payload);
  if (headers !== null) token.headers = JSON.parse(headers);
  if (dispatchedAt !== null) token.dispatchedAt = dispatchedAt;
  if (expiresAt !== null) token.expiresAt = expiresAt;
  if (consumedAt !== null) token.consumedAt = consumedAt;
  if (consumedBy !== null) token.consumedBy = consumedBy;
  if (response !== null) token.response = JSON.parse(response);
  if (leaseUntil !== null) token.leaseUntil = leaseUntil;
  if (retainUntil !== null) token.retainUntil = retainUntil;
  if (commitId !== null) token.commitId = commitId;
  return token;
}
