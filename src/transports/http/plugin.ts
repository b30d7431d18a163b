import type { Attributes, Span } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { crashPoint } from '../../core/crash.js';
import type { Dispatcher } from '../../core/dispatcher.js';
import { ConfigError } from '../../core/errors.js';
import type { JsonValue } from '../../core/fingerprint.js';
import { fanOut, type Logger, type Observer } from '../../core/observer.js';
import { processSignal, type RetryPolicy, requireTokenId } from '../../core/processor.js';
import type { TokenStore } from '../../core/store.js';
import type { TokenRecord } from '../../core/token.js';
import { markOutcome, receiving, recordFailure, TraceAttributes } from '../../core/tracing.js';
import type { HandlerContext } from '../../core/unit-of-work.js';
import { answerForDropped, answerForError, answerForInProgress, type RetryAfter } from './answers.js';
import { HEADERS, singleHeader } from './headers.js';
import { InProgressTokens } from './in-progress.js';
import type { IssuingRouteOptions } from './issuing-route.js';
import { LostAnswers } from './lost-answers.js';
import { type ProblemAnswer, sendProblem } from './problem-details.js';
import { problemErrorHandler } from './problem-mapping.js';
import { problemPagesRoute } from './problem-pages.js';
import { PropagatingContext } from './propagation.js';
import { captureResponse, sendStored } from './responses.js';

/** Per-route opt-in: `config: { exactlyOnce: true }` or `config: { exactlyOnce: { endpoint: 'orders' } }`. */
export interface ExactlyOnceRouteConfig {
  /** Endpoint name recorded as the token's `consumedBy`. Default: the plugin's `endpoint`, else "METHOD url". */
  endpoint?: string;
  /** Refuse requests without an Exactly-Once-Token (400). Default true; false runs them as a plain route. */
  required?: boolean;
  /** Response headers kept for replay, in addition to the plugin's `keepHeaders`. */
  keepHeaders?: readonly string[];
}

export interface TollgatePluginOptions {
  store: TokenStore;
  /** Default endpoint name of exactly-once routes. */
  endpoint?: string;
  /** Sends the signals handlers emit, right after their commit. Without one, the relay sends them later. */
  dispatcher?: Dispatcher;
  observers?: readonly Observer[];
  /** Default: fastify's logger. */
  logger?: Logger;
  inProgress?: {
    /** How long a copy of a request still running in this process is waited for before answering 409. Default 1000. */
    waitMs?: number;
    /** `Retry-After` of the 409 in-progress answer. Default 1. */
    retryAfterSeconds?: number;
  };
  /** `Retry-After` of 503 answers (store unavailable, state contention). Default 1. */
  unavailableRetryAfterSeconds?: number;
  /** Response headers kept for replay (lower-case). `content-type` is always kept. */
  keepHeaders?: readonly string[];
  retry?: RetryPolicy;
  limits?: {
    /** Request body limit of exactly-once routes that set none. Default 1 MiB. */
    bodyBytes?: number;
    /** Largest answer kept for replay (body + kept headers). Default 256 KiB (the token must fit a store item). */
    responseBytes?: number;
  };
  /**
   * Prefix of every problem `type`: a deployment's own docs (e.g. https://docs.example.com/tollgate/problems/),
   * used verbatim. Default "/problems/", relative to the server that answered.
   */
  problemBase?: string;
  /** Also serve GET /problems/:kind, a page per problem kind from the catalogue. Default false. */
  problemPages?: boolean;
  /**
   * Also serve an issuing route (default POST /v1/tokens, the gateway's contract), where other systems with
   * stores of their own issue a token here before they send the signal. Absent: no such route.
   */
  issuing?: IssuingRouteOptions;
  /** Close the store when fastify closes. Default false: whoever opened the store closes it. */
  closeStore?: boolean;
  clock?: () => number;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    exactlyOnce?: boolean | ExactlyOnceRouteConfig;
  }
  interface FastifyRequest {
    /**
     * The unit of work of an exactly-once route: state reads, staged writes and emitted signals, all
     * committed with the consumption of the request's token. Null on other routes.
     */
    tollgate: HandlerContext<JsonValue> | null;
  }
}

/**
 * The unit of work of the current exactly-once request; throws if the route did not opt in.
 * `Tx` names the handle the plugin's store gives on the application's own tables (`ctx.tx`), e.g. `PgTx`.
 */
export function tollgateOf<P = JsonValue, Tx = unknown>(request: FastifyRequest): HandlerContext<P, Tx> {
  if (!request.tollgate) {
    throw new ConfigError(
      'route config exactlyOnce',
      `${request.method} ${request.url} is not an exactly-once route`,
    );
  }
  return request.tollgate as HandlerContext<unknown> as HandlerContext<P, Tx>;
}

/** `mintedBy` of tokens the issuing route issues when the plugin has no `endpoint` name. */
const ISSUING_MINTER = 'issuing';
const DEFAULT_KEEP_HEADERS = ['content-type', 'location', 'etag', 'cache-control'];
const DEFAULT_BODY_BYTES = 1024 * 1024;
const DEFAULT_RESPONSE_BYTES = 256 * 1024;

interface RouteSettings {
  endpoint: string;
  required: boolean;
  keepHeaders: ReadonlySet<string>;
}

type RouteHandler = (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) => unknown;

async function tollgate(fastify: FastifyInstance, options: TollgatePluginOptions): Promise<void> {
  if (!options?.store) throw new ConfigError('store', 'the tollgate plugin needs a token store');
  const logger: Logger = options.logger ?? (fastify.log as unknown as Logger);
  const observe = fanOut(options.observers ?? []);
  const inProgress = new InProgressTokens();
  const lostAnswers = new LostAnswers();
  const waitMs = options.inProgress?.waitMs ?? 1_000;
  const retryAfter: RetryAfter = {
    inProgressSeconds: options.inProgress?.retryAfterSeconds ?? 1,
    unavailableSeconds: options.unavailableRetryAfterSeconds ?? 1,
  };
  const responseBytes = options.limits?.responseBytes ?? DEFAULT_RESPONSE_BYTES;
  let warnedNoDispatcher = false;
  const problemBase = options.problemBase;
  const errorHandler = problemErrorHandler(problemBase);

  fastify.decorateRequest('tollgate', null);
  if (options.problemPages) problemPagesRoute(fastify, problemBase);
  if (options.issuing) {
    // Loaded only when asked for: its strict TypeBox validator adds some 12 MB of code to a process that has TypeBox.
    const { addIssuingRoute } = await import('./issuing-route.js');
    addIssuingRoute(fastify, options.issuing, {
      store: options.store,
      observer: observe,
      clock: options.clock ?? Date.now,
      mintedBy: options.endpoint ?? ISSUING_MINTER,
      problemBase,
    });
  }

  fastify.addHook('onRoute', (route) => {
    const settings = routeSettings(route, options);
    if (!settings) return;
    const original = route.handler as RouteHandler;
    route.bodyLimit ??= options.limits?.bodyBytes ?? DEFAULT_BODY_BYTES;
    route.errorHandler ??= errorHandler;
    // Not async: the receive's own promise goes back to fastify without another one around it.
    route.handler = function exactlyOnce(this: FastifyInstance, request, reply) {
      return receiving(
        'http',
        () => traceContextOf(request),
        httpAttributes(request, settings),
        (span) => receive(this, original, request, reply, settings, span),
      );
    };
  });

  let closing = false;
  fastify.addHook('preClose', async () => {
    // New requests already get 503 from fastify; running ones finish their commit and answer before the
    // server closes its connections and the store goes away.
    closing = true;
    await inProgress.drain();
  });
  fastify.addHook('onClose', async () => {
    if (options.closeStore) await options.store.close();
  });

  /** A keep-alive connection left open by a request that ran across close would hold the server open. */
  function closeIfClosing(reply: FastifyReply): FastifyReply {
    return closing ? reply.header('connection', 'close') : reply;
  }
  const answerStored: typeof sendStored = (reply, stored, status) =>
    sendStored(closeIfClosing(reply), stored, status);
  const answerProblem = (reply: FastifyReply, answer: ProblemAnswer): FastifyReply =>
    sendProblem(closeIfClosing(reply), answer, problemBase);

  async function receive(
    instance: FastifyInstance,
    original: RouteHandler,
    request: FastifyRequest,
    reply: FastifyReply,
    settings: RouteSettings,
    span: Span,
  ): Promise<unknown> {
    const started = performance.now();
    const header = singleHeader(request.headers[HEADERS.token]);
    if (header === undefined && !settings.required) return original.call(instance, request, reply);

    let tokenId: string;
    try {
      tokenId = requireTokenId(header);
    } catch (error) {
      observe.rejected(settings.endpoint, undefined, 'token-header');
      markOutcome(span, 'rejected');
      return answerProblem(reply, answerForError(error, undefined, retryAfter));
    }

    const release = inProgress.tryEnter(tokenId) ?? (await inProgress.acquire(tokenId, waitMs));
    span.setAttribute(TraceAttributes.tokenId, tokenId);
    if (!release) {
      markOutcome(span, 'in-progress');
      return answerProblem(reply, answerForInProgress(tokenId, retryAfter));
    }

    const maybeCommitted = lostAnswers.take(tokenId);
    try {
      const outcome = await processSignal({
        store: options.store,
        maybeCommitted,
        span,
        endpoint: settings.endpoint,
        tokenId,
        payload: (request.body ?? null) as JsonValue,
        handler: async (context) => {
          // Traced, emitted signals carry this hop's span (the processor stamps them), not the caller's.
          const inherited = span.isRecording() ? {} : traceContextOf(request);
          request.tollgate = new PropagatingContext(context, inherited);
          const result = await original.call(instance, request, reply);
          if (reply.sent) {
            throw new ConfigError('handler', 'an exactly-once handler must return its answer, not send it');
          }
          return result;
        },
        respond: (result) => captureResponse(result, reply, settings.keepHeaders, responseBytes),
        observer: observe,
        // Undefined when not set (the processor's defaults apply): one object shape for every request.
        retry: options.retry,
        clock: options.clock,
      });
      request.tollgate = null;

      if (outcome.kind === 'processed') {
        await dispatchEmitted(outcome.emitted, tokenId);
        crashPoint('before-respond');
        // respond always returns an answer on this route, so a processed outcome carries one.
        answerStored(reply, outcome.response!, 'processed');
        observe.hopCompleted(settings.endpoint, performance.now() - started);
        return reply;
      }
      const kept = outcome.kind === 'dropped' ? outcome.token?.response : undefined;
      if (kept && outcome.token?.status === 'consumed') return answerStored(reply, kept, 'duplicate');
      return answerProblem(reply, answerForDropped(outcome, tokenId));
    } catch (error) {
      request.tollgate = null;
      recordFailure(span, error, 'error');
      lostAnswers.keep(tokenId, maybeCommitted);
      logger.warn(
        { err: error, token: tokenId, endpoint: settings.endpoint },
        'exactly-once request not processed',
      );
      if (reply.sent) return reply;
      return answerProblem(reply, answerForError(error, tokenId, retryAfter));
    } finally {
      release();
    }
  }

  /** PROTOCOL step 6: the emitted signals go out (and are marked dispatched) before the caller hears back. */
  async function dispatchEmitted(emitted: TokenRecord[], tokenId: string): Promise<void> {
    if (emitted.length === 0) return;
    if (!options.dispatcher) {
      if (!warnedNoDispatcher) {
        warnedNoDispatcher = true;
        logger.warn({ token: tokenId }, 'no dispatcher configured: emitted signals wait for the relay');
      }
      return;
    }
    // The dispatcher never throws for a failed send: the token stays pending and the relay retries it.
    await options.dispatcher.dispatch(emitted, 'hop');
  }
}

/** W3C trace context of the incoming request, handed on to the signals its handler emits. */
function traceContextOf(request: FastifyRequest): Record<string, string> {
  const trace: Record<string, string> = {};
  for (const name of [HEADERS.traceparent, HEADERS.tracestate]) {
    const value = singleHeader(request.headers[name]);
    if (value !== undefined) trace[name] = value;
  }
  return trace;
}

/** Attributes of the receive span, built only when it records. */
function httpAttributes(request: FastifyRequest, settings: RouteSettings): () => Attributes {
  return () => ({
    [TraceAttributes.endpoint]: settings.endpoint,
    'http.request.method': request.method,
    'http.route': request.routeOptions.url ?? request.url,
  });
}

function routeSettings(route: RouteOptions, options: TollgatePluginOptions): RouteSettings | undefined {
  const config = route.config?.exactlyOnce;
  if (config === undefined || config === false) return undefined;
  const perRoute: ExactlyOnceRouteConfig = config === true ? {} : config;
  const method = Array.isArray(route.method) ? route.method.join(',') : route.method;
  const keep = [...(options.keepHeaders ?? DEFAULT_KEEP_HEADERS), ...(perRoute.keepHeaders ?? [])];
  return {
    endpoint: perRoute.endpoint ?? options.endpoint ?? `${method} ${route.url}`,
    required: perRoute.required ?? true,
    keepHeaders: new Set(['content-type', ...keep.map((name) => name.toLowerCase())]),
  };
}

/**
 * Makes fastify routes exactly-once. Register it (awaited) before the routes that opt in with
 * `config: { exactlyOnce: ... }`; their handlers use `request.tollgate` (or `tollgateOf(request)`) and
 * return their answer instead of sending it.
 */
export const tollgatePlugin = fastifyPlugin(tollgate, { fastify: '5.x', name: 'tollgate' });
