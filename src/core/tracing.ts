import {
  type Attributes,
  type Context,
  context,
  INVALID_SPAN_CONTEXT,
  ProxyTracerProvider,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { TollgateError } from './errors.js';
import { dropReason } from './observer.js';
import type { ProcessOutcome } from './processor.js';
import type { CommitFailure, CommitResult } from './store.js';
import type { Destination, TokenRecord } from './token.js';
import { continuing, type TraceHeaders, traceHeadersOf } from './trace-context.js';

/**
 * OpenTelemetry spans through `@opentelemetry/api` alone: the user brings the SDK. Without one every span is a
 * no-op, and each step below checks `isRecording()` before building attributes or touching a token.
 */
const tracer = trace.getTracer('tollgate');

/** The API's no-op provider, which a proxy without a delegate hands out. */
const NO_SDK = new ProxyTracerProvider().getDelegate();
/** Stands in for a receive span when nobody records. */
const UNTRACED: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * True when no SDK is registered: a pointer compare that spares each signal the traceparent parse (a regex and
 * two id checks, the bulk of the untraced cost).
 * A provider from another copy of the API fails the `instanceof` and takes the full, still correct, path.
 */
function untraced(): boolean {
  const provider = trace.getTracerProvider();
  return provider instanceof ProxyTracerProvider && provider.getDelegate() === NO_SDK;
}

/** One name per step; what a span concerns goes in attributes, so names stay low-cardinality. */
export const SpanNames = {
  /** A signal arrived (AMQP delivery, HTTP request); parent of the hop's other spans. */
  receive: 'tollgate.receive',
  /** The user's handler, once per run. */
  handler: 'tollgate.handler',
  /** The store commit consuming the token, with its transient retries. */
  commit: 'tollgate.commit',
  /** Sending one emitted signal (hop, relay or edge); the next hop's receive span is its child. */
  dispatch: 'tollgate.dispatch',
} as const;

export const TraceAttributes = {
  tokenId: 'tollgate.token.id',
  parentTokenId: 'tollgate.token.parent_id',
  conversationId: 'tollgate.conversation.id',
  endpoint: 'tollgate.endpoint',
  medium: 'tollgate.medium',
  outcome: 'tollgate.outcome',
  attempt: 'tollgate.attempt',
  via: 'tollgate.dispatch.via',
} as const;

type Medium = Destination['medium'];

/** What became of a received signal, a commit or a send: the value of `tollgate.outcome`. */
export type TraceOutcome =
  | 'processed'
  | 'duplicate'
  | 'unknown'
  | 'revoked'
  | 'expired'
  | 'rejected'
  | 'in-progress'
  | 'dead-lettered'
  | 'requeued'
  | 'error'
  | 'committed'
  | CommitFailure['kind']
  | 'dispatched'
  | 'failed';

/** Commit failures that are the store's fault; conflicts and duplicates are the protocol working. */
const STORE_FAULTS: ReadonlySet<CommitFailure['kind']> = new Set([
  'transient',
  'permanent',
  'mint-collision',
]);

/**
 * Runs a received signal's hop inside its receive span, continuing the propagated trace. The span goes to
 * `work` for the processor and the transport to annotate; a throw is recorded on it. Headers and attributes are
 * read only when the span records.
 */
export function receiving<T>(
  medium: Medium,
  headers: () => TraceHeaders,
  attributes: () => Attributes,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  // Not async: untraced, the work's own promise is returned without another tick.
  if (untraced()) return work(UNTRACED);
  const parent = continuing(headers());
  const kind = medium === 'amqp' ? SpanKind.CONSUMER : SpanKind.SERVER;
  const span = tracer.startSpan(SpanNames.receive, { kind }, parent);
  if (!span.isRecording()) return work(span);
  span.setAttributes({ [TraceAttributes.medium]: medium, ...attributes() });
  return settled(span, 'error', () => context.with(trace.setSpan(parent, span), work, undefined, span));
}

/**
 * The context a hop's handler and commit spans hang under: the receive span, or else the caller's active span.
 * Undefined when nobody records (no SDK, or the trace is not sampled): then the hop starts no span at all.
 */
export function hopTrace(receive: Span | undefined): Context | undefined {
  const active = context.active();
  const span = receive ?? trace.getSpan(active);
  return span?.isRecording() ? trace.setSpan(active, span) : undefined;
}

/** What the handler and commit spans tell of a hop (one run of the handler). */
export interface TracedHop {
  /** The context from `hopTrace`. */
  trace: Context | undefined;
  tokenId: string;
  attempt: number;
  request: { endpoint: string };
}

/** Runs the user's handler in a handler span (under `parent`: the commit span where the store's transaction holds it). */
export function traceHandler<T>(
  hop: TracedHop,
  conversationId: string | undefined,
  work: () => Promise<T>,
  parent = hop.trace,
): Promise<T> {
  return inSpan(parent, SpanNames.handler, () => hopAttributes(hop, conversationId), work);
}

/** Runs the commit (with its transient retries) in a commit span; `work` gets the span's context. */
export function traceCommit(
  hop: TracedHop,
  conversationId: string | undefined,
  work: (inside: Context | undefined) => Promise<CommitResult>,
): Promise<CommitResult> {
  return inSpan(hop.trace, SpanNames.commit, () => hopAttributes(hop, conversationId), work, settleCommit);
}

function hopAttributes(hop: TracedHop, conversationId: string | undefined): Attributes {
  const attributes: Attributes = {
    [TraceAttributes.tokenId]: hop.tokenId,
    [TraceAttributes.endpoint]: hop.request.endpoint,
    [TraceAttributes.attempt]: hop.attempt,
  };
  if (conversationId) attributes[TraceAttributes.conversationId] = conversationId;
  return attributes;
}

/** Records on the receive span what became of the signal, once the processor decided. */
export async function withOutcome<O extends ProcessOutcome<unknown>>(
  span: Span,
  running: Promise<O>,
): Promise<O> {
  const outcome = await running;
  markOutcome(span, outcomeOf(outcome), outcome.token?.conversationId);
  return outcome;
}

function outcomeOf(outcome: ProcessOutcome<unknown>): TraceOutcome {
  if (outcome.kind !== 'dropped') return outcome.kind;
  const reason = dropReason(outcome.error.code);
  return reason === 'consumed' ? 'duplicate' : reason;
}

/** Runs one step of a traced hop in a child span; bare when the hop is not traced. */
function inSpan<T>(
  parent: Context | undefined,
  name: string,
  attributes: () => Attributes,
  work: (inside: Context | undefined) => Promise<T>,
  settle?: (span: Span, result: T) => void,
): Promise<T> {
  // Not async, as `receiving`: untraced, the step's own promise is returned without extra ticks.
  if (!parent) return work(undefined);
  const span = tracer.startSpan(name, { attributes: attributes() }, parent);
  const inside = trace.setSpan(parent, span);
  return settled(span, 'error', async () => {
    const result = await context.with(inside, work, undefined, inside);
    settle?.(span, result);
    return result;
  });
}

/** Records the commit's verdict; only the store's own faults count as errors. */
function settleCommit(span: Span, result: CommitResult): void {
  if (result.ok) {
    span.setAttribute(TraceAttributes.outcome, 'committed' satisfies TraceOutcome);
    return;
  }
  span.setAttribute(TraceAttributes.outcome, result.failure.kind satisfies TraceOutcome);
  if (STORE_FAULTS.has(result.failure.kind)) span.setStatus({ code: SpanStatusCode.ERROR });
}

/**
 * Signals emitted in a traced hop remember the hop's span, so a send continues the trace even from a relay in
 * another process. A trace context the handler set itself is left alone.
 */
export function stampEmitted(tokens: readonly TokenRecord[], hop: Context | undefined): void {
  const span = hop && trace.getSpan(hop);
  if (!span || tokens.length === 0) return;
  const headers = traceHeadersOf(span);
  for (const token of tokens) {
    if (token.headers?.traceparent === undefined) token.headers = { ...token.headers, ...headers };
  }
}

/**
 * Sends one signal inside a dispatch span, under the trace its token was minted in. The signal then carries the
 * dispatch span's context, which the next hop continues; untraced, the token goes out exactly as stored.
 */
export function dispatching<T>(
  token: TokenRecord,
  via: string,
  send: (token: TokenRecord) => Promise<T>,
): Promise<T> {
  // Not async, as `receiving`.
  if (untraced()) return send(token);
  const headers = token.headers;
  const parent = continuing(headers ?? {});
  const medium = token.destination?.medium;
  const kind = medium === 'http' ? SpanKind.CLIENT : SpanKind.PRODUCER;
  const span = tracer.startSpan(SpanNames.dispatch, { kind }, parent);
  if (!span.isRecording()) return send(token);
  span.setAttributes(dispatchAttributes(token, via));
  const traced: TokenRecord = { ...token, headers: { ...headers, ...traceHeadersOf(span) } };
  return settled(span, 'failed', async () => {
    const sent = await context.with(trace.setSpan(parent, span), send, undefined, traced);
    span.setAttribute(TraceAttributes.outcome, 'dispatched' satisfies TraceOutcome);
    return sent;
  });
}

/**
 * Sends several signals with one call of the sender (a batch with one confirm wait), each in its own dispatch
 * span as `dispatching` would: the signals carry their span's context, and each span ends with its own verdict.
 * `sendMany` settles by position (undefined: sent; otherwise what stopped that one).
 */
export function dispatchingMany(
  tokens: readonly TokenRecord[],
  via: string,
  sendMany: (tokens: readonly TokenRecord[]) => Promise<unknown[]>,
): Promise<unknown[]> {
  // Not async, as `receiving`.
  if (untraced()) return sendMany(tokens);
  const spans: Array<Span | undefined> = [];
  const traced = tokens.map((token) => {
    const headers = token.headers;
    const parent = continuing(headers ?? {});
    const kind = token.destination?.medium === 'http' ? SpanKind.CLIENT : SpanKind.PRODUCER;
    const span = tracer.startSpan(SpanNames.dispatch, { kind }, parent);
    if (!span.isRecording()) return token;
    spans.push(span);
    span.setAttributes(dispatchAttributes(token, via));
    return { ...token, headers: { ...headers, ...traceHeadersOf(span) } };
  });
  if (spans.length === 0) return sendMany(tokens);
  const ending = (results: readonly unknown[] | undefined, thrown?: unknown) => {
    traced.forEach((token, i) => {
      const span = token === tokens[i] ? undefined : spans.shift();
      if (!span) return;
      const failure = results ? results[i] : thrown;
      if (failure === undefined)
        span.setAttribute(TraceAttributes.outcome, 'dispatched' satisfies TraceOutcome);
      else recordFailure(span, failure, 'failed');
      span.end();
    });
  };
  return sendMany(traced).then(
    (results) => {
      ending(results);
      return results;
    },
    (error: unknown) => {
      ending(undefined, error);
      throw error;
    },
  );
}

function dispatchAttributes(token: TokenRecord, via: string): Attributes {
  const attributes: Attributes = {
    [TraceAttributes.tokenId]: token.id,
    [TraceAttributes.conversationId]: token.conversationId,
    [TraceAttributes.via]: via,
    'messaging.message.id': token.id,
  };
  if (token.parentId !== undefined) attributes[TraceAttributes.parentTokenId] = token.parentId;
  const destination = token.destination;
  if (destination?.medium === 'amqp') {
    attributes[TraceAttributes.medium] = 'amqp';
    attributes['messaging.system'] = 'rabbitmq';
    attributes['messaging.operation.type'] = 'send';
    attributes['messaging.destination.name'] = destination.exchange;
    attributes['messaging.rabbitmq.destination.routing_key'] = destination.routingKey;
    attributes['messaging.message.conversation_id'] = token.conversationId;
  } else if (destination?.medium === 'http') {
    attributes[TraceAttributes.medium] = 'http';
    attributes['http.request.method'] = destination.method;
    attributes['url.full'] = destination.url;
  }
  return attributes;
}

/** Sets a span's outcome (and the conversation, once the token record told it). */
export function markOutcome(span: Span | undefined, outcome: TraceOutcome, conversationId?: string): void {
  if (!span?.isRecording()) return;
  span.setAttribute(TraceAttributes.outcome, outcome);
  if (conversationId) span.setAttribute(TraceAttributes.conversationId, conversationId);
}

/** Records an error on a span, with its Tollgate code as `error.type`, and marks the span failed. */
export function recordFailure(span: Span | undefined, error: unknown, outcome?: TraceOutcome): void {
  if (!span?.isRecording()) return;
  noteError(span, error);
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
  if (outcome) span.setAttribute(TraceAttributes.outcome, outcome);
}

/** Records an error that did not end the work (a run that will be retried), leaving the status alone. */
export function noteError(span: Span | undefined, error: unknown): void {
  if (!span?.isRecording()) return;
  span.recordException(error instanceof Error ? error : String(error));
  span.setAttribute('error.type', error instanceof TollgateError ? error.code : errorName(error));
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

/** Ends `span` after `work`, recording a throw as its error. */
async function settled<T>(span: Span, failed: TraceOutcome, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    recordFailure(span, error, failed);
    throw error;
  } finally {
    span.end();
  }
}
