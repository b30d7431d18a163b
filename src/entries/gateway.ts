/** `tollgate/gateway`: the standalone gateway (fastify, amqplib and the chosen store's driver are peers). */
export { buildGateway, type GatewayDeps } from '../gateway/app.js';
export { ENV_NAMES, type GatewayConfig, loadConfig } from '../gateway/config/index.js';
export { createLogger } from '../gateway/logging.js';
export { type RunningGateway, startGateway } from '../gateway/runtime.js';
