import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { InvalidTransitionError, UnknownTokenError } from '../../core/errors.js';
import { fingerprint as fingerprintOf } from '../../core/fingerprint.js';
import { newConversationId, newTokenId } from '../../core/ids.js';
import { validateDestination } from '../../core/mint.js';
import type { ListOptions, Page } from '../../core/store.js';
import type { TokenRecord } from '../../core/token.js';
import { ProblemError, type ProblemKind } from '../../transports/http/index.js';
import type { GatewayContext } from '../context.js';
import {
  conversationSchema,
  type IssueBody,
  idParams,
  issueBodySchema,
  listQuerySchema,
  problems,
  redispatchSchema,
  tokenPageSchema,
  tokenView,
  tokenViewSchema,
} from '../schemas.js';

/** Who issued a token through the API (recorded as `mintedBy`). */
export const GATEWAY_MINTER = 'gateway';
/** A conversation graph shows at most this many tokens (10 store pages). */
const MAX_GRAPH_NODES = 10_000;

/** Issue, inspect, list, re-dispatch and revoke tokens. */
export const tokenRoutes: FastifyPluginAsyncTypebox<GatewayContext> = async (app, ctx) => {
  const { store, clock } = ctx;

  app.post(
    '/v1/tokens',
    {
      config: { scope: 'mint' },
      schema: {
        operationId: 'issueToken',
        summary: 'Issue a token to an outside caller (idempotent with a caller-chosen id)',
        tags: ['tokens'],
        body: issueBodySchema,
        response: {
          201: tokenViewSchema,
          200: tokenViewSchema,
          ...problems(400, 401, 403, 409, 413, 415, 503),
        },
      },
    },
    async (request, reply) => {
      const token = issuedToken(request.body, clock(), ctx.config.defaultTokenTtlMs);
      const result = await store.issue(token);
      if (result.created) {
        ctx.observer.minted([token], GATEWAY_MINTER);
        request.log.info(
          { token: token.id, conversation: token.conversationId, endpoint: GATEWAY_MINTER },
          'token issued',
        );
        return reply.code(201).header('location', `/v1/tokens/${token.id}`).send(tokenView(token));
      }
      return reply.code(200).send(tokenView(sameIssue(result.existing, token)));
    },
  );

  app.get(
    '/v1/tokens/:id',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getToken',
        summary: 'A token: status, times, conversation, parent, destination, attempts, consumer',
        tags: ['tokens'],
        params: idParams,
        response: { 200: tokenViewSchema, ...problems(400, 401, 403, 404, 503) },
      },
    },
    async (request) => tokenView(await requireToken(ctx, request.params.id)),
  );

  app.get(
    '/v1/tokens',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'listTokens',
        summary: 'Tokens by status and/or conversation, oldest first, paginated',
        tags: ['tokens'],
        querystring: listQuerySchema,
        response: { 200: tokenPageSchema, ...problems(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const { status, conversation, olderThan, limit, cursor } = request.query;
      const options: ListOptions = {};
      if (limit !== undefined) options.limit = Number(limit);
      if (cursor !== undefined) options.cursor = cursor;
      if (olderThan !== undefined) options.mintedBefore = mintedBefore(olderThan, clock());
      let page: Page<TokenRecord>;
      if (conversation !== undefined) {
        page = await store.listConversation(conversation, options);
        // Filtering a conversation page by status may leave it short; the cursor still moves on correctly.
        if (status !== undefined) page = { ...page, items: page.items.filter((t) => t.status === status) };
      } else if (status !== undefined) {
        page = await store.listByStatus(status, options);
      } else {
        throw new ProblemError('validation', 'give status, conversation, or both');
      }
      return page.cursor === undefined
        ? { items: page.items.map(tokenView) }
        : { items: page.items.map(tokenView), cursor: page.cursor };
    },
  );

  app.get(
    '/v1/conversations/:id',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getConversation',
        summary: 'A conversation as a graph: tokens as nodes, parent → child edges',
        tags: ['tokens'],
        params: idParams,
        response: { 200: conversationSchema, ...problems(400, 401, 403, 404, 503) },
      },
    },
    async (request) => {
      const id = request.params.id;
      const nodes: TokenRecord[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listConversation(id, { limit: 1000, ...(cursor ? { cursor } : {}) });
        nodes.push(...page.items);
        cursor = page.cursor;
      } while (cursor !== undefined && nodes.length < MAX_GRAPH_NODES);
      if (nodes.length === 0)
        throw new ProblemError('conversation-not-found', `conversation ${id} has no tokens`);
      const edges = nodes
        .filter((t) => t.parentId !== undefined)
        .map((t) => ({ from: t.parentId as string, to: t.id }));
      return { id, nodes: nodes.map(tokenView), edges, truncated: cursor !== undefined };
    },
  );

  app.post(
    '/v1/tokens/:id/redispatch',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'redispatchToken',
        summary: 'Make a pending token due for the relay now and trigger a relay pass',
        tags: ['operations'],
        params: idParams,
        response: { 202: redispatchSchema, ...problems(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const token = await requireToken(ctx, request.params.id);
      if (token.status !== 'pending') {
        throw new ProblemError(
          'token-not-pending',
          `token ${token.id} is ${token.status}; only pending tokens are re-dispatched`,
          {
            tokenId: token.id,
          },
        );
      }
      await store.releaseLease(token.id);
      const relay = ctx.relay;
      // The pass runs in the background: the operator gets an answer now and sees the outcome on the token.
      relay
        ?.runOnce()
        .catch((error: unknown) => request.log.warn({ err: error, token: token.id }, 'relay pass failed'));
      request.log.info(
        { token: token.id, conversation: token.conversationId, endpoint: 'relay' },
        'redispatch requested',
      );
      return reply.code(202).send({ id: token.id, status: token.status, relayTriggered: relay !== null });
    },
  );

  app.delete(
    '/v1/tokens/:id',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'revokeToken',
        summary: 'Revoke a token (refused once consumed)',
        tags: ['operations'],
        params: idParams,
        response: { 200: tokenViewSchema, ...problems(400, 401, 403, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const id = request.params.id;
      try {
        const revoked = await store.revoke(id, clock());
        request.log.info(
          { token: id, conversation: revoked.conversationId, endpoint: GATEWAY_MINTER },
          'token revoked',
        );
        return reply.send(tokenView(revoked));
      } catch (error) {
        if (error instanceof UnknownTokenError)
          throw new ProblemError('token-not-found', `token ${id} does not exist`);
        if (error instanceof InvalidTransitionError) {
          const from = String(error.details.from);
          throw new ProblemError(endedKind(from), `token ${id} is ${from} and can no longer be revoked`, {
            tokenId: id,
          });
        }
        throw error;
      }
    },
  );
};

async function requireToken(ctx: GatewayContext, id: string): Promise<TokenRecord> {
  const token = await ctx.store.getToken(id);
  if (!token) throw new ProblemError('token-not-found', `token ${id} does not exist`, { tokenId: id });
  return token;
}

function issuedToken(body: IssueBody, now: number, defaultTtlMs: number): TokenRecord {
  if (body.fingerprint !== undefined && body.payload !== undefined) {
    throw new ProblemError('validation', 'give fingerprint or payload, not both');
  }
  if (body.expiresInMs !== undefined && body.expiresAt !== undefined) {
    throw new ProblemError('validation', 'give expiresInMs or expiresAt, not both');
  }
  const expiresAt =
    body.expiresAt !== undefined ? Date.parse(body.expiresAt) : now + (body.expiresInMs ?? defaultTtlMs);
  if (!Number.isFinite(expiresAt) || expiresAt <= now) {
    throw new ProblemError('validation', 'expiresAt must be a valid instant in the future');
  }
  if (body.destination !== undefined) validateDestination(body.destination);
  const fingerprint =
    body.fingerprint ?? (body.payload !== undefined ? fingerprintOf(body.payload) : undefined);
  const token: TokenRecord = {
    id: body.id ?? newTokenId(),
    conversationId: body.conversationId ?? newConversationId(),
    mintedBy: GATEWAY_MINTER,
    status: 'issued',
    mintedAt: now,
    attempts: 0,
    expiresAt,
  };
  if (fingerprint !== undefined) token.fingerprint = fingerprint;
  if (body.destination !== undefined) token.destination = body.destination;
  return token;
}

/** An existing token answers a repeated issue only if it is the same, still usable token. */
function sameIssue(existing: TokenRecord, requested: TokenRecord): TokenRecord {
  const id = existing.id;
  if (existing.status === 'consumed' || existing.status === 'revoked' || existing.status === 'expired') {
    throw new ProblemError(
      endedKind(existing.status),
      `token ${id} exists and was already ${existing.status}`,
      { tokenId: id },
    );
  }
  if (existing.fingerprint !== requested.fingerprint) {
    throw new ProblemError('token-exists', `token ${id} exists with a different payload fingerprint`, {
      tokenId: id,
    });
  }
  return existing;
}

function endedKind(status: string): ProblemKind {
  if (status === 'consumed') return 'token-consumed';
  if (status === 'revoked') return 'token-revoked';
  if (status === 'expired') return 'token-expired';
  return 'token-not-pending';
}

/** `olderThan` is an age in ms or an ISO instant; either way the store gets an absolute mintedBefore. */
function mintedBefore(olderThan: string, now: number): number {
  if (/^[0-9]+$/.test(olderThan)) return now - Number(olderThan);
  const instant = Date.parse(olderThan);
  if (!Number.isFinite(instant))
    throw new ProblemError('validation', 'olderThan is not a valid ISO 8601 instant');
  return instant;
}
