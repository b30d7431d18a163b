import { PROBLEM_CONTENT_TYPE } from './problems.js';
import type { DocumentedRoute } from './routing.js';
import type { JsonSchema } from './schemas.js';

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description: string };
  components: { securitySchemes: Record<string, JsonSchema> };
  paths: Record<string, Record<string, JsonSchema>>;
}

const SCOPE_NOTE: Record<string, string> = {
  read: 'Needs an API key with the read scope (or admin).',
  mint: 'Needs an API key with the mint scope (or admin).',
  admin: 'Needs an API key with the admin scope.',
};

/** OpenAPI 3.1 (whose schema dialect is JSON Schema) built from the schemas fastify validates with. */
export function buildOpenApi(routes: readonly DocumentedRoute[], version: string): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {};
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    paths[path] ??= {};
    (paths[path] as Record<string, JsonSchema>)[route.method.toLowerCase()] = operation(route);
  }
  paths['/metrics'] = {
    get: {
      operationId: 'metrics',
      summary: 'Prometheus metrics (text exposition format)',
      tags: ['operations'],
      responses: {
        '200': { description: 'metrics', content: { 'text/plain': { schema: { type: 'string' } } } },
      },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'Tollgate gateway',
      version,
      description:
        'Token mint and inspection API and HTTP→AMQP ingress. Errors are application/problem+json with stable ' +
        '`type` URIs https://tollgate.dev/problems/<kind>.',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key' },
      },
    },
    paths,
  };
}

function operation(route: DocumentedRoute): JsonSchema {
  const { schema } = route;
  const parameters = [
    ...parametersOf(schema.params, 'path'),
    ...parametersOf(schema.querystring, 'query'),
    ...parametersOf(schema.headers ?? route.documentedHeaders, 'header'),
  ];
  const responses: Record<string, JsonSchema> = {};
  for (const [status, body] of Object.entries(schema.response)) {
    const problem = Number(status) >= 400;
    responses[status] = {
      description: problem ? 'problem' : 'success',
      content: { [problem ? PROBLEM_CONTENT_TYPE : 'application/json']: { schema: body } },
    };
  }
  const op: Record<string, unknown> = {
    operationId: route.operationId,
    summary: route.summary,
    tags: [route.tag],
    responses,
  };
  if (route.scope) {
    op.description = SCOPE_NOTE[route.scope];
    op.security = [{ bearer: [] }, { apiKey: [] }];
  }
  if (parameters.length > 0) op.parameters = parameters;
  if (schema.body)
    op.requestBody = { required: true, content: { 'application/json': { schema: schema.body } } };
  return op;
}

function parametersOf(schema: JsonSchema | undefined, location: 'path' | 'query' | 'header'): JsonSchema[] {
  if (!schema) return [];
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...rest } = property;
    const parameter: Record<string, unknown> = {
      name,
      in: location,
      required: location === 'path' || required.has(name),
      schema: rest,
    };
    if (description !== undefined) parameter.description = description;
    return parameter;
  });
}
