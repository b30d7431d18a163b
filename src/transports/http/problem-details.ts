import type { FastifyReply } from 'fastify';
import { type Static, Type } from 'typebox';
import type { ErrorCode } from '../../core/errors.js';
import { TOKEN_ID_PATTERN } from '../../core/ids.js';
import { PROBLEM_CONTENT_TYPE, PROBLEM_KINDS, PROBLEMS, type ProblemKind, problemType } from './problems.js';

/**
 * The body of every error answer (RFC 9457 members plus Tollgate's stable `code`): the schema the gateway
 * documents in OpenAPI and clients and tests validate answers with. `type` ends in a kind, after any base.
 */
export const problemDetailsSchema = Type.Object(
  {
    type: Type.String({
      pattern: `(^|[/#:])(${PROBLEM_KINDS.join('|')})$`,
      description: 'the configured base + the kind; GET /problems/{kind} on the gateway describes it',
    }),
    title: Type.String({ minLength: 1 }),
    status: Type.Integer({ minimum: 400, maximum: 599 }),
    detail: Type.String(),
    code: Type.String({ pattern: '^TOLLGATE_ERR_[A-Z_]+$', description: 'stable TOLLGATE_ERR_* code' }),
    tokenId: Type.Optional(Type.String({ pattern: TOKEN_ID_PATTERN })),
  },
  { additionalProperties: false, description: 'RFC 9457 problem details; branch on `type` or `code`' },
);

export type ProblemDetails = Static<typeof problemDetailsSchema>;

/** An error answer before it is rendered with a base: which kind, what happened, and when to come back. */
export interface ProblemAnswer {
  kind: ProblemKind;
  detail: string;
  /** The TollgateError's own code, when one caused it; otherwise the kind's code. */
  code?: ErrorCode;
  /** The token the request carried, when it carried a well-formed one. */
  tokenId?: string;
  /** Seconds for `Retry-After`, on answers where retrying the same request can succeed. */
  retryAfterSeconds?: number;
}

/** A problem a route throws on purpose; the error handler answers it as problem+json. */
export class ProblemError extends Error {
  constructor(
    readonly kind: ProblemKind,
    detail: string,
    readonly extra: { tokenId?: string; retryAfterSeconds?: number } = {},
  ) {
    super(detail);
    this.name = 'ProblemError';
  }
}

export function renderProblem(answer: ProblemAnswer, base?: string): ProblemDetails {
  const spec = PROBLEMS[answer.kind];
  const body: ProblemDetails = {
    type: problemType(answer.kind, base),
    title: spec.title,
    status: spec.status,
    detail: answer.detail,
    code: answer.code ?? spec.code,
  };
  if (answer.tokenId !== undefined) body.tokenId = answer.tokenId;
  return body;
}

export function sendProblem(reply: FastifyReply, answer: ProblemAnswer, base?: string): FastifyReply {
  const body = renderProblem(answer, base);
  reply.code(body.status);
  reply.header('content-type', PROBLEM_CONTENT_TYPE);
  if (answer.retryAfterSeconds !== undefined) reply.header('retry-after', String(answer.retryAfterSeconds));
  // RFC 9110: a 401 says how to authenticate.
  if (answer.kind === 'unauthorized') reply.header('www-authenticate', 'Bearer realm="tollgate"');
  return reply.send(JSON.stringify(body));
}
