import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type Static, Type } from 'typebox';
import { readProcessInstance } from '../../process/inspect.js';
import { ProblemError } from '../../transports/http/index.js';
import { isoInstant, tokenStatus } from '../../transports/http/token-schemas.js';
import type { GatewayContext } from '../context.js';
import { problems, tokenView, tokenViewSchema } from '../schemas.js';

/** Tokens of the instance's conversation shown with it; the whole graph is at /v1/conversations/:id. */
const CONVERSATION_TOKENS = 50;

const processParams = Type.Object({
  name: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'the process name' }),
  id: Type.String({ minLength: 1, maxLength: 512, description: 'the instance (correlation) id' }),
});

const processInstanceSchema = Type.Object({
  process: Type.String(),
  id: Type.String(),
  state: Type.Unknown({ description: "the instance's state, as its last step left it" }),
  startedAt: isoInstant(),
  timeouts: Type.Array(
    Type.Object({
      name: Type.String(),
      tokenId: Type.String(),
      status: Type.Optional(tokenStatus('absent when the token was purged')),
      dueAt: Type.Optional(isoInstant()),
    }),
    { description: 'pending timeouts: the scheduled tokens the instance may still cancel' },
  ),
  conversation: Type.Object({
    id: Type.String({ description: 'the conversation of the signal that started the instance' }),
    tokens: Type.Array(tokenViewSchema),
    truncated: Type.Boolean({
      description: `true when the conversation has more than ${CONVERSATION_TOKENS}`,
    }),
  }),
});

export type ProcessInstanceView = Static<typeof processInstanceSchema>;

/** Inspect a running process instance (process managers, tollgate/process). */
export const processRoutes: FastifyPluginAsyncTypebox<GatewayContext> = async (app, ctx) => {
  app.get(
    '/v1/processes/:name/:id',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getProcess',
        summary: 'A running process instance: state, pending timeouts and conversation',
        tags: ['processes'],
        params: processParams,
        response: { 200: processInstanceSchema, ...problems(400, 401, 403, 404, 503) },
      },
    },
    async (request) => {
      const { name, id } = request.params;
      const instance = await readProcessInstance(ctx.store, name, id);
      if (!instance) {
        throw new ProblemError('not-found', `process ${name} has no running instance ${id}`);
      }
      const page = await ctx.store.listConversation(instance.conversationId, { limit: CONVERSATION_TOKENS });
      return {
        process: name,
        id,
        state: instance.state,
        startedAt: new Date(instance.startedAt).toISOString(),
        timeouts: instance.timeouts.map(({ dueAt, ...timeout }) =>
          dueAt === undefined ? timeout : { ...timeout, dueAt: new Date(dueAt).toISOString() },
        ),
        conversation: {
          id: instance.conversationId,
          tokens: page.items.map(tokenView),
          truncated: page.cursor !== undefined,
        },
      };
    },
  );
};
