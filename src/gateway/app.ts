import fastifySwagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import type { Registry } from 'prom-client';
import type { SignalSender } from '../core/dispatcher.js';
import { fanOut, type Observer } from '../core/observer.js';
import type { TokenStore } from '../core/store.js';
import { ApiKeys } from '../transports/http/api-keys.js';
import { problemPagesRoute } from '../transports/http/index.js';
import { builtConsoleDir } from './console-files.js';
import type { AppConfig, BrokerProbe, GatewayContext, Lifecycle, RelayTrigger } from './context.js';
import type { GatewayLogger } from './logging.js';
import { MetricsObserver } from './metrics.js';
import { openApiOptions } from './openapi.js';
import { OverviewReader, type RatedTotals, ratedTotals } from './overview.js';
import { answerProblems, frameworkProblems } from './problems.js';
import { RateSampler } from './rates.js';
import { lazyRequestLogger } from './request-loggers.js';
import { consoleRoutes } from './routes/console.js';
import { operationsRoutes } from './routes/operations.js';
import { overviewRoutes } from './routes/overview.js';
import { processRoutes } from './routes/processes.js';
import { signalRoutes } from './routes/signals.js';
import { tokenRoutes } from './routes/tokens.js';
import { type GatewayApp, RouteTable } from './routing.js';
import { trackSilentConnections } from './silent-connections.js';

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
  /** The built console's folder (index.html, assets/); default dist/console under the package root. */
  consoleDir?: string;
  /** The overview's rate sampler; created on the metrics' counters when absent. Started and stopped with the app. */
  rates?: RateSampler<keyof RatedTotals>;
}

/**
 * The gateway's HTTP app, without the process around it: tests build it with fastify.inject, main.ts listens.
 */
export function buildGateway(deps: GatewayDeps): GatewayApp {
  const clock = deps.clock ?? Date.now;
  const metrics = deps.metrics ?? new MetricsObserver(deps.registry, deps.store, clock);
  const problemBase = deps.config.problemBase;
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.config.bodyLimitBytes,
    // Token ids may be 128 characters; fastify's default (100) would answer 414 to valid ones.
    routerOptions: { maxParamLength: 256 },
    // Strict validation: a wrong type is a 400, never silently coerced; unknown fields are refused, not dropped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
    // Router-level refusals (bad URL encoding, over-long ids) answer as problems too.
    frameworkErrors: frameworkProblems(problemBase),
    childLoggerFactory: lazyRequestLogger,
    forceCloseConnections: 'idle',
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Signals and token requests are JSON; a text body would otherwise be fingerprinted as a JSON string.
  app.removeContentTypeParser('text/plain');

  const rates = deps.rates ?? new RateSampler(() => ratedTotals(metrics));
  app.addHook('onReady', async () => rates.start());
  app.addHook('onClose', async () => rates.stop());

  const routes = new RouteTable(new ApiKeys(deps.config.apiKeys));
  const ctx: GatewayContext = {
    store: deps.store,
    publisher: deps.publisher,
    broker: deps.broker ?? null,
    relay: deps.relay ?? null,
    observer: fanOut([metrics, ...(deps.observers ?? [])]),
    logger: deps.logger,
    clock,
    config: deps.config,
    lifecycle: deps.lifecycle ?? { draining: false },
    registry: deps.registry,
    overview: new OverviewReader({
      store: deps.store,
      relay: deps.relay ?? null,
      totals: metrics,
      rates,
      clock,
    }),
  };

  const silent = trackSilentConnections(app.server);
  // Before the server waits for its connections: one that never sent a byte would hold the close until timeout.
  app.addHook('preClose', async () => {
    const closed = silent.destroy();
    if (closed > 0) deps.logger.debug({ connections: closed }, 'closed connections that sent nothing');
  });

  answerProblems(app, routes, problemBase);
  app.addHook('onRoute', routes.onRoute);
  // Swagger first: it sees every route registered after it, and generates the document from their schemas.
  app.register(fastifySwagger, openApiOptions(GATEWAY_VERSION, problemBase));
  app.register(tokenRoutes, ctx);
  app.register(signalRoutes, ctx);
  app.register(operationsRoutes, ctx);
  app.register(processRoutes, ctx);
  app.register(overviewRoutes, ctx);
  if (deps.config.console?.enabled !== false)
    app.register(consoleRoutes, { dir: deps.consoleDir ?? builtConsoleDir() });
  app.register(async (instance) => problemPagesRoute(instance, problemBase));
  return app;
}
