import type { Span } from '@opentelemetry/api';
import type { ConsumeMessage } from 'amqplib';
import type { TraceHeaders } from '../../core/trace-context.js';
import { noteError, receiving, recordFailure, TraceAttributes } from '../../core/tracing.js';
import type { Disposition } from './disposition.js';
import { AmqpHeaders, headerText } from './headers.js';

/** Runs the handling of one delivery in its receive span, continuing the trace its message carries. */
export function receiveDelivery<T>(
  message: ConsumeMessage,
  queue: string,
  endpoint: string,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  return receiving(
    'amqp',
    () => traceHeaders(message),
    () => deliveryAttributes(message, queue, endpoint),
    work,
  );
}

function traceHeaders(message: ConsumeMessage): TraceHeaders {
  const headers = message.properties.headers;
  return { traceparent: headerText(headers, 'traceparent'), tracestate: headerText(headers, 'tracestate') };
}

function deliveryAttributes(message: ConsumeMessage, queue: string, endpoint: string) {
  const headers = message.properties.headers;
  const attributes: Record<string, string | boolean> = {
    [TraceAttributes.endpoint]: endpoint,
    'messaging.system': 'rabbitmq',
    'messaging.operation.type': 'process',
    'messaging.destination.name': message.fields.exchange,
    'messaging.destination.subscription.name': queue,
    'messaging.rabbitmq.destination.routing_key': message.fields.routingKey,
    'messaging.rabbitmq.message.redelivered': message.fields.redelivered,
  };
  // Header values come from outside: never record more of them than a real id could be.
  const token = headerText(headers, AmqpHeaders.token);
  if (token !== undefined) attributes[TraceAttributes.tokenId] = token.slice(0, 128);
  const conversation = headerText(headers, AmqpHeaders.conversation);
  if (conversation) attributes['messaging.message.conversation_id'] = conversation.slice(0, 128);
  const messageId = message.properties.messageId;
  if (typeof messageId === 'string') attributes['messaging.message.id'] = messageId.slice(0, 128);
  return attributes;
}

/** A failed run: noted when the delivery runs again, the span's error when it is parked or given back. */
export function traceDisposition(span: Span, error: unknown, next: Disposition): void {
  if (next.action === 'retry') noteError(span, error);
  else recordFailure(span, error, next.action === 'dead-letter' ? 'dead-lettered' : 'requeued');
}
