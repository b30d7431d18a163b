import type { FastifyInstance, FastifyReply, FastifyRequest, RouteGenericInterface } from 'fastify';
import type { ApiKeys, Scope } from './auth.js';
import type { JsonSchema } from './schemas.js';

export interface RouteSchema {
  params?: JsonSchema;
  querystring?: JsonSchema;
  headers?: JsonSchema;
  body?: JsonSchema;
  response: Record<string, JsonSchema>;
}

/** One documented route: fastify gets its schema, the OpenAPI generator gets the same object. */
export interface RouteSpec<RG extends RouteGenericInterface = RouteGenericInterface> {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  operationId: string;
  summary: string;
  tag: string;
  /** Required API key scope; absent = public (health). */
  scope?: Scope;
  schema: RouteSchema;
  /**
   * Headers documented in OpenAPI but checked by the handler itself (the token header goes through the core's
   * requireTokenId, which gives the protocol's precise problems); validating them twice would cost every request.
   */
  documentedHeaders?: JsonSchema;
  handler: (request: FastifyRequest<RG>, reply: FastifyReply) => Promise<unknown>;
}

export type DocumentedRoute = Omit<RouteSpec, 'handler'>;

/** Registers routes and remembers them for the OpenAPI document and for 405 answers. */
export class RouteTable {
  readonly routes: DocumentedRoute[] = [];
  private readonly patterns: Array<{ method: string; path: RegExp }> = [];

  constructor(
    readonly app: FastifyInstance,
    private readonly keys: ApiKeys,
  ) {}

  add<RG extends RouteGenericInterface>(spec: RouteSpec<RG>): void {
    const { handler, ...documented } = spec;
    this.routes.push(documented);
    this.patterns.push({ method: spec.method, path: pathPattern(spec.url) });
    const keys = this.keys;
    const scope = spec.scope;
    this.app.route({
      method: spec.method,
      url: spec.url,
      schema: spec.schema,
      // Auth runs before body parsing, so an unauthenticated caller cannot make us parse a large body.
      // Without configured keys the API is open (loopback only): no hook at all on the hot path.
      ...(scope && keys.enabled
        ? {
            onRequest: async (request: FastifyRequest) => {
              keys.authorize(request, scope);
            },
          }
        : {}),
      handler: async (request, reply) => {
        // Fastify validated the request against spec.schema, which is what RG describes.
        const value = await handler(request as unknown as FastifyRequest<RG>, reply);
        return value === reply || reply.sent ? reply : reply.send(value);
      },
    });
  }

  /** A route registered straight on fastify (no schema, not in OpenAPI) that 405 answers should still know. */
  remember(method: RouteSpec['method'], url: string): void {
    this.patterns.push({ method, path: pathPattern(url) });
  }

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
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`);
}
