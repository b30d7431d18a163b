import { type Static, Type } from 'typebox';
import { TOKEN_ID_PATTERN } from '../core/ids.js';
import { TOKEN_STATUSES, type TokenRecord, type TokenStatus } from '../core/token.js';
import { PROBLEM_CONTENT_TYPE, problemDetailsSchema } from '../transports/http/index.js';

/**
 * TypeBox schemas of every request and response. Fastify validates and serialises with them, the route types
 * come from them (TypeBox type provider), and @fastify/swagger generates the OpenAPI document from the very same
 * objects, so neither the types nor the document can drift from the behaviour.
 */
export const FINGERPRINT_PATTERN = '^[0-9a-f]{64}$';
const isoInstant = () => Type.String({ format: 'date-time' });
const tokenId = (description?: string) =>
  Type.String({ pattern: TOKEN_ID_PATTERN, ...(description ? { description } : {}) });
const tokenStatus = (description?: string) =>
  Type.Unsafe<TokenStatus>(Type.Enum([...TOKEN_STATUSES], description ? { description } : {}));

export const destinationSchema = Type.Union([
  Type.Object(
    {
      medium: Type.Literal('amqp'),
      exchange: Type.String({ maxLength: 255 }),
      routingKey: Type.String({ maxLength: 255 }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      medium: Type.Literal('http'),
      method: Type.String({ pattern: '^[A-Z]{3,7}$' }),
      url: Type.String({ format: 'uri', maxLength: 2048 }),
    },
    { additionalProperties: false },
  ),
]);

/** Response shape of a destination: both variants' fields, so the serialiser keeps whichever is present. */
const destinationOut = Type.Object({
  medium: Type.Optional(Type.Enum(['amqp', 'http'])),
  exchange: Type.Optional(Type.String()),
  routingKey: Type.Optional(Type.String()),
  method: Type.Optional(Type.String()),
  url: Type.Optional(Type.String()),
});

export const tokenViewSchema = Type.Object({
  id: Type.String(),
  status: tokenStatus(),
  conversationId: Type.String(),
  parentId: Type.Optional(Type.String()),
  mintedBy: Type.String(),
  destination: Type.Optional(destinationOut),
  fingerprint: Type.Optional(Type.String()),
  mintedAt: isoInstant(),
  dispatchedAt: Type.Optional(isoInstant()),
  expiresAt: Type.Optional(isoInstant()),
  consumedAt: Type.Optional(isoInstant()),
  consumedBy: Type.Optional(Type.String()),
  attempts: Type.Integer(),
});

export type TokenView = Static<typeof tokenViewSchema>;

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

export const idParams = Type.Object({
  id: tokenId('token id (8-128 of A-Z a-z 0-9 _ -)'),
});

export const issueBodySchema = Type.Object(
  {
    id: Type.Optional(tokenId('caller-chosen id; makes the call idempotent')),
    fingerprint: Type.Optional(Type.String({ pattern: FINGERPRINT_PATTERN })),
    payload: Type.Optional(Type.Unknown({ description: 'any JSON value; only its fingerprint is kept' })),
    destination: Type.Optional(destinationSchema),
    expiresInMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 31_536_000_000 })),
    expiresAt: Type.Optional(isoInstant()),
    conversationId: Type.Optional(tokenId()),
  },
  {
    additionalProperties: false,
    description:
      'Give either `fingerprint` (sha-256 hex of the canonical JSON payload) or `payload` (fingerprinted here), ' +
      'or neither for a token not bound to a payload; `expiresInMs` or `expiresAt`, or neither for the default ' +
      'expiry.',
  },
);

export type IssueBody = Static<typeof issueBodySchema>;

export const listQuerySchema = Type.Object(
  {
    status: Type.Optional(tokenStatus('required unless `conversation` is given')),
    conversation: Type.Optional(tokenId()),
    olderThan: Type.Optional(
      Type.String({
        pattern: '^([0-9]{1,15}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2}))$',
        description: 'only tokens minted before: an age in milliseconds, or an ISO 8601 instant',
      }),
    ),
    limit: Type.Optional(
      Type.String({ pattern: '^([1-9][0-9]{0,2}|1000)$', description: '1-1000, default 100' }),
    ),
    cursor: Type.Optional(Type.String({ maxLength: 512, pattern: '^[A-Za-z0-9_-]+$' })),
  },
  { additionalProperties: false },
);

export const tokenPageSchema = Type.Object({
  items: Type.Array(tokenViewSchema),
  cursor: Type.Optional(
    Type.String({ description: 'pass back to get the next page; absent on the last page' }),
  ),
});

export const conversationSchema = Type.Object({
  id: Type.String(),
  nodes: Type.Array(tokenViewSchema),
  edges: Type.Array(Type.Object({ from: Type.String(), to: Type.String() })),
  truncated: Type.Boolean({
    description: 'true when the conversation has more tokens than one answer shows',
  }),
});

export const redispatchSchema = Type.Object({
  id: Type.String(),
  status: Type.String(),
  relayTriggered: Type.Boolean(),
});

export const signalParams = Type.Object({
  route: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }),
});

export const signalHeaders = Type.Object({
  'exactly-once-token': tokenId(
    'the token minted for this signal (missing → 400 token-missing, malformed → 400 token-malformed)',
  ),
});

export const signalBodySchema = Type.Unknown({
  description: 'the signal payload: any JSON value, fingerprinted canonically',
});

export const signalAcceptedSchema = Type.Object({
  token: Type.String(),
  conversationId: Type.Optional(Type.String()),
  route: Type.String(),
  exchange: Type.String(),
  routingKey: Type.String(),
});

export const healthSchema = Type.Object({
  status: Type.Enum(['ok', 'unavailable']),
  checks: Type.Optional(
    Type.Object({
      store: Type.Optional(Type.String()),
      broker: Type.Optional(Type.String()),
      lifecycle: Type.Optional(Type.String()),
    }),
  ),
});

const problemResponse = {
  description: 'problem',
  content: { [PROBLEM_CONTENT_TYPE]: { schema: problemDetailsSchema } },
} as const;

/** Problem responses a route can give, keyed by status, all with the one problem-details schema. */
export function problems<const S extends readonly number[]>(
  ...statuses: S
): Record<S[number], typeof problemResponse> {
  return Object.fromEntries(statuses.map((s) => [s, problemResponse])) as Record<
    S[number],
    typeof problemResponse
  >;
}
