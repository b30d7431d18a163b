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

/** Registers routes and remembers them for the OpenAPI document. */
export class RouteTable {
  readonly routes: DocumentedRoute[] = [];

  constructor(
    readonly app: FastifyInstance,
    private readonly keys: ApiKeys,
  ) {}

  add<RG extends RouteGenericInterface>(spec: RouteSpec<RG>): void {
    const { handler, ...documented } = spec;
    this.routes.push(documented);
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
}
