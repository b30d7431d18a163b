import type {
  ConversationGraph,
  Overview,
  ProblemDocument,
  ProcessInstance,
  TokenPage,
  TokenStatus,
  TokenView,
} from './types.js';

/** The gateway answered with an error: an RFC 9457 problem, or whatever a proxy in front of it sent. */
export class ApiProblem extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  /** The problem kind: the last segment of `type` (`token-not-found`), or `http-<status>` without a document. */
  readonly kind: string;

  constructor(status: number, document: ProblemDocument | undefined, statusText: string) {
    const title = document?.title ?? (statusText || `HTTP ${status}`);
    super(`${status} ${title}`);
    this.name = 'ApiProblem';
    this.status = status;
    this.title = title;
    this.detail = document?.detail ?? '';
    this.kind = document?.type?.split(/[/#:]/).pop() || `http-${status}`;
  }
}

/** The request got no HTTP answer from the gateway: refused, reset, timed out, or a proxy saying it is down. */
export class Unreachable extends Error {
  constructor(cause: unknown) {
    super('the gateway did not answer', { cause });
    this.name = 'Unreachable';
  }
}

/** The filter of the token list (GET /v1/tokens). */
export interface TokenQuery {
  status?: TokenStatus;
  conversation?: string;
  /** Only tokens older than this, in milliseconds. */
  olderThanMs?: number;
  limit?: number;
  cursor?: string;
}

/** A request that takes longer than this counts as unreachable; polling then backs off. */
const TIMEOUT_MS = 10_000;

/**
 * Never an answer from the HTTP cache, never a cookie: the key is the only credential. Spread into each request
 * rather than written inline, because the unit tests compile this module against Node's fetch types, which lack
 * `cache`: an inline member is refused as unknown there, a spread one is not (the DOM's types still check it).
 */
const EVERY_REQUEST = { cache: 'no-store', credentials: 'omit' } as const;

/**
 * The gateway's API as the console uses it. Every call carries the key as a bearer token (never in the URL, so
 * never in a log line or the history) and reports to `onReach` whether the gateway answered at all.
 */
export class Api {
  constructor(
    private readonly key: string,
    private readonly onReach: (reached: boolean) => void = () => undefined,
  ) {}

  overview(): Promise<Overview> {
    return this.call('GET', '/v1/overview');
  }

  tokens(query: TokenQuery): Promise<TokenPage> {
    const params = new URLSearchParams();
    if (query.status) params.set('status', query.status);
    if (query.conversation) params.set('conversation', query.conversation);
    if (query.olderThanMs) params.set('olderThan', String(Math.floor(query.olderThanMs)));
    if (query.limit) params.set('limit', String(query.limit));
    if (query.cursor) params.set('cursor', query.cursor);
    return this.call('GET', `/v1/tokens?${params}`);
  }

  token(id: string): Promise<TokenView> {
    return this.call('GET', `/v1/tokens/${encodeURIComponent(id)}`);
  }

  conversation(id: string): Promise<ConversationGraph> {
    return this.call('GET', `/v1/conversations/${encodeURIComponent(id)}`);
  }

  process(name: string, id: string): Promise<ProcessInstance> {
    return this.call('GET', `/v1/processes/${encodeURIComponent(name)}/${encodeURIComponent(id)}`);
  }

  redispatch(id: string): Promise<{ id: string; status: string; relayTriggered: boolean }> {
    return this.call('POST', `/v1/tokens/${encodeURIComponent(id)}/redispatch`);
  }

  revoke(id: string): Promise<TokenView> {
    return this.call('DELETE', `/v1/tokens/${encodeURIComponent(id)}`);
  }

  private async call<T>(method: string, path: string): Promise<T> {
    let response: Response;
    try {
      response = await fetch(path, {
        ...EVERY_REQUEST,
        method,
        headers: { authorization: `Bearer ${this.key}`, accept: 'application/json' },
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      this.onReach(false);
      throw new Unreachable(error);
    }
    const document = await readJson(response);
    // A 502 or 504 that is not a problem document comes from a proxy in front of a gateway that is down.
    if ((response.status === 502 || response.status === 504) && !isProblem(document)) {
      this.onReach(false);
      throw new Unreachable(new Error(`HTTP ${response.status}`));
    }
    this.onReach(true);
    if (!response.ok) {
      throw new ApiProblem(response.status, isProblem(document) ? document : undefined, response.statusText);
    }
    return document as T;
  }
}

async function readJson(response: Response): Promise<unknown> {
  const type = response.headers.get('content-type') ?? '';
  if (!type.includes('json')) return undefined;
  try {
    return await response.json();
  } catch {
    return undefined;
  }
}

function isProblem(value: unknown): value is ProblemDocument {
  return typeof value === 'object' && value !== null && 'title' in value;
}
