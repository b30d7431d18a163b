/**
 * Header names of the HTTP hop. HTTP header names are case-insensitive; Node hands them to us lower-cased,
 * so the constants are lower-case and the docs spell them `Exactly-Once-Token` etc.
 */
export const HEADERS = {
  /** The token id the request must consume. */
  token: 'exactly-once-token',
  /** The conversation the signal belongs to (informational; the store's token record is authoritative). */
  conversation: 'exactly-once-conversation',
  /** On answers of exactly-once routes: `processed` (this request changed state) or `duplicate` (a replay). */
  status: 'exactly-once-status',
  /** W3C trace context, forwarded when the token carries it. */
  traceparent: 'traceparent',
  tracestate: 'tracestate',
} as const;

export type ExactlyOnceStatus = 'processed' | 'duplicate';

/** Headers the client sets itself: a token's stored headers may not override them. */
export const RESERVED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  HEADERS.token,
  HEADERS.conversation,
  'content-type',
  'content-length',
  'host',
  'connection',
  'transfer-encoding',
]);

/** A header as Node parsed it: a repeated header arrives as an array (or joined with ", "). */
export function singleHeader(value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) return value.length === 1 ? value[0] : value.join(', ');
  return value;
}
