import { type ErrorCode, ErrorCodes } from '../../core/errors.js';

/**
 * The one catalogue of problem kinds, shared by the fastify plugin and the gateway. Every error answer is an
 * RFC 9457 problem document whose `type` is the configured base + kind; clients branch on the kind or `code`,
 * never on `detail`.
 */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/**
 * A relative reference, resolved against the server that answered: the gateway (and the plugin, when asked)
 * serves GET /problems/:kind from this catalogue. A deployment may set an absolute base of its own docs.
 */
export const DEFAULT_PROBLEM_BASE = '/problems/';

export interface ProblemSpec {
  status: number;
  title: string;
  /** The code a problem of this kind carries when no TollgateError with a code of its own caused it. */
  code: ErrorCode;
  /** What it means and what to do, in one line (shown on the kind's page). */
  description: string;
  /** Answered with Retry-After: the same request may succeed later. */
  retryLater?: true;
}

export const PROBLEMS = {
  'token-missing': {
    status: 400,
    title: 'Exactly-Once-Token header missing',
    code: ErrorCodes.TOKEN_HEADER_MISSING,
    description: 'The route needs an Exactly-Once-Token header; mint a token for the request and send it.',
  },
  'token-malformed': {
    status: 400,
    title: 'Exactly-Once-Token header malformed',
    code: ErrorCodes.TOKEN_MALFORMED,
    description: 'A token id is 8-128 characters of A-Z a-z 0-9 _ -; send the id the token was minted with.',
  },
  'token-unknown': {
    status: 409,
    title: 'Token unknown',
    code: ErrorCodes.TOKEN_UNKNOWN,
    description:
      'No such token: never minted, or consumed long ago and purged. Nothing changed; do not retry.',
  },
  'token-consumed': {
    status: 409,
    title: 'Token already consumed',
    code: ErrorCodes.TOKEN_CONSUMED,
    description: 'An earlier copy of the request changed state; this one changes nothing. Do not retry.',
  },
  'token-revoked': {
    status: 409,
    title: 'Token revoked',
    code: ErrorCodes.TOKEN_REVOKED,
    description: 'An operator revoked the token; the request changes nothing.',
  },
  'token-expired': {
    status: 409,
    title: 'Token expired',
    code: ErrorCodes.TOKEN_EXPIRED,
    description: 'The token expired before it was used; mint a new one if the change is still wanted.',
  },
  'token-in-progress': {
    status: 409,
    title: 'Another copy of this request is in progress',
    code: ErrorCodes.TOKEN_IN_PROGRESS,
    description: 'A copy with the same token is being processed; retry after Retry-After to get its answer.',
    retryLater: true,
  },
  'token-exists': {
    status: 409,
    title: 'Token exists',
    code: ErrorCodes.TOKEN_EXISTS,
    description: 'A token with this id was issued for a different payload; choose another id.',
  },
  'token-not-pending': {
    status: 409,
    title: 'Token not pending',
    code: ErrorCodes.TOKEN_NOT_PENDING,
    description: 'Only pending tokens can be re-dispatched; this one already moved on.',
  },
  'invalid-transition': {
    status: 409,
    title: 'Token status does not allow this change',
    code: ErrorCodes.INVALID_TRANSITION,
    description: 'The token moved to a status from which this change is not possible; read it again.',
  },
  'own-condition-failed': {
    status: 409,
    title: 'A condition the handler put on its own data failed',
    code: ErrorCodes.OWN_CONDITION_FAILED,
    description: "The handler's own condition did not hold; nothing was written and the token is untouched.",
  },
  'fingerprint-mismatch': {
    status: 422,
    title: 'Token bound to a different payload',
    code: ErrorCodes.FINGERPRINT_MISMATCH,
    description:
      'The token was minted for another payload; nothing changed. Send the payload it was minted for.',
  },
  'destination-mismatch': {
    status: 422,
    title: 'Token minted for another destination',
    code: ErrorCodes.DESTINATION_MISMATCH,
    description: 'The token may only travel to the destination it was minted for.',
  },
  'limit-exceeded': {
    status: 422,
    title: 'Store limit exceeded',
    code: ErrorCodes.LIMIT_EXCEEDED,
    description: 'The answer or the staged changes exceed what the store keeps; nothing was written.',
  },
  'unknown-signal-type': {
    status: 422,
    title: 'Signal type unknown to the process',
    code: ErrorCodes.UNKNOWN_SIGNAL_TYPE,
    description:
      'The process has no step for this signal `type`; nothing changed and the token is untouched. Fix the sender.',
  },
  'schedule-beyond-horizon': {
    status: 422,
    title: 'Signal scheduled beyond the horizon',
    code: ErrorCodes.SCHEDULE_BEYOND_HORIZON,
    description:
      'The handler scheduled a signal due later than the scheduling horizon allows; nothing was written.',
  },
  validation: {
    status: 400,
    title: 'Request invalid',
    code: ErrorCodes.INVALID_ARGUMENT,
    description: 'A parameter, header or body field is not valid; `detail` says which. Fix the request.',
  },
  'invalid-payload': {
    status: 400,
    title: 'Payload is not valid JSON',
    code: ErrorCodes.INVALID_PAYLOAD,
    description: 'The body could not be parsed (or fingerprinted) as JSON; nothing changed.',
  },
  unauthorized: {
    status: 401,
    title: 'API key required',
    code: ErrorCodes.UNAUTHORIZED,
    description: 'Send a valid API key as Authorization: Bearer <key> or X-Api-Key.',
  },
  forbidden: {
    status: 403,
    title: 'API key lacks the scope',
    code: ErrorCodes.FORBIDDEN,
    description: 'The API key is valid but lacks the scope this route needs (read, mint or admin).',
  },
  'not-found': {
    status: 404,
    title: 'Not found',
    code: ErrorCodes.NOT_FOUND,
    description: 'No route or resource at this path.',
  },
  'token-not-found': {
    status: 404,
    title: 'Token not found',
    code: ErrorCodes.TOKEN_NOT_FOUND,
    description: 'No token with this id exists (or it was purged).',
  },
  'conversation-not-found': {
    status: 404,
    title: 'Conversation not found',
    code: ErrorCodes.CONVERSATION_NOT_FOUND,
    description: 'No token belongs to this conversation.',
  },
  'route-not-found': {
    status: 404,
    title: 'Ingress route not found',
    code: ErrorCodes.ROUTE_NOT_FOUND,
    description: 'No ingress route of this name is configured on the gateway.',
  },
  'method-not-allowed': {
    status: 405,
    title: 'Method not allowed',
    code: ErrorCodes.METHOD_NOT_ALLOWED,
    description: 'The path exists but not with this method; the Allow header lists the methods it takes.',
  },
  'body-too-large': {
    status: 413,
    title: 'Request body too large',
    code: ErrorCodes.BODY_TOO_LARGE,
    description: 'The body exceeds the configured limit; nothing was consumed.',
  },
  'uri-too-long': {
    status: 414,
    title: 'URI too long',
    code: ErrorCodes.URI_TOO_LONG,
    description: 'The request URI exceeds what the server accepts.',
  },
  'unsupported-media-type': {
    status: 415,
    title: 'Unsupported request content type',
    code: ErrorCodes.UNSUPPORTED_MEDIA_TYPE,
    description: 'Send the body as application/json.',
  },
  'handler-failed': {
    status: 500,
    title: 'Handler failed',
    code: ErrorCodes.HANDLER_FAILED,
    description: 'The handler threw; nothing was consumed, and the same request may be retried.',
  },
  'internal-error': {
    status: 500,
    title: 'Internal error',
    code: ErrorCodes.INTERNAL,
    description: 'The server failed; nothing was consumed. `code` names the cause; the server log has more.',
  },
  'store-unavailable': {
    status: 503,
    title: 'Token store unavailable',
    code: ErrorCodes.STORE_UNAVAILABLE,
    description: 'The token store did not answer; nothing was consumed. Retry after Retry-After.',
    retryLater: true,
  },
  'state-contention': {
    status: 503,
    title: 'State kept changing under the handler',
    code: ErrorCodes.VERSION_CONFLICT,
    description: 'Concurrent requests kept changing the same state; nothing was consumed. Retry later.',
    retryLater: true,
  },
  'broker-unavailable': {
    status: 503,
    title: 'Broker unavailable',
    code: ErrorCodes.DISPATCH_FAILED,
    description: 'The broker did not confirm the message; retry with the same token, which is always safe.',
    retryLater: true,
  },
  'console-unavailable': {
    status: 503,
    title: 'Console not built',
    code: ErrorCodes.CONSOLE_UNAVAILABLE,
    description:
      'The gateway found no built console to serve: run npm run build:console, then restart the gateway.',
  },
  'shutting-down': {
    status: 503,
    title: 'Shutting down',
    code: ErrorCodes.CLOSED,
    description: 'The server is shutting down; retry against another instance or later.',
  },
} as const satisfies Record<string, ProblemSpec>;

export type ProblemKind = keyof typeof PROBLEMS;

export const PROBLEM_KINDS = Object.keys(PROBLEMS) as ProblemKind[];

type KindCode = (typeof PROBLEMS)[ProblemKind]['code'];

/**
 * Codes that name no kind of their own: failures of the server that a client can do nothing about. Typed so that
 * a new ErrorCode fails to compile until it gets a kind above or a place here.
 */
const INTERNAL_CODES: Record<Exclude<ErrorCode, KindCode>, 'internal-error'> = {
  [ErrorCodes.STORE_FAILURE]: 'internal-error',
  [ErrorCodes.STORE_SCHEMA_MISSING]: 'internal-error',
  [ErrorCodes.CONFIG_INVALID]: 'internal-error',
  // The sender's own failure (its receiver would not issue a token); it reaches a client only as a server fault.
  [ErrorCodes.ISSUE_REFUSED]: 'internal-error',
};

const KIND_BY_CODE: ReadonlyMap<ErrorCode, ProblemKind> = new Map<ErrorCode, ProblemKind>([
  ...PROBLEM_KINDS.map((kind) => [PROBLEMS[kind].code, kind] as const),
  ...(Object.entries(INTERNAL_CODES) as Array<[ErrorCode, ProblemKind]>),
]);

/** The kind every Tollgate error code is answered with. */
export function problemKindOfCode(code: ErrorCode): ProblemKind {
  return KIND_BY_CODE.get(code) ?? 'internal-error';
}

export function isProblemKind(value: string): value is ProblemKind {
  return Object.hasOwn(PROBLEMS, value);
}

export function problemType(kind: ProblemKind, base: string = DEFAULT_PROBLEM_BASE): string {
  return base + kind;
}

/** The kind a problem `type` names, whatever base the answering server was configured with. */
export function problemKindOf(type: unknown): ProblemKind | undefined {
  if (typeof type !== 'string') return undefined;
  const kind = /(?:^|[/#:])([a-z-]+)$/.exec(type)?.[1];
  return kind !== undefined && isProblemKind(kind) ? kind : undefined;
}
