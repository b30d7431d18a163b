import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { InvalidTransitionError, UnknownTokenError } from '../../core/errors.js';
import type { ListOptions, Page } from '../../core/store.js';
import type { TokenRecord } from '../../core/token.js';
import { ProblemError } from '../../transports/http/index.js';
import {
  answerIssue,
  endedKind,
  type IssueSettings,
  issueRouteSchema,
} from '../../transports/http/issuing.js';
import type { GatewayContext } from '../context.js';
import { conversationGraph } from '../graph.js';
import {
  conversationSchema,
  idParams,
  listQuerySchema,
  problems,
  redispatchSchema,
  tokenPageSchema,
  tokenView,
  tokenViewSchema,
} from '../schemas.js';

/** Who issued a token through the API (recorded as `mintedBy`). */
export const GATEWAY_MINTER = 'gateway';

/** Issue, inspect, list, re-dispatch and revoke tokens. */
export const tokenRoutes: FastifyPluginAsyncTypebox<GatewayContext> = async (app, ctx) => {
  const { store, clock } = ctx;

  const issuing: IssueSettings = {
    store,
    mintedBy: GATEWAY_MINTER,
    defaultTtlMs: ctx.config.defaultTokenTtlMs,
    clock,
    observer: ctx.observer,
    location: (id) => `/v1/tokens/${id}`,
  };
  app.post('/v1/tokens', { config: { scope: 'mint' }, schema: issueRouteSchema }, (request, reply) =>
    answerIssue(request.body, request, reply, issuing),
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
        summary:
          'Tokens by status and/or conversation, oldest first (scheduled ones: earliest due first), paginated',
        tags: ['tokens'],
        querystring: listQuerySchema,
        response: { 200: tokenPageSchema, ...problems(400, 401, 403, 503) },
      },
    },
    async (request) => {
      const { status, conversation, olderThan, dueBefore, limit, cursor } = request.query;
      const options: ListOptions = {};
      if (limit !== undefined) options.limit = Number(limit);
      if (cursor !== undefined) options.cursor = cursor;
      if (olderThan !== undefined) options.mintedBefore = mintedBefore(olderThan, clock());
      if (dueBefore !== undefined) {
        if (status !== 'scheduled') throw new ProblemError('validation', 'dueBefore needs status=scheduled');
        options.dueBefore = instantOf(dueBefore, 'dueBefore');
      }
      let page: Page<TokenRecord>;
      if (conversation !== undefined) {
        page = await store.listConversation(conversation, options);
        // Filtering a conversation page by status may leave it short; the cursor still moves on correctly.
        const due = options.dueBefore ?? Number.POSITIVE_INFINITY;
        if (status !== undefined) {
          const items = page.items.filter((t) => t.status === status && (t.dueAt ?? 0) < due);
          page = { ...page, items };
        }
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
      const graph = await conversationGraph(store, id);
      if (!graph) throw new ProblemError('conversation-not-found', `conversation ${id} has no tokens`);
      return graph;
    },
  );

  app.post(
    '/v1/tokens/:id/redispatch',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'redispatchToken',
        summary: 'Send a pending token now through the relay, whatever its age',
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
      const relay = ctx.relay;
      if (relay) {
        // The send runs in the background: the operator gets an answer now and sees the outcome on the token.
        relay
          .redispatch(token.id)
          .then((outcome) => request.log.info({ token: token.id, outcome }, 'redispatch done'))
          .catch((error: unknown) => request.log.warn({ err: error, token: token.id }, 'redispatch failed'));
      } else {
        // No relay here: the token is made due for the relays of other processes.
        await store.releaseLease(token.id);
      }
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

/** `olderThan` is an age in ms or an ISO instant; either way the store gets an absolute mintedBefore. */
function mintedBefore(olderThan: string, now: number): number {
  if (/^[0-9]+$/.test(olderThan)) return now - Number(olderThan);
  return instantOf(olderThan, 'olderThan');
}

/** An instant given as milliseconds since the epoch or as ISO 8601. */
function instantOf(value: string, name: string): number {
  const instant = /^[0-9]+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(instant))
    throw new ProblemError('validation', `${name} is not a valid ISO 8601 instant`);
  return instant;
}
