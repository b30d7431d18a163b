import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { TollgateError } from '../../core/errors.js';
import { type ProblemAnswer, ProblemError, sendProblem } from './problem-details.js';
import { PROBLEMS, type ProblemKind, problemKindOfCode } from './problems.js';

export interface ProblemMappingOptions {
  /** The token the request carried, when it carried a well-formed one. */
  tokenId?: string;
  /** `Retry-After` of answers whose kind says "retry later". Default 1. */
  retryAfterSeconds?: number;
}

/** Fastify's own client errors whose code says more than their status. */
const BY_FASTIFY_CODE: Readonly<Record<string, ProblemKind>> = {
  FST_ERR_BAD_URL: 'validation',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body-too-large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported-media-type',
};

/** The rest of fastify's client errors, by status; any other 4xx is a request fastify found invalid. */
const BY_FASTIFY_STATUS: Readonly<Record<number, ProblemKind>> = {
  400: 'invalid-payload',
  404: 'not-found',
  405: 'method-not-allowed',
  413: 'body-too-large',
  414: 'uri-too-long',
  415: 'unsupported-media-type',
};

/**
 * The answer to anything a route, the core or fastify throws: the one mapping both the plugin and the gateway
 * use, decided by ProblemError kind, TollgateError code, or fastify's error code and status, never by message.
 * Client errors say what was wrong with the request; server errors say nothing about internals.
 */
export function problemForError(error: unknown, options: ProblemMappingOptions = {}): ProblemAnswer {
  if (error instanceof ProblemError) {
    const answer: ProblemAnswer = { kind: error.kind, detail: error.message };
    const tokenId = error.extra.tokenId ?? options.tokenId;
    if (tokenId !== undefined) answer.tokenId = tokenId;
    if (error.extra.retryAfterSeconds !== undefined) answer.retryAfterSeconds = error.extra.retryAfterSeconds;
    return answer;
  }
  if (error instanceof TollgateError) {
    const kind = problemKindOfCode(error.code);
    const tokenId = typeof error.details.tokenId === 'string' ? error.details.tokenId : options.tokenId;
    return answerOf(kind, error.message, options, { code: error.code, tokenId });
  }
  if (isValidationError(error)) return answerOf('validation', error.message, options);
  const status = statusOf(error);
  if (status !== undefined && status >= 400 && status < 500) {
    const kind = BY_FASTIFY_CODE[codeOf(error)] ?? BY_FASTIFY_STATUS[status] ?? 'validation';
    return answerOf(kind, (error as Error).message, options);
  }
  return answerOf('internal-error', '', options);
}

function answerOf(
  kind: ProblemKind,
  message: string,
  options: ProblemMappingOptions,
  cause: { code?: ProblemAnswer['code']; tokenId?: string | undefined } = {},
): ProblemAnswer {
  const spec: { status: number; description: string; retryLater?: true } = PROBLEMS[kind];
  const answer: ProblemAnswer = { kind, detail: spec.status < 500 ? message : spec.description };
  if (cause.code !== undefined) answer.code = cause.code;
  if (cause.tokenId !== undefined) answer.tokenId = cause.tokenId;
  if (spec.retryLater) answer.retryAfterSeconds = options.retryAfterSeconds ?? 1;
  return answer;
}

/** A fastify error handler answering every error as a problem document rendered with `base`. */
export function problemErrorHandler(
  base?: string,
): (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => FastifyReply {
  return (error, _request, reply) => sendProblem(reply, problemForError(error), base);
}

function isValidationError(error: unknown): error is Error & { validation: unknown } {
  return error instanceof Error && 'validation' in error && error.validation !== undefined;
}

function codeOf(error: unknown): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return typeof code === 'string' ? code : '';
}

function statusOf(error: unknown): number | undefined {
  const status =
    typeof error === 'object' && error !== null && 'statusCode' in error ? error.statusCode : undefined;
  return typeof status === 'number' ? status : undefined;
}
