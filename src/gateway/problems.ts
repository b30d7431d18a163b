import type { FastifyReply } from 'fastify';
import { type ErrorCode, ErrorCodes, TollgateError } from '../core/errors.js';

export const PROBLEM_BASE = 'https://tollgate.dev/problems/';
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The stable problem kinds; `type` is PROBLEM_BASE + kind. Clients branch on these, never on `detail`. */
export const PROBLEM_KINDS = {
  validation: 400,
  'invalid-json': 400,
  'invalid-payload': 400,
  'token-missing': 400,
  'token-malformed': 400,
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  'token-not-found': 404,
  'conversation-not-found': 404,
  'route-not-found': 404,
  'method-not-allowed': 405,
  'token-exists': 409,
  'token-unknown': 409,
  'token-consumed': 409,
  'token-revoked': 409,
  'token-expired': 409,
  'token-not-pending': 409,
  'body-too-large': 413,
  'uri-too-long': 414,
  'unsupported-media-type': 415,
  'fingerprint-mismatch': 422,
  'destination-mismatch': 422,
  'limit-exceeded': 422,
  'internal-error': 500,
  'store-unavailable': 503,
  'broker-unavailable': 503,
  'shutting-down': 503,
} as const;

export type ProblemKind = keyof typeof PROBLEM_KINDS;

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** TOLLGATE_ERR_* when the problem comes from a Tollgate error. */
  code?: string;
  tokenId?: string;
  setting?: string;
}

/** A problem a route throws on purpose; the error handler turns it into problem+json. */
export class ProblemError extends Error {
  constructor(
    readonly kind: ProblemKind,
    detail: string,
    readonly extra: { code?: ErrorCode; tokenId?: string; retryAfterSeconds?: number } = {},
  ) {
    super(detail);
    this.name = 'ProblemError';
  }
}

export function problem(
  kind: ProblemKind,
  detail: string,
  extra: Omit<Problem, 'type' | 'title' | 'status' | 'detail'> = {},
): Problem {
  return { type: PROBLEM_BASE + kind, title: titleOf(kind), status: PROBLEM_KINDS[kind], detail, ...extra };
}

function titleOf(kind: ProblemKind): string {
  return kind.charAt(0).toUpperCase() + kind.slice(1).replaceAll('-', ' ');
}

/** Tollgate error codes → problem kinds. Decided by code, never by message text. */
const BY_CODE: Partial<Record<ErrorCode, ProblemKind>> = {
  [ErrorCodes.TOKEN_HEADER_MISSING]: 'token-missing',
  [ErrorCodes.TOKEN_MALFORMED]: 'token-malformed',
  [ErrorCodes.TOKEN_UNKNOWN]: 'token-unknown',
  [ErrorCodes.TOKEN_CONSUMED]: 'token-consumed',
  [ErrorCodes.TOKEN_REVOKED]: 'token-revoked',
  [ErrorCodes.TOKEN_EXPIRED]: 'token-expired',
  [ErrorCodes.TOKEN_EXISTS]: 'token-exists',
  [ErrorCodes.FINGERPRINT_MISMATCH]: 'fingerprint-mismatch',
  [ErrorCodes.INVALID_PAYLOAD]: 'invalid-payload',
  [ErrorCodes.INVALID_ARGUMENT]: 'validation',
  [ErrorCodes.LIMIT_EXCEEDED]: 'limit-exceeded',
  [ErrorCodes.STORE_UNAVAILABLE]: 'store-unavailable',
  [ErrorCodes.DISPATCH_FAILED]: 'broker-unavailable',
  [ErrorCodes.CLOSED]: 'shutting-down',
};

/** Fastify's own client errors, by HTTP status (fastify errors carry `statusCode`; we never parse messages). */
const BY_FASTIFY_STATUS: Record<number, ProblemKind> = {
  400: 'invalid-json',
  404: 'not-found',
  405: 'method-not-allowed',
  413: 'body-too-large',
  414: 'uri-too-long',
  415: 'unsupported-media-type',
};

/** Fastify error codes whose status alone would be misleading (a bad URL is a 400, but not bad JSON). */
const BY_FASTIFY_CODE: Record<string, ProblemKind> = {
  FST_ERR_BAD_URL: 'validation',
};

export interface MappedProblem {
  problem: Problem;
  retryAfterSeconds?: number;
}

/** Turns anything a route or fastify throws into a problem; unknown errors become a 500 without internals. */
export function toProblem(error: unknown): MappedProblem {
  if (error instanceof ProblemError) {
    const extra: Omit<Problem, 'type' | 'title' | 'status' | 'detail'> = {};
    if (error.extra.code) extra.code = error.extra.code;
    if (error.extra.tokenId) extra.tokenId = error.extra.tokenId;
    const mapped: MappedProblem = { problem: problem(error.kind, error.message, extra) };
    if (error.extra.retryAfterSeconds !== undefined) mapped.retryAfterSeconds = error.extra.retryAfterSeconds;
    return mapped;
  }
  if (error instanceof TollgateError) {
    const kind = BY_CODE[error.code] ?? 'internal-error';
    const extra: Omit<Problem, 'type' | 'title' | 'status' | 'detail'> = { code: error.code };
    if (typeof error.details.tokenId === 'string') extra.tokenId = error.details.tokenId;
    const detail = kind === 'internal-error' ? 'internal error' : error.message;
    const mapped: MappedProblem = { problem: problem(kind, detail, extra) };
    if (kind === 'store-unavailable' || kind === 'broker-unavailable') mapped.retryAfterSeconds = 1;
    return mapped;
  }
  if (isValidationError(error)) {
    return { problem: problem('validation', error.message) };
  }
  const status = statusOf(error);
  if (status !== undefined && status >= 400 && status < 500) {
    const kind = BY_FASTIFY_CODE[codeOf(error)] ?? BY_FASTIFY_STATUS[status] ?? 'validation';
    return { problem: { ...problem(kind, (error as Error).message), status } };
  }
  return { problem: problem('internal-error', 'internal error') };
}

function isValidationError(error: unknown): error is Error & { validation: unknown } {
  return error instanceof Error && 'validation' in error && error.validation !== undefined;
}

function codeOf(error: unknown): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return typeof code === 'string' ? code : '';
}

function statusOf(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'statusCode' in error) {
    const status = (error as { statusCode: unknown }).statusCode;
    return typeof status === 'number' ? status : undefined;
  }
  return undefined;
}

export function sendProblem(reply: FastifyReply, mapped: MappedProblem): FastifyReply {
  if (mapped.retryAfterSeconds !== undefined) reply.header('retry-after', String(mapped.retryAfterSeconds));
  if (mapped.problem.status === 401) reply.header('www-authenticate', 'Bearer realm="tollgate"');
  return reply.code(mapped.problem.status).type(PROBLEM_CONTENT_TYPE).send(mapped.problem);
}
