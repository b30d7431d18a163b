import type { JsonValue } from './fingerprint.js';

export type TokenStatus =
  | 'issued'
  | 'scheduled'
  | 'pending'
  | 'dispatched'
  | 'consumed'
  | 'expired'
  | 'revoked';

export const TOKEN_STATUSES: readonly TokenStatus[] = [
  'issued',
  'scheduled',
  'pending',
  'dispatched',
  'consumed',
  'expired',
  'revoked',
];

/** Where a token's signal goes. The token doubles as the outbox entry, so it carries everything a relay needs. */
export type Destination =
  | { medium: 'amqp'; exchange: string; routingKey: string }
  | { medium: 'http'; method: string; url: string; issuer?: Issuer };

/**
 * A receiver with a token store of its own: the sender first issues the token there, then sends the signal.
 * Kept on the token record, so it holds a credential's name, never a secret.
 */
export interface Issuer {
  /** The receiver's issuing endpoint, e.g. `http://shipping:8080/v1/tokens`. */
  url: string;
  /** A reference (`shipping`) the sender's credential resolver turns into the API key; absent: no key sent. */
  credential?: string;
}

/** An HTTP answer kept on a consumed token so a retried request gets the same answer. */
export interface StoredResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export interface TokenRecord {
  id: string;
  conversationId: string;
  /** The token consumed by the activity that minted this one; absent for a root. */
  parentId?: string;
  /** Endpoint (or edge client) that minted it. */
  mintedBy: string;
  destination?: Destination;
  /** sha-256 of the canonical payload; optional only for tokens issued to outside callers. */
  fingerprint?: string;
  payload?: JsonValue;
  headers?: Record<string, string>;
  status: TokenStatus;
  mintedAt: number;
  dispatchedAt?: number;
  attempts: number;
  /** Issued tokens only: after this instant an unused token can no longer be consumed. */
  expiresAt?: number;
  consumedAt?: number;
  consumedBy?: string;
  /**
   * Set by the commit that consumed the token, unique to that handler run. A commit retried after an ambiguous
   * store error (the answer was lost) recognises its own success by it instead of mistaking it for a duplicate.
   */
  commitId?: string;
  response?: StoredResponse;
  /** Relay lease: while in the future, other relays leave this token alone. */
  leaseUntil?: number;
  /** When the store may forget this record (tombstone retention / expired issued tokens). */
  retainUntil?: number;
  /**
   * Scheduled tokens: when the signal is due. Until then the token is `scheduled` (not consumable, not sent);
   * a relay's `claimDue` then moves it to `pending` and sends it. Kept on the record after that.
   */
  dueAt?: number;
}

/** Statuses in which a token can still be consumed. */
export const LIVE_STATUSES: readonly TokenStatus[] = ['issued', 'pending', 'dispatched'];
/** Statuses counted as "in flight": minted, not yet consumed or ended (a scheduled token waits to be sent). */
export const IN_FLIGHT_STATUSES: readonly TokenStatus[] = [...LIVE_STATUSES, 'scheduled'];

const NEXT: Readonly<Record<TokenStatus, readonly TokenStatus[]>> = {
  issued: ['consumed', 'expired', 'revoked'],
  // Due: a relay claimed it (claimDue). Cancelled: a handler's ctx.cancel, or an operator's revoke.
  scheduled: ['pending', 'revoked'],
  pending: ['dispatched', 'consumed', 'revoked'],
  dispatched: ['consumed', 'revoked'],
  consumed: [],
  expired: [],
  revoked: [],
};

/** Status moves one way only. Stores enforce this with conditions; this is the single source of the rules. */
export function canTransition(from: TokenStatus, to: TokenStatus): boolean {
  return NEXT[from].includes(to);
}

/** The statuses a token must be in for a move to `to` to be allowed. */
export function sourcesOf(to: TokenStatus): TokenStatus[] {
  return TOKEN_STATUSES.filter((from) => canTransition(from, to));
}

export function isLive(token: TokenRecord, now: number): boolean {
  if (!LIVE_STATUSES.includes(token.status)) return false;
  return token.expiresAt === undefined || token.expiresAt > now;
}
