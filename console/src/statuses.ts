import type { TokenStatus } from './types.js';

/** What each status means to an operator, shown next to the status name (never colour alone). */
export const STATUS_MEANING: Record<TokenStatus, string> = {
  issued: 'minted for a caller, not used yet',
  scheduled: 'due later; the relay sends it then',
  pending: 'minted, the signal not yet sent',
  dispatched: 'sent, not yet consumed',
  consumed: 'its state change was applied',
  expired: 'never used before its expiry',
  revoked: 'revoked by an operator',
};

/** The relay re-sends only tokens whose signal was never sent. */
export function canRedispatch(status: TokenStatus): boolean {
  return status === 'pending';
}

const REVOCABLE: ReadonlySet<TokenStatus> = new Set(['issued', 'pending', 'dispatched', 'scheduled']);

/** Revoking is refused once the token reached an end: consumed, expired or already revoked. */
export function canRevoke(status: TokenStatus): boolean {
  return REVOCABLE.has(status);
}
