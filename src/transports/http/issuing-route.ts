import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ConfigError } from '../../core/errors.js';
import type { Observer } from '../../core/observer.js';
import type { TokenStore } from '../../core/store.js';
import { ApiKeys } from './api-keys.js';
import { answerIssue, DEFAULT_ISSUING_PATH, issueRouteSchema } from './issuing.js';
import { ProblemError } from './problem-details.js';
import { problemErrorHandler } from './problem-mapping.js';
import type { IssueBody } from './token-schemas.js';

/**
 * The plugin's `issuing` option: a route where other systems, which keep their tokens in stores of their own,
 * issue a token here before they send the signal, the same contract as the gateway's POST /v1/tokens.
 */
export interface IssuingRouteOptions {
  /** Default "/v1/tokens", the gateway's path, so a sender need not know which of the two it calls. */
  path?: string;
  /** The API keys accepted (the mint scope), as `Authorization: Bearer <key>` or `X-Api-Key: <key>`. */
  keys: readonly string[];
  /** Expiry of tokens whose caller sets none. Default 24 hours, as the gateway's. */
  defaultTtlMs?: number;
  /** Larger bodies are refused with 413 before they are parsed. Default 256 KiB, as the gateway's. */
  maxBodyBytes?: number;
}

const DEFAULT_TTL_MS = 24 * 60 * 60 * 1000;
const DEFAULT_BODY_BYTES = 256 * 1024;

/** What the plugin lends its issuing route. */
export interface IssuingRouteContext {
  store: TokenStore;
  observer: Pick<Required<Observer>, 'minted'>;
  clock: () => number;
  /** Recorded as the issued tokens' `mintedBy`. */
  mintedBy: string;
  problemBase: string | undefined;
}

/**
 * Adds the issuing route to `fastify`. It validates with TypeBox rather than the application's Ajv settings, so a
 * wrong type or an unknown field is a 400 whatever coercion the application configured; the key check runs
 * before the body is read.
 */
export function addIssuingRoute(
  fastify: FastifyInstance,
  options: IssuingRouteOptions,
  context: IssuingRouteContext,
): void {
  const keys = checkedKeys(options.keys);
  const path = options.path ?? DEFAULT_ISSUING_PATH;
  const settings = {
    store: context.store,
    mintedBy: context.mintedBy,
    defaultTtlMs: options.defaultTtlMs ?? DEFAULT_TTL_MS,
    clock: context.clock,
    observer: context.observer,
    location: (id: string) => `${path}/${id}`,
  };
  fastify.post(
    path,
    {
      schema: issueRouteSchema,
      validatorCompiler: TypeBoxValidatorCompiler,
      bodyLimit: options.maxBodyBytes ?? DEFAULT_BODY_BYTES,
      errorHandler: problemErrorHandler(context.problemBase),
      onRequest: [keys.hook('mint'), requireJson],
    },
    (request, reply) => answerIssue(request.body as IssueBody, request, reply, settings),
  );
}

/** Without a key the route would let anyone issue tokens: refused at registration. */
function checkedKeys(keys: readonly string[] | undefined): ApiKeys {
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new ConfigError('issuing.keys', 'the issuing route needs at least one API key');
  }
  if (keys.some((key) => typeof key !== 'string' || !/^\S+$/.test(key))) {
    throw new ConfigError('issuing.keys', 'an API key is a non-empty string without spaces');
  }
  return new ApiKeys({ mint: keys });
}

/** The body is JSON; anything else is refused before the application's own parsers could read it. */
async function requireJson(request: FastifyRequest): Promise<void> {
  const type = request.headers['content-type'];
  if (type === undefined) return;
  const media = type.split(';')[0]?.trim().toLowerCase();
  if (media !== 'application/json') {
    throw new ProblemError('unsupported-media-type', `send the body as application/json, not ${media}`);
  }
}
