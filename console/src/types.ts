/**
 * The shapes the console reads from the gateway's API. The TypeBox schemas of the routes (src/gateway/schemas.ts,
 * src/transports/http/token-schemas.ts, the process route) are the source; those modules import Node and fastify,
 * so the browser build states the shapes here, and test/console/api-types.test.ts fails to compile when the two
 * disagree.
 */

/** The statuses in the core's order (src/core/token.ts; test/console/api-types.test.ts checks the two lists agree). */
export const STATUSES = [
  'issued',
  'scheduled',
  'pending',
  'dispatched',
  'consumed',
  'expired',
  'revoked',
] as const;
export type TokenStatus = (typeof STATUSES)[number];

export interface Destination {
  medium?: 'amqp' | 'http';
  exchange?: string;
  routingKey?: string;
  method?: string;
  url?: string;
  issuer?: { url: string; credential?: string };
}

/** GET /v1/tokens/:id: a token without its payload (the API never returns it). */
export interface TokenView {
  id: string;
  status: TokenStatus;
  conversationId: string;
  parentId?: string;
  mintedBy: string;
  destination?: Destination;
  fingerprint?: string;
  mintedAt: string;
  dispatchedAt?: string;
  expiresAt?: string;
  consumedAt?: string;
  consumedBy?: string;
  dueAt?: string;
  attempts: number;
}

export interface TokenPage {
  items: TokenView[];
  cursor?: string;
}

export interface ConversationNode extends TokenView {
  /** The parent token kept by another system: the conversation enters here. */
  entersFrom?: string;
  /** The origin of the receiving system: the conversation leaves here. */
  leavesTo?: string;
}

export interface ConversationGraph {
  id: string;
  nodes: ConversationNode[];
  edges: Array<{ from: string; to: string }>;
  truncated: boolean;
}

export interface RatePoint {
  at: string;
  minted: number;
  consumed: number;
  duplicates: number;
  deadLettered: number;
  redispatched: number;
}

/** GET /v1/overview. */
export interface Overview {
  at: string;
  statuses: Record<TokenStatus, number>;
  inFlight: number;
  oldestInFlightAgeMs: number | null;
  relay: { enabled: boolean; delayMs: number; redispatched: number; givenUp: number; lastPassAt?: string };
  totals: {
    minted: number;
    consumed: number;
    duplicates: number;
    deadLettered: number;
    redispatched: number;
    dispatchFailures: number;
  };
  since: string;
  rates: { intervalSeconds: number; points: RatePoint[] };
}

/** GET /v1/processes/:name/:id. */
export interface ProcessInstance {
  process: string;
  id: string;
  state: unknown;
  startedAt: string;
  timeouts: Array<{ name: string; tokenId: string; status?: TokenStatus; dueAt?: string }>;
  conversation: { id: string; tokens: TokenView[]; truncated: boolean };
}

/** An RFC 9457 problem document, as every error answer of the gateway is. */
export interface ProblemDocument {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
}
