import { type Static, Type } from 'typebox';
import { TOKEN_STATUSES, type TokenStatus } from '../core/token.js';
import {
  dueBeforeQuery,
  isoInstant,
  tokenId,
  tokenStatus,
  tokenViewSchema,
} from '../transports/http/token-schemas.js';

/**
 * TypeBox schemas of every request and response. Fastify validates and serialises with them, the route types
 * come from them (TypeBox type provider), and @fastify/swagger generates the OpenAPI document from the very same
 * objects, so neither the types nor the document can drift from the behaviour. The token and issuing schemas are
 * the HTTP transport's (src/transports/http/token-schemas.ts), shared with the plugin's issuing route.
 */
export { problems, tokenView, tokenViewSchema } from '../transports/http/token-schemas.js';

export const idParams = Type.Object({
  id: tokenId('token id (8-128 of A-Z a-z 0-9 _ -)'),
});

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
    dueBefore: Type.Optional(dueBeforeQuery()),
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

/** A token in a conversation graph, with where the conversation crosses into or out of this system. */
export const conversationNodeSchema = Type.Object({
  ...tokenViewSchema.properties,
  entersFrom: Type.Optional(
    Type.String({
      description: 'the parent token id, kept by another system: the conversation enters here from outside',
    }),
  ),
  leavesTo: Type.Optional(
    Type.String({
      description:
        "the origin of the receiver's issuing endpoint: the conversation leaves here for that system",
    }),
  ),
});

export const conversationSchema = Type.Object({
  id: Type.String(),
  nodes: Type.Array(conversationNodeSchema),
  edges: Type.Array(Type.Object({ from: Type.String(), to: Type.String() })),
  truncated: Type.Boolean({
    description: 'true when the conversation has more tokens than one answer shows',
  }),
});

export type ConversationNode = Static<typeof conversationNodeSchema>;
export type ConversationGraph = Static<typeof conversationSchema>;

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

const count = (description?: string) =>
  Type.Integer({ minimum: 0, ...(description === undefined ? {} : { description }) });
const perSecond = () => Type.Number({ minimum: 0 });

/** The figures `rates.points` gives per second. */
export const RATED = ['minted', 'consumed', 'duplicates', 'deadLettered', 'redispatched'] as const;

export const overviewSchema = Type.Object({
  at: isoInstant(),
  statuses: Type.Object(
    Object.fromEntries(TOKEN_STATUSES.map((status) => [status, count()])) as Record<
      TokenStatus,
      ReturnType<typeof count>
    >,
    { description: 'tokens in each status, ended ones included until they are purged' },
  ),
  inFlight: count('issued + pending + dispatched + scheduled'),
  oldestInFlightAgeMs: Type.Union([count(), Type.Null()], {
    description: 'age of the oldest in-flight token not waiting for its due time; null when none',
  }),
  relay: Type.Object({
    enabled: Type.Boolean(),
    delayMs: count('a token still pending this long after minting is re-dispatched'),
    redispatched: count('signals the relay sent again since the gateway started'),
    givenUp: count('tokens the relay revoked after a permanent refusal since the gateway started'),
    lastPassAt: Type.Optional(isoInstant()),
  }),
  totals: Type.Object(
    {
      minted: count(),
      consumed: count(),
      duplicates: count(),
      deadLettered: count(),
      redispatched: count(),
      dispatchFailures: count(),
    },
    { description: 'since `since`; the same counters /metrics exports' },
  ),
  since: isoInstant(),
  rates: Type.Object({
    intervalSeconds: Type.Number(),
    points: Type.Array(
      Type.Object({
        at: isoInstant(),
        ...(Object.fromEntries(RATED.map((key) => [key, perSecond()])) as Record<
          (typeof RATED)[number],
          ReturnType<typeof perSecond>
        >),
      }),
      { description: 'per-second rates over each interval, oldest first, the last 10 minutes at most' },
    ),
  }),
});

export type Overview = Static<typeof overviewSchema>;
