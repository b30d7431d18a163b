import { InvalidArgumentError } from './errors.js';
import { fingerprint, type JsonValue } from './fingerprint.js';
import { isConversationId, newConversationId, newTokenId } from './ids.js';
import type { Destination, Issuer, TokenRecord } from './token.js';

export interface SignalSpec {
  destination: Destination;
  payload: JsonValue;
  headers?: Record<string, string>;
}

export interface MintContext {
  mintedBy: string;
  conversationId?: string;
  parentId?: string;
  now: number;
}

/** Builds the `pending` token of a signal: the token is also the outbox entry, so it carries payload and destination. */
export function pendingToken(signal: SignalSpec, context: MintContext): TokenRecord {
  validateDestination(signal.destination);
  if (context.conversationId !== undefined && !isConversationId(context.conversationId)) {
    throw new InvalidArgumentError('conversationId must be 8-128 characters of A-Z a-z 0-9 _ -', {
      conversationId: context.conversationId,
    });
  }
  const token: TokenRecord = {
    id: newTokenId(),
    conversationId: context.conversationId ?? newConversationId(),
    mintedBy: context.mintedBy,
    destination: signal.destination,
    fingerprint: fingerprint(signal.payload),
    payload: signal.payload,
    status: 'pending',
    mintedAt: context.now,
    attempts: 0,
  };
  if (context.parentId !== undefined) token.parentId = context.parentId;
  if (signal.headers !== undefined) token.headers = { ...signal.headers };
  return token;
}

export function validateDestination(destination: Destination): void {
  if (destination.medium === 'amqp') {
    if (typeof destination.exchange !== 'string' || typeof destination.routingKey !== 'string') {
      throw new InvalidArgumentError('an AMQP destination needs string exchange and routingKey');
    }
    return;
  }
  if (destination.medium === 'http') {
    let url: URL;
    try {
      url = new URL(destination.url);
    } catch {
      throw new InvalidArgumentError(`destination url "${destination.url}" is not an absolute URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new InvalidArgumentError(`destination url must be http(s), got ${url.protocol}`);
    }
    if (!/^[A-Z]+$/.test(destination.method)) {
      throw new InvalidArgumentError(
        `destination method "${destination.method}" must be an upper-case HTTP method`,
      );
    }
    if (destination.issuer !== undefined) validateIssuer(destination.issuer);
    return;
  }
  throw new InvalidArgumentError('destination.medium must be "amqp" or "http"');
}

/** A credential is named, never given: the name is stored on the token, the secret stays with the resolver. */
const CREDENTIAL_REFERENCE = /^[A-Za-z0-9._:-]{1,128}$/;

function validateIssuer(issuer: Issuer): void {
  if (typeof issuer !== 'object' || issuer === null) {
    throw new InvalidArgumentError('destination issuer must be an object with a url');
  }
  if (!isHttpUrl(issuer.url)) {
    throw new InvalidArgumentError('destination issuer url must be an absolute http(s) URL');
  }
  if (issuer.credential !== undefined) {
    if (typeof issuer.credential !== 'string' || !CREDENTIAL_REFERENCE.test(issuer.credential)) {
      // The value is not echoed: someone may have put the secret itself here.
      throw new InvalidArgumentError(
        'destination issuer credential must name a credential: 1-128 characters of A-Z a-z 0-9 . _ : -',
      );
    }
  }
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}
