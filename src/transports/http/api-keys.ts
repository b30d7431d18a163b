import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ProblemError } from './problem-details.js';

/**
 * read: GET routes. mint: issuing tokens and the gateway's HTTP ingress (what an outside caller needs).
 * admin: everything, including redispatch and revoke.
 */
export type Scope = 'read' | 'mint' | 'admin';

/** Accepted API keys per scope; admin implies read and mint. */
export interface KeysByScope {
  read?: readonly string[];
  mint?: readonly string[];
  admin?: readonly string[];
}

interface KeyEntry {
  digest: Buffer;
  scopes: ReadonlySet<Scope>;
}

/**
 * Checks presented API keys against the configured ones without leaking, through timing, which key is close.
 * The one key check of the gateway and of the plugin's issuing route.
 */
export class ApiKeys {
  private readonly entries: KeyEntry[];

  constructor(keys: KeysByScope) {
    const add = (presented: readonly string[] = [], scopes: Scope[]) =>
      presented.map((key) => ({ digest: sha256(key), scopes: new Set(scopes) }));
    this.entries = [
      ...add(keys.read, ['read']),
      ...add(keys.mint, ['mint']),
      ...add(keys.admin, ['admin', 'read', 'mint']),
    ];
  }

  /** No key configured: the API is open (and the gateway binds to loopback only). */
  get enabled(): boolean {
    return this.entries.length > 0;
  }

  /** Scopes of a presented key; empty when it matches none. */
  scopesOf(presented: string): ReadonlySet<Scope> {
    // Comparing fixed-length digests makes timingSafeEqual applicable and hides the key length; every entry is
    // compared so the time does not depend on which one matches.
    const digest = sha256(presented);
    const scopes = new Set<Scope>();
    for (const entry of this.entries) {
      if (timingSafeEqual(digest, entry.digest)) for (const scope of entry.scopes) scopes.add(scope);
    }
    return scopes;
  }

  /** Throws a 401/403 problem unless the request carries a key with `scope`. */
  authorize(request: FastifyRequest, scope: Scope): void {
    if (!this.enabled) return;
    const presented = presentedKey(request);
    if (presented === undefined)
      throw new ProblemError(
        'unauthorized',
        'an API key is required (Authorization: Bearer <key> or X-Api-Key)',
      );
    const scopes = this.scopesOf(presented);
    if (scopes.size === 0) throw new ProblemError('unauthorized', 'the API key is not valid');
    if (!scopes.has(scope)) throw new ProblemError('forbidden', `this API key lacks the "${scope}" scope`);
  }

  /**
   * An onRequest hook requiring `scope`. It runs before body parsing, so an unauthenticated caller cannot make
   * the server read a large body.
   */
  hook(scope: Scope): (request: FastifyRequest) => Promise<void> {
    return async (request) => this.authorize(request, scope);
  }
}

/** `X-Api-Key: <key>` or `Authorization: Bearer <key>`. */
function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return header;
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (match?.[1]) return match[1];
  }
  return undefined;
}

function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
