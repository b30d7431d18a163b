import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { SignalSender } from '../core/dispatcher.js';
import { fanOut, type Observer } from '../core/observer.js';
import type { TokenStore } from '../core/store.js';
import { ApiKeys } from './auth.js';
import type { AppConfig, BrokerProbe, GatewayContext, Lifecycle, RelayTrigger } from './context.js';
import type { GatewayLogger } from './logging.js';
import { MetricsObserver } from './metrics.js';
import { problem, sendProblem, toProblem } from './problems.js';
import { healthRoutes, metricsRoute, openApiRoute } from './routes/operations.js';
import { signalRoutes } from './routes/signals.js';
import { tokenRoutes } from './routes/tokens.js';
import { RouteTable } from './routing.js';

export const GATEWAY_VERSION = '0.1.0';

export interface GatewayDeps {
  store: TokenStore;
  /** Publishes ingress signals (the AMQP transport's publisher); null runs the API without a broker. */
  publisher: SignalSender | null;
  registry: Registry;
  logger: GatewayLogger;
  config: AppConfig;
  clock?: () => number;
  broker?: BrokerProbe | null;
  relay?: RelayTrigger | null;
  lifecycle?: Lifecycle;
  /** The metrics observer; created on `registry` when absent. Pass the same one to the transports. */
  metrics?: MetricsObserver;
  /** More observers of the gateway's own events (audit trails...). */
  observers?: readonly Observer[];
}

/**
 * The gateway's HTTP app, without the process around it: tests build it with fastify.inject, main.ts listens.
 */
export function buildGateway(deps: GatewayDeps): FastifyInstance {
  const clock = deps.clock ?? Date.now;
  const metrics = deps.metrics ?? new MetricsObserver(deps.registry, deps.store, clock);
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.config.bodyLimitBytes,
    // Token ids may be 128 characters; fastify's default (100) would answer 414 to valid ones.
    routerOptions: { maxParamLength: 256 },
    // Strict validation: a wrong type is a 400, never silently coerced; unknown fields are refused, not dropped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
    // Router-level refusals (bad URL encoding, over-long ids) answer as problems too.
    frameworkErrors: (error, _request, reply) => sendProblem(reply, toProblem(error)),
    forceCloseConnections: 'idle',
  });

  // Signals and token requests are JSON; a text body would otherwise be fingerprinted as a JSON string.
  app.removeContentTypeParser('text/plain');

  const keys = new ApiKeys(deps.config.apiKeys);
  const ctx: GatewayContext = {
    routes: new RouteTable(app, keys),
    store: deps.store,
    publisher: deps.publisher,
    broker: deps.broker ?? null,
    relay: deps.relay ?? null,
    observer: fanOut([metrics, ...(deps.observers ?? [])]),
    logger: deps.logger,
    clock,
    config: deps.config,
    lifecycle: deps.lifecycle ?? { draining: false },
  };

  app.setErrorHandler((error, request, reply) => {
    const mapped = toProblem(error);
    if (mapped.problem.status >= 500) request.log.error({ err: error }, 'request failed');
    return sendProblem(reply, mapped);
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = ctx.routes.allowedMethods(path);
    if (allowed.length > 0) {
      reply.header('allow', allowed.join(', '));
      return sendProblem(reply, {
        problem: problem(
          'method-not-allowed',
          `${path} accepts ${allowed.join(', ')}, not ${request.method}`,
        ),
      });
    }
    return sendProblem(reply, { problem: problem('not-found', `no route ${request.method} ${path}`) });
  });

  tokenRoutes(ctx);
  signalRoutes(ctx);
  healthRoutes(ctx);
  metricsRoute(ctx, deps.registry);
  openApiRoute(ctx, GATEWAY_VERSION);
  return app;
}
