import {
  ErrorCodes,
  FingerprintMismatchError,
  InvalidTokenError,
  InvalidTransitionError,
  TokenConsumedError,
  TokenExpiredError,
  TokenRevokedError,
  UnknownTokenError,
} from './errors.js';
import { isTokenId } from './ids.js';
import type { Dropped, Rejected } from './processor.js';
import type { TokenRecord } from './token.js';

/** The cheap check: decides without running the handler when the token is missing, ended or mismatched. */
export function screen(
  tokenId: string,
  token: TokenRecord | undefined,
  payloadFingerprint: string,
  now: number,
): Dropped | Rejected | undefined {
  if (!token) return { kind: 'dropped', error: new UnknownTokenError(tokenId) };
  switch (token.status) {
    case 'consumed':
      return { kind: 'dropped', error: new TokenConsumedError(tokenId), token };
    case 'revoked':
      return { kind: 'dropped', error: new TokenRevokedError(tokenId), token };
    case 'expired':
      return { kind: 'dropped', error: new TokenExpiredError(tokenId), token };
    case 'scheduled':
      // Not due yet: nobody was sent this signal, so a copy is not one to apply. Nothing changes; it is refused.
      throw new InvalidTransitionError(tokenId, 'scheduled', 'consumed');
    default:
      break;
  }
  if (token.expiresAt !== undefined && token.expiresAt <= now) {
    return { kind: 'dropped', error: new TokenExpiredError(tokenId), token };
  }
  if (token.fingerprint !== undefined && token.fingerprint !== payloadFingerprint) {
    return { kind: 'rejected', error: new FingerprintMismatchError(tokenId), token };
  }
  return undefined;
}

export function requireTokenId(value: string | undefined): string {
  if (value === undefined || value === '') {
    throw new InvalidTokenError(ErrorCodes.TOKEN_HEADER_MISSING, 'the signal carries no exactly-once token');
  }
  if (!isTokenId(value)) {
    throw new InvalidTokenError(ErrorCodes.TOKEN_MALFORMED, 'the exactly-once token is malformed', {
      length: String(value).length,
    });
  }
  return value;
}
