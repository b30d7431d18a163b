import type { Registry } from 'prom-client';
import type { GatewayContext } from '../context.js';
import { buildOpenApi, type OpenApiDocument } from '../openapi.js';
import { healthSchema } from '../schemas.js';

/** A probe that hangs must not hang the readiness check: Kubernetes would time it out with no reason logged. */
const PROBE_TIMEOUT_MS = 2_000;

export function healthRoutes(ctx: GatewayContext): void {
  ctx.routes.add({
    method: 'GET',
    url: '/health/live',
    operationId: 'live',
    summary: 'Liveness: the process answers',
    tag: 'operations',
    schema: { response: { 200: healthSchema } },
    handler: async () => ({ status: 'ok' }),
  });

  ctx.routes.add({
    method: 'GET',
    url: '/health/ready',
    operationId: 'ready',
    summary: 'Readiness: the store and the broker are reachable and the gateway is not shutting down',
    tag: 'operations',
    schema: { response: { 200: healthSchema, 503: healthSchema } },
    handler: async (request, reply) => {
      const [store, broker] = await Promise.all([
        probe(() => ctx.store.ping()),
        ctx.broker
          ? probe(() => (ctx.broker as NonNullable<typeof ctx.broker>).ping())
          : Promise.resolve('not-configured'),
      ]);
      const lifecycle = ctx.lifecycle.draining ? 'draining' : 'running';
      const ok = store === 'ok' && broker !== 'unreachable' && !ctx.lifecycle.draining;
      if (!ok) request.log.warn({ store, broker, lifecycle }, 'not ready');
      return reply
        .code(ok ? 200 : 503)
        .send({ status: ok ? 'ok' : 'unavailable', checks: { store, broker, lifecycle } });
    },
  });
}

async function probe(check: () => Promise<void>): Promise<'ok' | 'unreachable'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'unreachable'>((resolve) => {
    timer = setTimeout(() => resolve('unreachable'), PROBE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([check().then(() => 'ok' as const), timeout]);
  } catch {
    return 'unreachable';
  } finally {
    clearTimeout(timer);
  }
}

/** /metrics and /v1/openapi.json are registered without schemas: they are not JSON objects we validate. */
export function metricsRoute(ctx: GatewayContext, registry: Registry): void {
  ctx.routes.remember('GET', '/metrics');
  ctx.routes.app.get('/metrics', async (_request, reply) => {
    const text = await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });
}

export function openApiRoute(ctx: GatewayContext, version: string): void {
  let document: OpenApiDocument | undefined;
  ctx.routes.remember('GET', '/v1/openapi.json');
  ctx.routes.app.get('/v1/openapi.json', async () => {
    // Built on first request, when every route is registered.
    document ??= buildOpenApi(ctx.routes.routes, version);
    return document;
  });
}
