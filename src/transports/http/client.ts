import { setMaxListeners } from 'node:events';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import { crashPoint } from '../../core/crash.js';
import type { SignalSender } from '../../core/dispatcher.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { type BackoffPolicy, backoffDelay, sleep } from '../../core/retry.js';
import type { TokenRecord } from '../../core/token.js';
import { type DeliveryOutcome, HttpDispatchError, judgeAnswer } from './delivery.js';
import {
  fetchExchange,
  type HttpAnswer,
  type HttpExchange,
  type HttpRequestSpec,
  NodeHttpExchange,
} from './exchange.js';
import { HEADERS, RESERVED_REQUEST_HEADERS } from './headers.js';
import {
  type CredentialResolver,
  type IssueCall,
  IssueRefusedError,
  issueCallFor,
  judgeIssueAnswer,
} from './issue-call.js';
import { PROBLEM_CONTENT_TYPE, problemKindOf } from './problems.js';

export interface HttpSenderOptions {
  /** Attempts per send, with "full jitter" exponential backoff. Default 5 attempts, 100 ms .. 5 s. */
  retry?: BackoffPolicy;
  /** Per-attempt timeout. Default 10 s. */
  timeoutMs?: number;
  /** A peer's Retry-After is honoured up to this. Default 30 s. */
  maxRetryAfterMs?: number;
  /** Largest total size of a token's forwarded headers. Default 8 KiB. */
  maxHeaderBytes?: number;
  /**
   * Sends every request through this fetch (a proxy's, a test's). Default: node:http and node:https with
   * keep-alive connections, which cost far less CPU per request than Node's fetch.
   */
  fetch?: typeof fetch;
  /**
   * Resolves a destination issuer's credential name to the API key sent to that issuer (only to it, as
   * `Authorization: Bearer`). A name it does not know refuses the signal for good.
   */
  credentials?: CredentialResolver;
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

/** What an attempt that neither delivered nor was refused leaves for the next one (and the final error). */
interface Attempted {
  step?: 'issue' | 'send';
  status?: number;
  problemType?: string;
  retryAfterMs?: number;
  cause?: unknown;
}

/** The issue call succeeded (or the receiver had already applied the token): the signal may go. */
const ISSUED = Symbol('issued');

const DEFAULT_RETRY: BackoffPolicy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 5_000 };
const BODYLESS_METHODS = new Set(['GET', 'HEAD']);

/**
 * Sends the HTTP signal a token describes, with the token id in `Exactly-Once-Token`, retrying the same token
 * on network errors, timeouts, 408/429/5xx and in-progress answers. Safe to retry: the receiver consumes the
 * token once and replays its answer to every later copy. A receiver with a store of its own (a destination
 * `issuer`) is first asked to issue the token, on the same retries.
 */
export class HttpSignalSender implements SignalSender {
  readonly medium = 'http' as const;
  private readonly retry: BackoffPolicy;
  private readonly timeoutMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly maxHeaderBytes: number;
  private readonly exchangeOnce: HttpExchange;
  private readonly nodeHttp: NodeHttpExchange | undefined;
  private readonly credentials: CredentialResolver | undefined;
  private readonly closing = new AbortController();

  constructor(options: HttpSenderOptions = {}) {
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
    this.maxHeaderBytes = options.maxHeaderBytes ?? 8 * 1024;
    if (options.fetch) this.exchangeOnce = fetchExchange(options.fetch);
    else {
      this.nodeHttp = new NodeHttpExchange();
      this.exchangeOnce = this.nodeHttp.exchange;
    }
    this.credentials = options.credentials;
    // Every request and retry pause in flight listens to this signal: many at once is normal, not a leak.
    setMaxListeners(0, this.closing.signal);
  }

  async send(token: TokenRecord): Promise<void> {
    await this.deliver(token);
  }

  /**
   * Like send, with the answer that counted as delivery. Rejects with HttpDispatchError (IssueRefusedError when
   * the receiver would not issue the token).
   *
   * A destination with an `issuer` has its own store: each attempt first issues the token there (idempotent on
   * the id and the payload's fingerprint), then sends the signal. A failed issue spends an attempt like a failed
   * send; once issued, later attempts only send.
   */
  async deliver(token: TokenRecord): Promise<Delivery> {
    const request = this.requestFor(token);
    const issuer = token.destination?.medium === 'http' ? token.destination.issuer : undefined;
    let issue = issuer === undefined ? undefined : await issueCallFor(token, issuer, this.credentials);
    crashPoint('before-send');
    let last: Attempted = {};
    let attempts = 0;
    for (let attempt = 1; attempt <= this.retry.attempts; attempt++) {
      if (this.closing.signal.aborted) break;
      attempts = attempt;
      let step: Attempted | Delivery | typeof ISSUED;
      try {
        step =
          issue === undefined
            ? await this.sendOnce(token, request, attempt)
            : await this.issueOnce(token, issue, attempt);
        if (step === ISSUED) {
          issue = undefined;
          crashPoint('after-issue');
          step = await this.sendOnce(token, request, attempt);
        }
      } catch (error) {
        if (error instanceof HttpDispatchError) throw error;
        // Network error or timeout: the request may or may not have arrived; the same token makes a retry safe.
        step = { step: issue === undefined ? 'send' : 'issue', cause: error };
      }
      if ('outcome' in step) return step;
      last = step;
      if (attempt < this.retry.attempts) {
        const backoff = backoffDelay(this.retry, attempt);
        await sleep(
          Math.min(Math.max(backoff, last.retryAfterMs ?? 0), this.maxRetryAfterMs),
          this.closing.signal,
        );
      }
    }
    const { cause, retryAfterMs: _, ...facts } = last;
    throw new HttpDispatchError(
      `token ${token.id} not delivered after ${attempts} attempts`,
      { tokenId: token.id, ...facts, retriable: true, attempts },
      cause === undefined ? undefined : { cause },
    );
  }

  /** One signal request: delivered, or what to remember before the next attempt. Throws on a refusal. */
  private async sendOnce(
    token: TokenRecord,
    request: HttpRequestSpec,
    attempt: number,
  ): Promise<Attempted | Delivery> {
    const { status, headers, body } = await this.exchange(request);
    const problemType = problemTypeOf(headers, body);
    const verdict = judgeAnswer(status, headers, problemType);
    if (verdict.kind === 'delivered') {
      return {
        tokenId: token.id,
        outcome: verdict.outcome,
        statusCode: status,
        headers,
        body,
        attempts: attempt,
      };
    }
    const answer = answerFacts('send', status, problemType);
    if (verdict.kind === 'permanent') {
      throw new HttpDispatchError(`peer refused token ${token.id} with ${status}`, {
        tokenId: token.id,
        ...answer,
        retriable: false,
        attempts: attempt,
      });
    }
    return verdict.retryAfterMs === undefined ? answer : { ...answer, retryAfterMs: verdict.retryAfterMs };
  }

  /** One issue call: ISSUED when the signal may go, or what to remember before the next attempt. */
  private async issueOnce(
    token: TokenRecord,
    issue: IssueCall,
    attempt: number,
  ): Promise<Attempted | typeof ISSUED> {
    const { status, headers, body } = await this.exchange(issue.request);
    const problemType = problemTypeOf(headers, body);
    const verdict = judgeIssueAnswer(status, headers, problemType);
    if (verdict.kind === 'issued' || verdict.kind === 'already-applied') return ISSUED;
    const answer = answerFacts('issue', status, problemType);
    if (verdict.kind === 'refused') {
      const kind = problemKindOf(problemType);
      throw new IssueRefusedError(
        `receiver ${issue.origin} refused to issue token ${token.id} with ${status}${kind ? ` ${kind}` : ''}`,
        {
          tokenId: token.id,
          issuer: issue.origin,
          ...(issue.credential === undefined ? {} : { credential: issue.credential }),
          ...answer,
          attempts: attempt,
        },
      );
    }
    return verdict.retryAfterMs === undefined ? answer : { ...answer, retryAfterMs: verdict.retryAfterMs };
  }

  /**
   * One request and its whole answer, under the timeout and cut short by close(). A controller of its own per
   * attempt, released in `finally`: AbortSignal.any() over the sender's long-lived signal would tie every
   * request's signal to it until the timeout fires, and costs more.
   */
  private async exchange(request: HttpRequestSpec): Promise<HttpAnswer> {
    const attempt = new AbortController();
    const timer = setTimeout(
      () => attempt.abort(new DOMException('the peer did not answer in time', 'TimeoutError')),
      this.timeoutMs,
    );
    const onClose = () => attempt.abort(this.closing.signal.reason);
    this.closing.signal.addEventListener('abort', onClose, { once: true });
    try {
      return await this.exchangeOnce(request, attempt.signal);
    } finally {
      clearTimeout(timer);
      this.closing.signal.removeEventListener('abort', onClose);
    }
  }

  /** Stops retries in progress (they reject; their tokens stay pending for the relay). */
  close(): void {
    this.closing.abort();
    this.nodeHttp?.close();
  }

  private requestFor(token: TokenRecord): HttpRequestSpec {
    const destination = token.destination;
    if (destination?.medium !== 'http') {
      throw new InvalidArgumentError(`token ${token.id} has no HTTP destination`, { tokenId: token.id });
    }
    const headers: Record<string, string> = {};
    let headerBytes = 0;
    for (const [name, value] of Object.entries(token.headers ?? {})) {
      const lower = name.toLowerCase();
      if (RESERVED_REQUEST_HEADERS.has(lower)) continue;
      // Refused here, as a header no request can carry, rather than as a network error on every attempt.
      validateHeaderName(lower);
      validateHeaderValue(lower, value);
      headerBytes += name.length + value.length;
      headers[lower] = value;
    }
    if (headerBytes > this.maxHeaderBytes) {
      throw new HttpDispatchError(`token ${token.id} carries ${headerBytes} bytes of headers`, {
        tokenId: token.id,
        retriable: false,
        attempts: 0,
      });
    }
    headers[HEADERS.token] = token.id;
    // A message bridged from outside may carry no conversation: send none rather than an empty header.
    if (token.conversationId !== '') headers[HEADERS.conversation] = token.conversationId;
    headers.accept = `application/json, ${PROBLEM_CONTENT_TYPE}`;
    if (BODYLESS_METHODS.has(destination.method))
      return { method: destination.method, url: destination.url, headers };
    headers['content-type'] = 'application/json';
    return {
      method: destination.method,
      url: destination.url,
      headers,
      body: JSON.stringify(token.payload ?? null),
    };
  }
}

function answerFacts(step: 'issue' | 'send', status: number, problemType: string | undefined): Attempted {
  return problemType === undefined ? { step, status } : { step, status, problemType };
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
