import { type Static, Type } from 'typebox';
import { TOKEN_ID_PATTERN } from '../../core/ids.js';
import { TOKEN_STATUSES, type TokenRecord, type TokenStatus } from '../../core/token.js';
import { problemDetailsSchema } from './problem-details.js';
import { PROBLEM_CONTENT_TYPE } from './problems.js';

/**
 * TypeBox schemas of tokens as an HTTP API shows and issues them, shared by the gateway and the plugin's issuing
 * route. Fastify validates and serialises with them, route types come from them, and @fastify/swagger generates
 * the OpenAPI document from the very same objects.
 */
export const FINGERPRINT_PATTERN = '^[0-9a-f]{64}$';
/** An issuer's credential is a reference the sender resolves, never a secret. */
export const CREDENTIAL_REF_PATTERN = '^[A-Za-z0-9._:-]{1,128}$';

export const isoInstant = () => Type.String({ format: 'date-time' });
export const tokenId = (description?: string) =>
  Type.String({ pattern: TOKEN_ID_PATTERN, ...(description ? { description } : {}) });
export const tokenStatus = (description?: string) =>
  Type.Unsafe<TokenStatus>(Type.Enum([...TOKEN_STATUSES], description ? { description } : {}));

const issuerSchema = Type.Object(
  {
    url: Type.String({ format: 'uri', maxLength: 2048, description: "the receiver's issuing endpoint" }),
    credential: Type.Optional(
      Type.String({
        pattern: CREDENTIAL_REF_PATTERN,
        description: "the name the sender's credential resolver knows; never the secret itself",
      }),
    ),
  },
  { additionalProperties: false },
);

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
      issuer: Type.Optional(issuerSchema),
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
  issuer: Type.Optional(Type.Object({ url: Type.String(), credential: Type.Optional(Type.String()) })),
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
  /** Scheduled tokens: when the signal is (or was) due. */
  dueAt: Type.Optional(isoInstant()),
  attempts: Type.Integer(),
});

export type TokenView = Static<typeof tokenViewSchema>;

/** What an API shows of a token: never its payload, headers, stored response or lease bookkeeping. */
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
  if (token.dueAt !== undefined) view.dueAt = iso(token.dueAt);
  return view;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The list query's `dueBefore`: an instant, as milliseconds since the epoch or ISO 8601. */
export const dueBeforeQuery = () =>
  Type.String({
    pattern: '^([0-9]{1,15}|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2}))$',
    description:
      'with status=scheduled: only tokens due before this instant (milliseconds since the epoch, or ISO 8601), ' +
      'earliest due first',
  });

export const issueBodySchema = Type.Object(
  {
    id: Type.Optional(tokenId('caller-chosen id; makes the call idempotent')),
    fingerprint: Type.Optional(Type.String({ pattern: FINGERPRINT_PATTERN })),
    payload: Type.Optional(Type.Unknown({ description: 'any JSON value; only its fingerprint is kept' })),
    destination: Type.Optional(destinationSchema),
    expiresInMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 31_536_000_000 })),
    expiresAt: Type.Optional(isoInstant()),
    conversationId: Type.Optional(tokenId("the caller's conversation id; default: a new conversation")),
    parentId: Type.Optional(
      tokenId("the caller's token id of the signal that led here, recorded as the token's parent"),
    ),
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
