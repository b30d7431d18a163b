import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
  RouteOptions,
} from 'fastify';
import type { TSchema } from 'typebox';
import type { ApiKeys, Scope } from '../transports/http/api-keys.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** API key scope a gateway route needs; absent = public (health, documents). */
    scope?: Scope;
    /**
     * Headers documented in OpenAPI but checked by the handler itself (the token header goes through the core's
     * requireTokenId, which gives the protocol's precise problems); validating them twice would cost every request.
     */
    documentedHeaders?: TSchema;
  }
}

/** The gateway's fastify instance: route types come from the TypeBox schemas. */
export type GatewayApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/**
 * Watches every route the gateway registers (an onRoute hook): adds the API key check its `config.scope` asks for,
 * and remembers its path so that a known path asked with the wrong method answers 405, not 404.
 */
export class RouteTable {
  private readonly patterns: Array<{ method: string; path: RegExp }> = [];

  constructor(private readonly keys: ApiKeys) {}

  readonly onRoute = (route: RouteOptions): void => {
    for (const method of [route.method].flat()) this.patterns.push({ method, path: pathPattern(route.url) });
    const scope = route.config?.scope;
    // Without configured keys the API is open (loopback only): no hook at all on the hot path.
    if (scope === undefined || !this.keys.enabled) return;
    route.onRequest = [this.keys.hook(scope), ...[route.onRequest ?? []].flat()];
  };

  /**
   * The methods some route accepts on this path (with HEAD wherever GET is), so that a known path asked with
   * the wrong method gets 405 and an Allow header rather than a 404 that suggests the path is wrong.
   */
  allowedMethods(path: string): string[] {
    const methods = new Set<string>();
    for (const { method, path: pattern } of this.patterns) {
      if (!pattern.test(path)) continue;
      methods.add(method);
      if (method === 'GET') methods.add('HEAD');
    }
    return [...methods].sort();
  }
}

/** `/v1/tokens/:id/redispatch` → a regular expression matching that route's concrete paths. */
function pathPattern(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) => {
      if (segment.startsWith(':')) return '[^/]+';
      // A wildcard route (`/console/assets/*`) takes whatever follows.
      if (segment === '*') return '.*';
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return new RegExp(`^${source}$`);
}
