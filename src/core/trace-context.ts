import {
  type Context,
  context,
  createTraceState,
  isSpanContextValid,
  type Span,
  type SpanContext,
  trace,
} from '@opentelemetry/api';

/** W3C trace context as tokens, messages and requests carry it. */
export interface TraceHeaders {
  traceparent?: string | undefined;
  tracestate?: string | undefined;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * Reads a W3C `traceparent` (and `tracestate`) ourselves: a hop continues the trace whether or not the user
 * registered a propagator, and the header is W3C on every medium.
 */
export function parseTraceparent(
  traceparent: string | undefined,
  tracestate?: string | undefined,
): SpanContext | undefined {
  const match = traceparent === undefined ? null : TRACEPARENT.exec(traceparent.trim());
  if (!match) return undefined;
  const [, version, traceId = '', spanId = '', flags = '', rest] = match;
  // Version ff is forbidden; version 00 has exactly four fields (later versions may append more).
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  const remote: SpanContext = { traceId, spanId, traceFlags: Number.parseInt(flags, 16), isRemote: true };
  if (!isSpanContextValid(remote)) return undefined;
  if (tracestate) remote.traceState = createTraceState(tracestate);
  return remote;
}

export function formatTraceparent(spanContext: SpanContext): string {
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
  return `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
}

/** The trace headers of a signal emitted or sent under `span`. */
export function traceHeadersOf(span: Span): { traceparent: string; tracestate?: string } {
  const spanContext = span.spanContext();
  const state = spanContext.traceState?.serialize();
  const traceparent = formatTraceparent(spanContext);
  return state ? { traceparent, tracestate: state } : { traceparent };
}

/**
 * The context a received or re-sent signal continues. The propagated trace wins over the active context, which
 * may be stale (an AMQP delivery runs in the async context its connection was opened in), unless the active
 * span is of that very trace: then an instrumentation (HTTP server, amqplib) already continued it, and nesting
 * under its span keeps the tree whole.
 */
export function continuing(headers: TraceHeaders): Context {
  const active = context.active();
  const remote = parseTraceparent(headers.traceparent, headers.tracestate);
  if (!remote) return active;
  if (trace.getSpanContext(active)?.traceId === remote.traceId) return active;
  return trace.setSpanContext(active, remote);
}
