import { ErrorCodes } from '../../core/errors.js';
import type { Issuer, TokenRecord } from '../../core/token.js';
import { HttpDispatchError, parseRetryAfter } from './delivery.js';
import type { HttpRequestSpec } from './exchange.js';
import { PROBLEM_CONTENT_TYPE, problemKindOf } from './problems.js';

/**
 * The application's way from a credential's name (stored on the token) to its secret (never stored). Resolves
 * `undefined` for a name it does not know; the token's signal is then refused for good, not retried.
 */
export type CredentialResolver = (reference: string) => string | undefined | Promise<string | undefined>;

/** The request that issues a token at its receiver, built once per delivery. */
export interface IssueCall {
  request: HttpRequestSpec & { method: 'POST'; body: string };
  /** The issuer's origin, the only part of its address errors and logs name. */
  origin: string;
  credential?: string;
}

/** What the receiver's answer to an issue call means for the signal. */
export type IssueVerdict =
  /** issued now (201) or earlier with the same fingerprint (200): send the signal */
  | { kind: 'issued' }
  /** the receiver already consumed the token: send anyway, the signal's answer is the replayed one */
  | { kind: 'already-applied' }
  /** the receiver is down or busy: try again within the send's budget */
  | { kind: 'retry'; retryAfterMs?: number }
  /** the receiver will never issue it (another fingerprint, a wrong key, a wrong address): never send */
  | { kind: 'refused' };

/** Answers that mean "not now" rather than "no". */
const NOT_NOW: ReadonlySet<number> = new Set([408, 425, 429]);

/**
 * Decided on the status and the problem kind, never on text. Everything not listed as going on or retrying is
 * a refusal: 409 token-exists (the id is bound to another payload), 401/403 (the key), 400/404/413/415/422 (the
 * call or the address), 409 token-revoked/-expired (the receiver ended it).
 */
export function judgeIssueAnswer(
  status: number,
  headers: Headers,
  problemType: string | undefined,
): IssueVerdict {
  if (status >= 200 && status < 300) return { kind: 'issued' };
  if (status === 409 && problemKindOf(problemType) === 'token-consumed') return { kind: 'already-applied' };
  if (NOT_NOW.has(status) || status >= 500) {
    const retryAfterMs = parseRetryAfter(headers.get('retry-after'));
    return retryAfterMs === undefined ? { kind: 'retry' } : { kind: 'retry', retryAfterMs };
  }
  return { kind: 'refused' };
}

/** The receiver will not issue the token, or the sender cannot ask it to: the signal is never sent. */
export class IssueRefusedError extends HttpDispatchError {
  constructor(
    message: string,
    facts: {
      tokenId: string;
      issuer: string;
      credential?: string;
      status?: number;
      problemType?: string;
      attempts: number;
    },
  ) {
    super(message, { ...facts, retriable: false }, undefined, ErrorCodes.ISSUE_REFUSED);
  }
}

/**
 * The issue call for a token bound for `issuer`, with the credential resolved. The secret goes into the
 * Authorization header and nowhere else: errors name the credential, never its value.
 */
export async function issueCallFor(
  token: TokenRecord,
  issuer: Issuer,
  resolve: CredentialResolver | undefined,
): Promise<IssueCall> {
  const origin = new URL(issuer.url).origin;
  const refusal = (why: string) =>
    new IssueRefusedError(`cannot issue token ${token.id} at ${origin}: ${why}`, {
      tokenId: token.id,
      issuer: origin,
      ...(issuer.credential === undefined ? {} : { credential: issuer.credential }),
      attempts: 0,
    });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: `application/json, ${PROBLEM_CONTENT_TYPE}`,
  };
  if (issuer.credential !== undefined) {
    if (resolve === undefined) throw refusal(`no credential resolver to resolve "${issuer.credential}"`);
    const secret = await resolve(issuer.credential);
    if (secret === undefined) throw refusal(`the resolver does not know credential "${issuer.credential}"`);
    if (typeof secret !== 'string' || !SENDABLE_SECRET.test(secret)) {
      throw refusal(`credential "${issuer.credential}" resolved to a value that cannot be sent as a key`);
    }
    headers.authorization = `Bearer ${secret}`;
  }
  const body: Record<string, string> = { id: token.id };
  if (token.fingerprint !== undefined) body.fingerprint = token.fingerprint;
  // A message bridged from outside may carry no conversation: the receiver then starts one.
  if (token.conversationId !== '') body.conversationId = token.conversationId;
  if (token.parentId !== undefined) body.parentId = token.parentId;
  if (token.expiresAt !== undefined) body.expiresAt = new Date(token.expiresAt).toISOString();
  const call: IssueCall = {
    request: { method: 'POST', url: issuer.url, headers, body: JSON.stringify(body) },
    origin,
  };
  if (issuer.credential !== undefined) call.credential = issuer.credential;
  return call;
}

/** Visible ASCII only: a header value that HTTP would refuse (and quote in its error) is never tried. */
const SENDABLE_SECRET = /^[\x21-\x7e]{1,4096}$/;
