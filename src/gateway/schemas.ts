import { TOKEN_STATUSES, type TokenRecord } from '../core/token.js';

/**
 * JSON schemas of every request and response. Fastify validates and serialises with them, and the OpenAPI
 * document is generated from the very same objects, so the document cannot drift from the behaviour.
 */
export type JsonSchema = Readonly<Record<string, unknown>>;

export const ID_PATTERN = '^[A-Za-z0-9_-]{8,128}$';
export const FINGERPRINT_PATTERN = '^[0-9a-f]{64}$';
const ISO_INSTANT = { type: 'string', format: 'date-time' } as const;

export const problemSchema: JsonSchema = {
  type: 'object',
  description: 'RFC 9457 problem details; `type` is https://tollgate.dev/problems/<kind> and is stable.',
  required: ['type', 'title', 'status', 'detail'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string', description: 'TOLLGATE_ERR_* code when a Tollgate error caused it' },
    tokenId: { type: 'string' },
  },
};

export const destinationSchema: JsonSchema = {
  oneOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['medium', 'exchange', 'routingKey'],
      properties: {
        medium: { type: 'string', enum: ['amqp'] },
        exchange: { type: 'string', maxLength: 255 },
        routingKey: { type: 'string', maxLength: 255 },
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['medium', 'method', 'url'],
      properties: {
        medium: { type: 'string', enum: ['http'] },
        method: { type: 'string', pattern: '^[A-Z]{3,7}$' },
        url: { type: 'string', format: 'uri', maxLength: 2048 },
      },
    },
  ],
};

/** Response shape of a destination: both variants' fields, so the serialiser keeps whichever is present. */
const destinationOut: JsonSchema = {
  type: 'object',
  properties: {
    medium: { type: 'string', enum: ['amqp', 'http'] },
    exchange: { type: 'string' },
    routingKey: { type: 'string' },
    method: { type: 'string' },
    url: { type: 'string' },
  },
};

export const tokenViewSchema: JsonSchema = {
  type: 'object',
  required: ['id', 'status', 'conversationId', 'mintedBy', 'mintedAt', 'attempts'],
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: [...TOKEN_STATUSES] },
    conversationId: { type: 'string' },
    parentId: { type: 'string' },
    mintedBy: { type: 'string' },
    destination: destinationOut,
    fingerprint: { type: 'string' },
    mintedAt: ISO_INSTANT,
    dispatchedAt: ISO_INSTANT,
    expiresAt: ISO_INSTANT,
    consumedAt: ISO_INSTANT,
    consumedBy: { type: 'string' },
    attempts: { type: 'integer' },
  },
};

export interface TokenView {
  id: string;
  status: TokenRecord['status'];
  conversationId: string;
  parentId?: string;
  mintedBy: string;
  destination?: TokenRecord['destination'];
  fingerprint?: string;
  mintedAt: string;
  dispatchedAt?: string;
  expiresAt?: string;
  consumedAt?: string;
  consumedBy?: string;
  attempts: number;
}

/** What the API shows of a token: never its payload, headers, stored response or lease bookkeeping. */
export function tokenView(token: TokenRecord): TokenView {
  const view: TokenView = {
    id: token.id,
    status: token.status,
    conversationId: token.conversationId,
    mintedBy: token.mintedBy,
    mintedAt: iso(token.mintedAt),
    attempts: token.attempts,
  };
  if (token.parentId !== undefined) view.parentId = token.parentId;
  if (token.destination !== undefined) view.destination = token.destination;
  if (token.fingerprint !== undefined) view.fingerprint = token.fingerprint;
  if (token.dispatchedAt !== undefined) view.dispatchedAt = iso(token.dispatchedAt);
  if (token.expiresAt !== undefined) view.expiresAt = iso(token.expiresAt);
  if (token.consumedAt !== undefined) view.consumedAt = iso(token.consumedAt);
  if (token.consumedBy !== undefined) view.consumedBy = token.consumedBy;
  return view;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export const idParams: JsonSchema = {
  type: 'object',
  required: ['id'],
  properties: {
    id: { type: 'string', pattern: ID_PATTERN, description: 'token id (8-128 of A-Z a-z 0-9 _ -)' },
  },
};

export const issueBodySchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  description:
    'Give either `fingerprint` (sha-256 hex of the canonical JSON payload) or `payload` (fingerprinted here), or ' +
    'neither for a token not bound to a payload; `expiresInMs` or `expiresAt`, or neither for the default expiry.',
  properties: {
    id: { type: 'string', pattern: ID_PATTERN, description: 'caller-chosen id; makes the call idempotent' },
    fingerprint: { type: 'string', pattern: FINGERPRINT_PATTERN },
    payload: { description: 'any JSON value; only its fingerprint is kept' },
    destination: destinationSchema,
    expiresInMs: { type: 'integer', minimum: 1000, maximum: 31_536_000_000 },
    expiresAt: ISO_INSTANT,
    conversationId: { type: 'string', pattern: ID_PATTERN },
  },
};

export interface IssueBody {
  id?: string;
  fingerprint?: string;
  payload?: unknown;
  destination?: TokenRecord['destination'];
  expiresInMs?: number;
  expiresAt?: string;
  conversationId?: string;
}

export const listQuerySchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    status: {
      type: 'string',
      enum: [...TOKEN_STATUSES],
      description: 'required unless `conversation` is given',
    },
    conversation: { type: 'string', pattern: ID_PATTERN },
    olderThan: {
      type: 'string',
      pattern: '^([0-9]{1,15}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2}))$',
      description: 'only tokens minted before: an age in milliseconds, or an ISO 8601 instant',
    },
    limit: { type: 'string', pattern: '^([1-9][0-9]{0,2}|1000)$', description: '1-1000, default 100' },
    cursor: { type: 'string', maxLength: 512, pattern: '^[A-Za-z0-9_-]+$' },
  },
};

export interface ListQuery {
  status?: TokenRecord['status'];
  conversation?: string;
  olderThan?: string;
  limit?: string;
  cursor?: string;
}

export const tokenPageSchema: JsonSchema = {
  type: 'object',
  required: ['items'],
  properties: {
    items: { type: 'array', items: tokenViewSchema },
    cursor: { type: 'string', description: 'pass back to get the next page; absent on the last page' },
  },
};

export const conversationSchema: JsonSchema = {
  type: 'object',
  required: ['id', 'nodes', 'edges', 'truncated'],
  properties: {
    id: { type: 'string' },
    nodes: { type: 'array', items: tokenViewSchema },
    edges: {
      type: 'array',
      items: {
        type: 'object',
        required: ['from', 'to'],
        properties: { from: { type: 'string' }, to: { type: 'string' } },
      },
    },
    truncated: {
      type: 'boolean',
      description: 'true when the conversation has more tokens than one answer shows',
    },
  },
};

export const redispatchSchema: JsonSchema = {
  type: 'object',
  required: ['id', 'status', 'relayTriggered'],
  properties: {
    id: { type: 'string' },
    status: { type: 'string' },
    relayTriggered: { type: 'boolean' },
  },
};

export const signalParams: JsonSchema = {
  type: 'object',
  required: ['route'],
  properties: { route: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } },
};

export const signalHeaders: JsonSchema = {
  type: 'object',
  required: ['exactly-once-token'],
  properties: {
    'exactly-once-token': {
      type: 'string',
      pattern: ID_PATTERN,
      description:
        'the token minted for this signal (missing → 400 token-missing, malformed → 400 token-malformed)',
    },
  },
};

export const signalAcceptedSchema: JsonSchema = {
  type: 'object',
  required: ['token', 'route', 'exchange', 'routingKey'],
  properties: {
    token: { type: 'string' },
    conversationId: { type: 'string' },
    route: { type: 'string' },
    exchange: { type: 'string' },
    routingKey: { type: 'string' },
  },
};

export const healthSchema: JsonSchema = {
  type: 'object',
  required: ['status'],
  properties: {
    status: { type: 'string', enum: ['ok', 'unavailable'] },
    checks: {
      type: 'object',
      properties: { store: { type: 'string' }, broker: { type: 'string' }, lifecycle: { type: 'string' } },
    },
  },
};

/** Problem responses a route can give, keyed by status, all with the problem schema. */
export function problems(...statuses: number[]): Record<string, JsonSchema> {
  return Object.fromEntries(statuses.map((s) => [String(s), problemSchema]));
}
