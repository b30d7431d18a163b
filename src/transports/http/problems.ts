import { type ErrorCode, ErrorCodes } from '../../core/errors.js';

/** Every error answer of an exactly-once route is an RFC 9457 problem document of one of these types. */
export const PROBLEM_BASE = 'https://tollgate.dev/problems/';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export type ProblemKind =
  | 'token-missing'
  | 'token-malformed'
  | 'token-unknown'
  | 'token-consumed'
  | 'token-revoked'
  | 'token-expired'
  | 'token-in-progress'
  | 'fingerprint-mismatch'
  | 'invalid-payload'
  | 'body-too-large'
  | 'unsupported-media-type'
  | 'store-unavailable'
  | 'state-contention'
  | 'own-condition-failed'
  | 'handler-failed'
  | 'response-too-large'
  | 'internal-error';

interface ProblemSpec {
  status: number;
  title: string;
  code: ErrorCode;
}

const SPECS: Readonly<Record<ProblemKind, ProblemSpec>> = {
  'token-missing': {
    status: 400,
    title: 'Exactly-Once-Token header missing',
    code: ErrorCodes.TOKEN_HEADER_MISSING,
  },
  'token-malformed': {
    status: 400,
    title: 'Exactly-Once-Token header malformed',
    code: ErrorCodes.TOKEN_MALFORMED,
  },
  'token-unknown': { status: 409, title: 'Token unknown', code: ErrorCodes.TOKEN_UNKNOWN },
  'token-consumed': { status: 409, title: 'Token already consumed', code: ErrorCodes.TOKEN_CONSUMED },
  'token-revoked': { status: 409, title: 'Token revoked', code: ErrorCodes.TOKEN_REVOKED },
  'token-expired': { status: 409, title: 'Token expired', code: ErrorCodes.TOKEN_EXPIRED },
  'token-in-progress': {
    status: 409,
    title: 'Another copy of this request is in progress',
    code: ErrorCodes.TOKEN_IN_PROGRESS,
  },
  'fingerprint-mismatch': {
    status: 422,
    title: 'Token bound to a different payload',
    code: ErrorCodes.FINGERPRINT_MISMATCH,
  },
  'invalid-payload': { status: 400, title: 'Payload is not valid JSON', code: ErrorCodes.INVALID_PAYLOAD },
  'body-too-large': { status: 413, title: 'Request body too large', code: ErrorCodes.LIMIT_EXCEEDED },
  'unsupported-media-type': {
    status: 415,
    title: 'Unsupported request content type',
    code: ErrorCodes.INVALID_PAYLOAD,
  },
  'store-unavailable': {
    status: 503,
    title: 'Token store unavailable',
    code: ErrorCodes.STORE_UNAVAILABLE,
  },
  'state-contention': {
    status: 503,
    title: 'State kept changing under the handler',
    code: ErrorCodes.VERSION_CONFLICT,
  },
  'own-condition-failed': {
    status: 409,
    title: 'A condition the handler put on its own data failed',
    code: ErrorCodes.OWN_CONDITION_FAILED,
  },
  'handler-failed': { status: 500, title: 'Handler failed', code: ErrorCodes.HANDLER_FAILED },
  'response-too-large': {
    status: 500,
    title: 'Response too large to keep for replay',
    code: ErrorCodes.LIMIT_EXCEEDED,
  },
  'internal-error': { status: 500, title: 'Internal error', code: ErrorCodes.STORE_FAILURE },
};

/** The body of an error answer (RFC 9457 members plus Tollgate's stable `code`). */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  /** The token the request carried, when it carried a well-formed one. */
  tokenId?: string;
}

export function problemType(kind: ProblemKind): string {
  return PROBLEM_BASE + kind;
}

/** The kind a problem `type` URI names, if it is one of ours. */
export function problemKindOf(type: unknown): ProblemKind | undefined {
  if (typeof type !== 'string' || !type.startsWith(PROBLEM_BASE)) return undefined;
  const kind = type.slice(PROBLEM_BASE.length);
  return kind in SPECS ? (kind as ProblemKind) : undefined;
}

export function problem(kind: ProblemKind, detail: string, tokenId?: string): ProblemDetails {
  const spec = SPECS[kind];
  const body: ProblemDetails = {
    type: problemType(kind),
    title: spec.title,
    status: spec.status,
    detail,
    code: spec.code,
  };
  if (tokenId !== undefined) body.tokenId = tokenId;
  return body;
}

/** JSON schema (draft-07) of every problem body; published so clients and tests can validate answers. */
export const problemDetailsSchema = {
  $id: 'https://tollgate.dev/schemas/problem-details.json',
  type: 'object',
  required: ['type', 'title', 'status', 'detail', 'code'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', enum: Object.keys(SPECS).map((kind) => PROBLEM_BASE + kind) },
    title: { type: 'string', minLength: 1 },
    status: { type: 'integer', minimum: 400, maximum: 599 },
    detail: { type: 'string' },
    code: { type: 'string', pattern: '^TOLLGATE_ERR_[A-Z_]+$' },
    tokenId: { type: 'string', pattern: '^[A-Za-z0-9_-]{8,128}$' },
  },
} as const;
