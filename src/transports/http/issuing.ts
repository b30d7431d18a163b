import type { FastifyReply, FastifyRequest } from 'fastify';
import { fingerprint as fingerprintOf } from '../../core/fingerprint.js';
import { newConversationId, newTokenId } from '../../core/ids.js';
import { validateDestination } from '../../core/mint.js';
import type { Observer } from '../../core/observer.js';
import type { TokenStore } from '../../core/store.js';
import type { TokenRecord } from '../../core/token.js';
import { ProblemError } from './problem-details.js';
import type { ProblemKind } from './problems.js';
import {
  type IssueBody,
  issueBodySchema,
  problems,
  type TokenView,
  tokenView,
  tokenViewSchema,
} from './token-schemas.js';

/** Where the plugin's issuing route listens unless told otherwise: the gateway's path, for one contract. */
export const DEFAULT_ISSUING_PATH = '/v1/tokens';

/**
 * Issuing a token to an outside caller: the one implementation behind the gateway's POST /v1/tokens and the
 * plugin's issuing route. The caller chooses the id, so a repeated call (a retry, a relay re-send) is the same
 * issue and gets the same token back; the id is bound to the payload's fingerprint, so it cannot be reused for
 * another payload.
 */
export interface IssueSettings {
  store: TokenStore;
  /** Recorded as the issued token's `mintedBy`. */
  mintedBy: string;
  /** Expiry of a token whose caller sets none. */
  defaultTtlMs: number;
  clock: () => number;
  observer: Pick<Required<Observer>, 'minted'>;
  /** The `Location` of a 201: where the issued token can be read. */
  location: (id: string) => string;
}

/** The issued token, and whether this call created it (false: the same issue again). */
export interface Issued {
  token: TokenRecord;
  created: boolean;
}

/** The route schema of an issuing route: the OpenAPI operation, its body and its answers. */
export const issueRouteSchema = {
  operationId: 'issueToken',
  summary: 'Issue a token to an outside caller (idempotent with a caller-chosen id)',
  tags: ['tokens'],
  body: issueBodySchema,
  response: {
    201: tokenViewSchema,
    200: tokenViewSchema,
    ...problems(400, 401, 403, 409, 413, 415, 503),
  },
};

/** Issues the token the body asks for, or finds the same issue again; refusals are thrown as problems. */
export async function issueToken(body: IssueBody, settings: IssueSettings): Promise<Issued> {
  const requested = requestedToken(body, settings);
  const result = await settings.store.issue(requested);
  if (result.created) return { token: requested, created: true };
  return { token: sameIssue(result.existing, requested), created: false };
}

/**
 * Answers an issuing request: the token's view, with 201 and `Location` for a new token, 200 for a repeat. The
 * handler returns it, so the route's response schema serialises it.
 */
export async function answerIssue(
  body: IssueBody,
  request: FastifyRequest,
  reply: FastifyReply,
  settings: IssueSettings,
): Promise<TokenView> {
  const { token, created } = await issueToken(body, settings);
  if (!created) {
    reply.code(200);
    return tokenView(token);
  }
  settings.observer.minted([token], settings.mintedBy);
  request.log.info(
    { token: token.id, conversation: token.conversationId, endpoint: settings.mintedBy },
    'token issued',
  );
  reply.code(201).header('location', settings.location(token.id));
  return tokenView(token);
}

function requestedToken(body: IssueBody, settings: IssueSettings): TokenRecord {
  const now = settings.clock();
  if (body.fingerprint !== undefined && body.payload !== undefined) {
    throw new ProblemError('validation', 'give fingerprint or payload, not both');
  }
  if (body.expiresInMs !== undefined && body.expiresAt !== undefined) {
    throw new ProblemError('validation', 'give expiresInMs or expiresAt, not both');
  }
  const expiresAt =
    body.expiresAt !== undefined
      ? Date.parse(body.expiresAt)
      : now + (body.expiresInMs ?? settings.defaultTtlMs);
  if (!Number.isFinite(expiresAt) || expiresAt <= now) {
    throw new ProblemError('validation', 'expiresAt must be a valid instant in the future');
  }
  if (body.destination !== undefined) validateDestination(body.destination);
  const fingerprint =
    body.fingerprint ?? (body.payload !== undefined ? fingerprintOf(body.payload) : undefined);
  const token: TokenRecord = {
    id: body.id ?? newTokenId(),
    conversationId: body.conversationId ?? newConversationId(),
    mintedBy: settings.mintedBy,
    status: 'issued',
    mintedAt: now,
    attempts: 0,
    expiresAt,
  };
  if (body.parentId !== undefined) token.parentId = body.parentId;
  if (fingerprint !== undefined) token.fingerprint = fingerprint;
  if (body.destination !== undefined) token.destination = body.destination;
  return token;
}

/** An existing token answers a repeated issue only if it is the same, still usable token. */
function sameIssue(existing: TokenRecord, requested: TokenRecord): TokenRecord {
  const id = existing.id;
  if (existing.status === 'consumed' || existing.status === 'revoked' || existing.status === 'expired') {
    throw new ProblemError(
      endedKind(existing.status),
      `token ${id} exists and was already ${existing.status}`,
      { tokenId: id },
    );
  }
  if (existing.fingerprint !== requested.fingerprint) {
    throw new ProblemError('token-exists', `token ${id} exists with a different payload fingerprint`, {
      tokenId: id,
    });
  }
  return existing;
}

/** The problem of a token that can no longer be used (or changed). */
export function endedKind(status: string): ProblemKind {
  if (status === 'consumed') return 'token-consumed';
  if (status === 'revoked') return 'token-revoked';
  if (status === 'expired') return 'token-expired';
  return 'token-not-pending';
}
