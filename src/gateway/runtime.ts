import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { Dispatcher } from '../core/dispatcher.js';
import { DispatchFailedError } from '../core/errors.js';
import { fanOut } from '../core/observer.js';
import { Relay } from '../core/relay.js';
import type { TokenStore } from '../core/store.js';
import { openStore } from '../stores/open.js';
import { type AmqpTollgate, createAmqpTollgate } from '../transports/amqp/index.js';
import { HttpSignalSender } from '../transports/http/index.js';
import { buildGateway } from './app.js';
import { EgressBridge } from './bridges/egress.js';
import { describeStore, type GatewayConfig, redactUrl } from './config/index.js';
import type { BrokerProbe, Lifecycle, RelayTrigger } from './context.js';
import type { GatewayLogger } from './logging.js';
import { MetricsObserver } from './metrics.js';

export interface RunningGateway {
  app: FastifyInstance;
  /** http://host:port actually bound (port 0 in the config picks a free one). */
  url: string;
  registry: Registry;
  store: TokenStore;
  /** Graceful stop: not ready → stop accepting and drain requests → stop bridges and relay → close broker, store. */
  stop(): Promise<void>;
}

/**
 * Opens everything the configuration describes and listens. On a failure half-way, whatever was opened is closed
 * again before the error propagates, so the process can exit cleanly with the cause logged.
 */
export async function startGateway(config: GatewayConfig, logger: GatewayLogger): Promise<RunningGateway> {
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async () => {
    for (const close of closers.reverse())
      await close().catch((error: unknown) => logger.warn({ err: error }, 'close failed'));
  };
  try {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const store = await openStore(config.store);
    closers.push(() => store.close());
    // Never the config itself: a PostgreSQL URL holds the password (describeStore masks it).
    logger.info({ store: describeStore(config.store) }, 'store open');
    const metrics = new MetricsObserver(registry, store);
    const httpSender = new HttpSignalSender();
    closers.push(async () => httpSender.close());

    let amqp: AmqpTollgate | null = null;
    let relay: RelayTrigger & { stop(): Promise<void> };
    if (config.amqpUrl !== null) {
      amqp = await createAmqpTollgate({
        url: config.amqpUrl,
        store,
        name: 'tollgate-gateway',
        logger,
        observers: [metrics],
        senders: [httpSender],
        publisher: { mintedBy: 'gateway' },
        relay: { ...config.relay },
        initialConnectTimeoutMs: 10_000,
      });
      closers.push(() => (amqp as AmqpTollgate).close());
      logger.info({ amqp: redactUrl(config.amqpUrl) }, 'connected to RabbitMQ');
      relay = amqp.relay as Relay;
    } else {
      // Without a broker this process can still relay HTTP signals that handlers emitted.
      const dispatcher = new Dispatcher({ store, senders: [httpSender], logger, observers: [metrics] });
      const httpRelay = new Relay({ store, dispatcher, medium: 'http', logger, ...config.relay });
      httpRelay.start();
      closers.push(() => httpRelay.stop());
      relay = httpRelay;
      logger.warn(
        { egressRoutes: config.bridges.egress.length },
        'no broker configured (TOLLGATE_AMQP_URL=off): ingress answers 503 and no egress route runs',
      );
    }

    const bridges: EgressBridge[] = [];
    for (const route of config.bridges.egress) {
      if (!amqp) break;
      const bridge = await EgressBridge.start(
        { connection: amqp.connection, logger, observer: fanOut([metrics]), prefetch: config.egressPrefetch },
        route,
      );
      bridges.push(bridge);
    }
    // Bridges stop before the connection closes (closers run in reverse).
    closers.push(async () => {
      await Promise.all(bridges.map((bridge) => bridge.stop()));
    });

    const lifecycle: Lifecycle = { draining: false };
    const broker: BrokerProbe | null = amqp
      ? {
          ping: async () => {
            if (!(amqp as AmqpTollgate).connection.current)
              throw new DispatchFailedError('RabbitMQ is not connected');
          },
        }
      : null;
    const app = buildGateway({
      store,
      publisher: amqp?.publisher ?? null,
      registry,
      logger,
      config,
      broker,
      relay,
      lifecycle,
      metrics,
    });
    closers.push(() => app.close());
    const url = await app.listen({ host: config.host, port: config.port });
    logger.info(
      {
        url,
        ingress: config.bridges.ingress.map((r) => r.route),
        egress: config.bridges.egress.map((r) => r.queue),
      },
      'gateway listening',
    );
    if (config.hostReason === 'no-api-key') {
      logger.warn(
        { host: config.host },
        'no API key configured: the API is open, so it binds to loopback only (set TOLLGATE_API_KEYS_* to expose it)',
      );
    }

    let stopping: Promise<void> | undefined;
    return {
      app,
      url,
      registry,
      store,
      stop: () => {
        stopping ??= (async () => {
          lifecycle.draining = true;
          await closeAll();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
