import { ErrorCodes, isTollgateError } from '../core/errors.js';
import { MIGRATION_FILES } from '../stores/postgres/schema.js';
import { configSecrets, describeStore, ENV, type GatewayConfig, loadConfig } from './config/index.js';
import { createLogger, type GatewayLogger } from './logging.js';
import { type RunningGateway, startGateway } from './runtime.js';

/**
 * The gateway process: load and validate the configuration, start, and on SIGTERM/SIGINT stop gracefully within
 * the configured bound. Exit codes: 0 after a clean stop, 1 when the start failed or the stop overran its bound.
 */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    // No logger configuration is trustworthy yet: log the refusal with defaults.
    fail(createLogger('info'), error, 'invalid configuration');
    return;
  }
  // The passwords of the configured URLs are masked in every line, a driver's error message included.
  const logger = createLogger(config.logLevel, undefined, configSecrets(config));
  let gateway: RunningGateway;
  try {
    gateway = await startGateway(config, logger);
  } catch (error) {
    fail(logger, error, 'gateway failed to start', startFacts(config, error));
    return;
  }

  let signalled = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = true;
    logger.info({ signal, boundMs: config.shutdownTimeoutMs }, 'shutting down: draining in-flight work');
    const overrun = setTimeout(() => {
      logger.error({ boundMs: config.shutdownTimeoutMs }, 'shutdown overran its bound; exiting anyway');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    overrun.unref();
    gateway
      .stop()
      .then(() => {
        logger.info({}, 'stopped cleanly');
        process.exit(0);
      })
      .catch((error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        process.exit(1);
      });
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

function fail(
  logger: GatewayLogger,
  error: unknown,
  message: string,
  context: Record<string, unknown> = {},
): void {
  // The Tollgate code last: a detail may carry a driver's own `code` (e.g. ECONNREFUSED), kept in `err.details`.
  const facts = isTollgateError(error) ? { ...error.details, code: error.code } : {};
  logger.fatal(
    { err: error, ...context, ...facts },
    `${message}: ${error instanceof Error ? error.message : String(error)}`,
  );
  // pino writes stdout synchronously, so the line is out; exit now rather than wait for stray handles.
  process.exit(1);
}

/** Which store the failed start was opening (credentials masked), and what to do about a missing schema. */
function startFacts(config: GatewayConfig, error: unknown): Record<string, unknown> {
  const facts: Record<string, unknown> = { store: describeStore(config.store) };
  if (
    config.store.kind === 'postgres' &&
    isTollgateError(error) &&
    error.code === ErrorCodes.STORE_SCHEMA_MISSING
  ) {
    facts.hint =
      `set ${ENV.postgresCreateTables}=true to create schema "${config.store.schema}" at start, or apply ` +
      `${MIGRATION_FILES.map((file) => `deploy/postgres/${file}`).join(', then ')} (schema "tollgate") before starting`;
  }
  return facts;
}

await main();
