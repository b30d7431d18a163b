import type { FastifyReply } from 'fastify';
import { ConfigError, LimitExceededError } from '../../core/errors.js';
import type { StoredResponse } from '../../core/token.js';
import { type ExactlyOnceStatus, HEADERS } from './headers.js';

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
const TEXT_CONTENT_TYPE = 'text/plain; charset=utf-8';

/**
 * Turns what a handler produced (its return value, plus the status and headers it set on the reply) into the
 * answer kept on the consumed token. The same text is sent now and replayed later, so both are byte-identical.
 */
export function captureResponse(
  result: unknown,
  reply: FastifyReply,
  keepHeaders: ReadonlySet<string>,
  maxBytes: number,
): StoredResponse {
  const explicitType = headerText(reply.getHeader('content-type'));
  let body: string;
  let contentType: string | undefined;
  if (result === undefined || result === null) {
    body = '';
    contentType = explicitType;
  } else if (Buffer.isBuffer(result) || isStream(result)) {
    // A replay must be byte-identical, so the answer is kept as text; binary and streamed answers cannot be.
    // The handler's mistake, not the request's: a 500, like a handler that sends instead of returning.
    throw new ConfigError(
      'handler',
      'an exactly-once handler must return JSON or a string, not a buffer or stream',
    );
  } else if (typeof result === 'string') {
    body = result;
    contentType = explicitType ?? TEXT_CONTENT_TYPE;
  } else {
    body = JSON.stringify(result);
    contentType = explicitType ?? JSON_CONTENT_TYPE;
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) {
    const lower = name.toLowerCase();
    const text = headerText(value);
    if (keepHeaders.has(lower) && text !== undefined) headers[lower] = text;
  }
  if (contentType !== undefined) headers['content-type'] = contentType;
  const stored: StoredResponse = { statusCode: reply.statusCode, headers, body };
  const size = Buffer.byteLength(body) + Buffer.byteLength(JSON.stringify(headers));
  if (size > maxBytes) {
    throw new LimitExceededError(`a response of ${size} bytes is too large to keep for replay`, {
      limit: maxBytes,
      actual: size,
    });
  }
  return stored;
}

/** Sends a kept answer, marked as the processed original or as its replay. */
export function sendStored(
  reply: FastifyReply,
  stored: StoredResponse,
  status: ExactlyOnceStatus,
): FastifyReply {
  reply.code(stored.statusCode);
  for (const [name, value] of Object.entries(stored.headers)) reply.header(name, value);
  reply.header(HEADERS.status, status);
  return reply.send(stored.body);
}

function isStream(value: unknown): boolean {
  return (
    typeof value === 'object' && value !== null && typeof (value as { pipe?: unknown }).pipe === 'function'
  );
}

function headerText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.map(String).join(', ');
  return String(value);
}
