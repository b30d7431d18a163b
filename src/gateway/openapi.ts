import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import type { Scope } from '../transports/http/api-keys.js';
import { DEFAULT_PROBLEM_BASE } from '../transports/http/index.js';

const SCOPE_NOTE: Record<Scope, string> = {
  read: 'Needs an API key with the read scope (or admin).',
  mint: 'Needs an API key with the mint scope (or admin).',
  admin: 'Needs an API key with the admin scope.',
};

/**
 * @fastify/swagger's options: an OpenAPI 3.1 document (whose schema dialect is JSON Schema) generated from the
 * TypeBox schemas fastify validates with, plus what route config says: the API key scope, and the headers a
 * handler checks itself.
 */
export function openApiOptions(
  version: string,
  problemBase: string | undefined,
): FastifyDynamicSwaggerOptions {
  const base = problemBase ?? DEFAULT_PROBLEM_BASE;
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Tollgate gateway',
        version,
        description:
          'Token mint and inspection API and HTTP→AMQP ingress. Errors are application/problem+json with a ' +
          `stable \`type\` ${base}<kind> and \`code\` TOLLGATE_ERR_*; GET /problems/{kind} describes each kind.`,
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key' },
        },
      },
    },
    transform: ({ schema, url, route }) => {
      const scope = route.config?.scope;
      const headers = route.config?.documentedHeaders;
      if (scope === undefined && headers === undefined) return { schema, url };
      const documented = { ...schema };
      if (scope !== undefined) {
        documented.description = SCOPE_NOTE[scope];
        documented.security = [{ bearer: [] }, { apiKey: [] }];
      }
      if (headers !== undefined) documented.headers = headers;
      return { schema: documented, url };
    },
  };
}
