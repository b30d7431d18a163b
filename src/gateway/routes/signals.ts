import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { fingerprint as fingerprintOf, type JsonValue } from '../../core/fingerprint.js';
import { dropReason } from '../../core/observer.js';
import { requireTokenId } from '../../core/processor.js';
import { screen } from '../../core/screen.js';
import type { Destination, TokenRecord } from '../../core/token.js';
import { ProblemError } from '../../transports/http/index.js';
import type { IngressRoute } from '../config/index.js';
import type { GatewayContext } from '../context.js';
import { signalFields } from '../logging.js';
import { problems, signalAcceptedSchema, signalBodySchema, signalHeaders, signalParams } from '../schemas.js';

export const TOKEN_HEADER = 'exactly-once-token';

/**
 * HTTP → AMQP ingress. Checks the token (exists, live, bound to this body) but does not consume it: the handler
 * that changes state consumes it. Answers 202 only after the broker confirmed the message, so a 202 is never lost;
 * any other answer means "retry with the same token", which is always safe.
 */
export const signalRoutes: FastifyPluginAsyncTypebox<GatewayContext> = async (app, ctx) => {
  // Each route with its endpoint name (metrics, logs), built once rather than on every request.
  const byRoute = new Map(
    ctx.config.bridges.ingress.map((route) => [route.route, { route, endpoint: `ingress:${route.route}` }]),
  );

  app.post(
    '/v1/signals/:route',
    {
      config: { scope: 'mint', documentedHeaders: signalHeaders },
      schema: {
        operationId: 'postSignal',
        summary:
          "Publish a signal to the route's exchange (202 once the broker confirms); the token is not consumed",
        tags: ['bridges'],
        params: signalParams,
        body: signalBodySchema,
        response: { 202: signalAcceptedSchema, ...problems(400, 401, 403, 404, 409, 413, 415, 422, 503) },
      },
    },
    async (request, reply) => {
      const started = performance.now();
      const ingress = byRoute.get(request.params.route);
      if (!ingress)
        throw new ProblemError('route-not-found', `no ingress route "${request.params.route}" is configured`);
      const { route, endpoint } = ingress;
      const header = request.headers[TOKEN_HEADER];
      const tokenId = requireTokenId(typeof header === 'string' ? header : undefined);
      if (request.body === undefined) throw new ProblemError('validation', 'the signal needs a JSON body');
      const payload = request.body as JsonValue;
      const token = await checkToken(ctx, endpoint, tokenId, fingerprintOf(payload));
      checkDestination(ctx, endpoint, token, route);
      if (!ctx.publisher)
        throw new ProblemError('broker-unavailable', 'the gateway runs without a broker', {
          retryAfterSeconds: 5,
        });
      try {
        await ctx.publisher.send(outgoing(token, route, payload));
      } catch (error) {
        request.log.warn(
          { ...signalFields(endpoint, tokenId, token.conversationId), err: error },
          'ingress publish not confirmed',
        );
        throw new ProblemError(
          'broker-unavailable',
          'the broker did not confirm the message; retry with the same token',
          {
            tokenId,
            retryAfterSeconds: 1,
          },
        );
      }
      ctx.observer.hopCompleted(endpoint, performance.now() - started);
      request.log.info(
        {
          ...signalFields(endpoint, tokenId, token.conversationId),
          exchange: route.exchange,
          routingKey: route.routingKey,
        },
        'signal published',
      );
      return reply.code(202).send({
        token: tokenId,
        conversationId: token.conversationId,
        route: route.route,
        exchange: route.exchange,
        routingKey: route.routingKey,
      });
    },
  );
};

/**
 * The cheap check of the protocol (the core's `screen`), without consuming: a known duplicate never reaches the
 * broker. A refused signal is counted and logged, and answered with the core's error, which the problem catalogue
 * maps as the fastify plugin's answers are mapped.
 */
async function checkToken(
  ctx: GatewayContext,
  endpoint: string,
  tokenId: string,
  fingerprint: string,
): Promise<TokenRecord> {
  const token = await ctx.store.getToken(tokenId);
  const refusal = screen(tokenId, token, fingerprint, ctx.clock());
  // screen passes only a token it found.
  if (refusal === undefined) return token as TokenRecord;
  const fields = signalFields(endpoint, tokenId, token?.conversationId);
  if (refusal.kind === 'dropped') {
    const reason = dropReason(refusal.error.code);
    ctx.observer.dropped(endpoint, tokenId, reason);
    ctx.logger.info(fields, `ingress dropped signal: token ${reason}`);
  } else {
    ctx.observer.rejected(endpoint, tokenId, 'fingerprint-mismatch');
    ctx.logger.warn(fields, 'ingress refused signal: fingerprint mismatch');
  }
  throw refusal.error;
}

/**
 * A token minted with a destination may only travel there: a token minted for one route (or another service)
 * must not publish to a different exchange. Tokens minted without a destination are accepted on any route.
 */
function checkDestination(
  ctx: GatewayContext,
  endpoint: string,
  token: TokenRecord,
  route: IngressRoute,
): void {
  const destination = token.destination;
  if (!destination || destinationMatches(destination, route)) return;
  ctx.observer.rejected(endpoint, token.id, 'destination-mismatch');
  ctx.logger.warn(
    signalFields(endpoint, token.id, token.conversationId),
    'ingress refused signal: token minted for another destination',
  );
  const where =
    destination.medium === 'amqp'
      ? `exchange "${destination.exchange}" with routing key "${destination.routingKey}"`
      : `${destination.method} ${destination.url}`;
  throw new ProblemError(
    'destination-mismatch',
    `token ${token.id} was minted for ${where}, not route "${route.route}"`,
    {
      tokenId: token.id,
    },
  );
}

/** An HTTP destination matches when it is a POST to this route's path (behind any prefix a proxy adds). */
function destinationMatches(destination: Destination, route: IngressRoute): boolean {
  if (destination.medium === 'amqp')
    return destination.exchange === route.exchange && destination.routingKey === route.routingKey;
  if (destination.method !== 'POST') return false;
  let path: string;
  try {
    path = new URL(destination.url).pathname;
  } catch {
    return false;
  }
  return path.replace(/\/+$/, '').endsWith(`/v1/signals/${encodeURIComponent(route.route)}`);
}

/**
 * The message to publish, described as a token so any core SignalSender (the AMQP transport's) can send it.
 * Built field by field: only what a sender reads, and no copy of the stored record's bookkeeping.
 */
function outgoing(token: TokenRecord, route: IngressRoute, payload: JsonValue): TokenRecord {
  return {
    id: token.id,
    conversationId: token.conversationId,
    mintedBy: token.mintedBy,
    status: token.status,
    mintedAt: token.mintedAt,
    attempts: token.attempts,
    destination: { medium: 'amqp', exchange: route.exchange, routingKey: route.routingKey },
    payload,
  };
}
