import { setMaxListeners } from 'node:events';
import { crashPoint } from '../../core/crash.js';
import type { SignalSender } from '../../core/dispatcher.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { type BackoffPolicy, backoffDelay, sleep } from '../../core/retry.js';
import type { TokenRecord } from '../../core/token.js';
import { type DeliveryOutcome, HttpDispatchError, judgeAnswer } from './delivery.js';
import { HEADERS, RESERVED_REQUEST_HEADERS } from './headers.js';
import { PROBLEM_CONTENT_TYPE } from './problems.js';

export interface HttpSenderOptions {
  /** Attempts per send, with "full jitter" exponential backoff. Default 5 attempts, 100 ms .. 5 s. */
  retry?: BackoffPolicy;
  /** Per-attempt timeout. Default 10 s. */
  timeoutMs?: number;
  /** A peer's Retry-After is honoured up to this. Default 30 s. */
  maxRetryAfterMs?: number;
  /** Largest total size of a token's forwarded headers. Default 8 KiB. */
  maxHeaderBytes?: number;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
}

/** The answer that made a signal count as delivered. */
export interface Delivery {
  tokenId: string;
  outcome: DeliveryOutcome;
  statusCode: number;
  headers: Headers;
  body: string;
  attempts: number;
}

const DEFAULT_RETRY: BackoffPolicy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 5_000 };
const BODYLESS_METHODS = new Set(['GET', 'HEAD']);

/**
 * Sends the HTTP signal a token describes, with the token id in `Exactly-Once-Token`, retrying the same token
 * on network errors, timeouts, 408/429/5xx and in-progress answers. Safe to retry: the receiver consumes the
 * token once and replays its answer to every later copy.
 */
export class HttpSignalSender implements SignalSender {
  readonly medium = 'http' as const;
  private readonly retry: BackoffPolicy;
  private readonly timeoutMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly maxHeaderBytes: number;
  private readonly fetch: typeof fetch;
  private readonly closing = new AbortController();

  constructor(options: HttpSenderOptions = {}) {
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
    this.maxHeaderBytes = options.maxHeaderBytes ?? 8 * 1024;
    this.fetch = options.fetch ?? globalThis.fetch;
    // Every request and retry pause in flight listens to this signal: many at once is normal, not a leak.
    setMaxListeners(0, this.closing.signal);
  }

  async send(token: TokenRecord): Promise<void> {
    await this.deliver(token);
  }

  /** Like send, with the answer that counted as delivery. Rejects with HttpDispatchError. */
  async deliver(token: TokenRecord): Promise<Delivery> {
    const request = this.requestFor(token);
    crashPoint('before-send');
    let last: { status?: number; problemType?: string; cause?: unknown } = {};
    let attempts = 0;
    for (let attempt = 1; attempt <= this.retry.attempts; attempt++) {
      if (this.closing.signal.aborted) break;
      attempts = attempt;
      let retryAfterMs: number | undefined;
      try {
        const { response, body } = await this.exchange(request);
        const problemType = problemTypeOf(response.headers, body);
        const verdict = judgeAnswer(response.status, response.headers, problemType);
        if (verdict.kind === 'delivered') {
          return {
            tokenId: token.id,
            outcome: verdict.outcome,
            statusCode: response.status,
            headers: response.headers,
            body,
            attempts: attempt,
          };
        }
        last =
          problemType === undefined ? { status: response.status } : { status: response.status, problemType };
        if (verdict.kind === 'permanent') {
          throw new HttpDispatchError(`peer refused token ${token.id} with ${response.status}`, {
            tokenId: token.id,
            ...last,
            retriable: false,
            attempts: attempt,
          });
        }
        retryAfterMs = verdict.retryAfterMs;
      } catch (error) {
        if (error instanceof HttpDispatchError) throw error;
        // Network error or timeout: the request may or may not have arrived; the same token makes a retry safe.
        last = { cause: error };
      }
      if (attempt < this.retry.attempts) {
        const backoff = backoffDelay(this.retry, attempt);
        await sleep(
          Math.min(Math.max(backoff, retryAfterMs ?? 0), this.maxRetryAfterMs),
          this.closing.signal,
        );
      }
    }
    const { cause, ...facts } = last;
    throw new HttpDispatchError(
      `token ${token.id} not delivered after ${attempts} attempts`,
      { tokenId: token.id, ...facts, retriable: true, attempts },
      cause === undefined ? undefined : { cause },
    );
  }

  /**
   * One request and its whole answer, under the timeout and cut short by close(). A controller of its own per
   * attempt, released in `finally`: AbortSignal.any() over the sender's long-lived signal would tie every
   * request's signal to it until the timeout fires, and costs more.
   */
  private async exchange(request: {
    method: string;
    url: string;
    headers: Headers;
    body?: string;
  }): Promise<{ response: Response; body: string }> {
    const attempt = new AbortController();
    const timer = setTimeout(
      () => attempt.abort(new DOMException('the peer did not answer in time', 'TimeoutError')),
      this.timeoutMs,
    );
    const onClose = () => attempt.abort(this.closing.signal.reason);
    this.closing.signal.addEventListener('abort', onClose, { once: true });
    try {
      const response = await this.fetch(request.url, {
        method: request.method,
        headers: request.headers,
        ...(request.body === undefined ? {} : { body: request.body }),
        signal: attempt.signal,
      });
      return { response, body: await response.text() };
    } finally {
      clearTimeout(timer);
      this.closing.signal.removeEventListener('abort', onClose);
    }
  }

  /** Stops retries in progress (they reject; their tokens stay pending for the relay). */
  close(): void {
    this.closing.abort();
  }

  private requestFor(token: TokenRecord): { method: string; url: string; headers: Headers; body?: string } {
    const destination = token.destination;
    if (destination?.medium !== 'http') {
      throw new InvalidArgumentError(`token ${token.id} has no HTTP destination`, { tokenId: token.id });
    }
    const headers = new Headers();
    let headerBytes = 0;
    for (const [name, value] of Object.entries(token.headers ?? {})) {
      if (RESERVED_REQUEST_HEADERS.has(name.toLowerCase())) continue;
      headerBytes += name.length + value.length;
      headers.set(name, value);
    }
    if (headerBytes > this.maxHeaderBytes) {
      throw new HttpDispatchError(`token ${token.id} carries ${headerBytes} bytes of headers`, {
        tokenId: token.id,
        retriable: false,
        attempts: 0,
      });
    }
    headers.set(HEADERS.token, token.id);
    // A message bridged from outside may carry no conversation: send none rather than an empty header.
    if (token.conversationId !== '') headers.set(HEADERS.conversation, token.conversationId);
    headers.set('accept', `application/json, ${PROBLEM_CONTENT_TYPE}`);
    if (BODYLESS_METHODS.has(destination.method))
      return { method: destination.method, url: destination.url, headers };
    headers.set('content-type', 'application/json');
    return {
      method: destination.method,
      url: destination.url,
      headers,
      body: JSON.stringify(token.payload ?? null),
    };
  }
}

function problemTypeOf(headers: Headers, body: string): string | undefined {
  if (!headers.get('content-type')?.startsWith(PROBLEM_CONTENT_TYPE)) return undefined;
  try {
    const parsed: unknown = JSON.parse(body);
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      'type' in parsed &&
      typeof parsed.type === 'string'
    ) {
      return parsed.type;
    }
  } catch {
    // not a problem document after all: judged on the status alone
  }
  return undefined;
}
