import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { GatewayContext } from '../context.js';
import { overviewSchema, problems } from '../schemas.js';

/** What an operator's dashboard (the console) polls: counts, relay activity, totals and recent rates. */
export const overviewRoutes: FastifyPluginAsyncTypebox<GatewayContext> = async (app, ctx) => {
  app.get(
    '/v1/overview',
    {
      config: { scope: 'read' },
      schema: {
        operationId: 'getOverview',
        summary:
          'Tokens by status, in flight and the oldest in-flight age, relay activity, totals since start and ' +
          'per-second rates over the last 10 minutes',
        tags: ['operations'],
        response: { 200: overviewSchema, ...problems(401, 403, 503) },
      },
    },
    async () => ctx.overview.read(),
  );
};
