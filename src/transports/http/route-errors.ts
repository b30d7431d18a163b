import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ProblemAnswer } from './answers.js';
import { type ProblemKind, problem } from './problems.js';
import { sendProblem } from './responses.js';

/**
 * Errors fastify raises before the handler runs (body too large, unparsable JSON, unsupported media type,
 * schema validation) answered as problem documents like every other error of an exactly-once route.
 * Nothing was consumed in any of these cases. Branches on fastify's stable error codes, never on messages.
 */
export function problemErrorHandler(
  error: FastifyError,
  _request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  return sendProblem(reply, fastifyErrorAnswer(error));
}

function fastifyErrorAnswer(error: FastifyError): ProblemAnswer {
  const kind = kindOf(error);
  // Client errors say what was wrong with the request; server errors say nothing about internals.
  const detail =
    kind === 'internal-error' ? 'The request could not be processed; nothing was consumed.' : error.message;
  return { body: problem(kind, detail) };
}

function kindOf(error: FastifyError): ProblemKind {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'body-too-large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported-media-type';
    default:
      break;
  }
  const status = error.statusCode ?? 500;
  if (status === 413) return 'body-too-large';
  if (status === 415) return 'unsupported-media-type';
  return status >= 400 && status < 500 ? 'invalid-payload' : 'internal-error';
}
