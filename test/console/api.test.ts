import { afterEach, describe, expect, it, vi } from 'vitest';
import { Api, ApiProblem, Unreachable } from '../../console/src/api.js';
import { renderProblem } from '../../src/transports/http/problem-details.js';
import {
  PROBLEM_CONTENT_TYPE,
  PROBLEM_KINDS,
  PROBLEMS,
  problemType,
} from '../../src/transports/http/problems.js';

const KEY = 'console-read-key-0123456789';
const PROBLEM_JSON = { 'content-type': PROBLEM_CONTENT_TYPE };

describe('a problem answer', () => {
  it('takes its title and detail from the problem document, and its kind from the end of the type', () => {
    const problem = new ApiProblem(
      404,
      {
        type: '/problems/token-not-found',
        title: 'Token not found',
        status: 404,
        detail: 'token x does not exist',
      },
      'Not Found',
    );
    expect(problem).toBeInstanceOf(Error);
    expect(problem.name).toBe('ApiProblem');
    expect(problem.message).toBe('404 Token not found');
    expect([problem.status, problem.title, problem.detail, problem.kind]).toEqual([
      404,
      'Token not found',
      'token x does not exist',
      'token-not-found',
    ]);
  });

  it('reads the kind of every problem the gateway can answer, whatever base its types are configured with', () => {
    for (const base of [undefined, 'https://errors.example.com/tollgate/', 'urn:example:tollgate:', '/p#']) {
      for (const kind of PROBLEM_KINDS) {
        const spec = PROBLEMS[kind];
        const problem = new ApiProblem(spec.status, { type: problemType(kind, base), title: spec.title }, '');
        expect(problem.kind, `${base}${kind}`).toBe(kind);
      }
    }
  });

  it('falls back to the status text and an http-<status> kind without a problem document', () => {
    const problem = new ApiProblem(503, undefined, 'Service Unavailable');
    expect([problem.message, problem.title, problem.detail, problem.kind]).toEqual([
      '503 Service Unavailable',
      'Service Unavailable',
      '',
      'http-503',
    ]);
  });

  it('names the status itself when there is no status text either (HTTP/2 has none)', () => {
    const problem = new ApiProblem(500, undefined, '');
    expect([problem.message, problem.title, problem.kind]).toEqual(['500 HTTP 500', 'HTTP 500', 'http-500']);
  });

  it('takes the http-<status> kind for a document without a type, or with one that ends in a separator', () => {
    expect(new ApiProblem(409, { title: 'Conflict' }, '').kind).toBe('http-409');
    expect(new ApiProblem(409, { type: '', title: 'Conflict' }, '').kind).toBe('http-409');
    expect(new ApiProblem(409, { type: 'https://example.com/problems/', title: 'Conflict' }, '').kind).toBe(
      'http-409',
    );
  });
});

describe('the API client', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  /** Stubs fetch with one answer (or a failure) and records every request and every onReach report. */
  function client(answer: () => Response | Promise<Response>) {
    const requests: Array<{ url: string; init: RequestInit }> = [];
    const reached: boolean[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init: RequestInit) => {
        requests.push({ url, init });
        return answer();
      }),
    );
    const api = new Api(KEY, (answered) => reached.push(answered));
    return { api, requests, reached };
  }

  const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
    new Response(JSON.stringify(body), {
      status,
      headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
    });

  it('sends the key as a bearer token, never in the URL, and no cookie or cached answer', async () => {
    const { api, requests, reached } = client(() => json({ at: '2026-05-04T12:00:00.000Z' }));
    await expect(api.overview()).resolves.toEqual({ at: '2026-05-04T12:00:00.000Z' });
    expect(requests).toHaveLength(1);
    const { url, init } = requests[0]!;
    expect(url).toBe('/v1/overview');
    expect(url).not.toContain(KEY);
    expect(init).toMatchObject({
      method: 'GET',
      headers: { authorization: `Bearer ${KEY}`, accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
    });
    expect(init.signal).toBeInstanceOf(AbortSignal);
    expect(reached).toEqual([true]);
  });

  it('addresses each call, ids URL-encoded', async () => {
    const { api, requests } = client(() => json({}));
    await api.token('a/b?c');
    await api.conversation('conv 1');
    await api.process('order saga', 'x#y');
    await api.redispatch('tok-0001');
    await api.revoke('tok-0002');
    expect(requests.map(({ url, init }) => `${init.method} ${url}`)).toEqual([
      'GET /v1/tokens/a%2Fb%3Fc',
      'GET /v1/conversations/conv%201',
      'GET /v1/processes/order%20saga/x%23y',
      'POST /v1/tokens/tok-0001/redispatch',
      'DELETE /v1/tokens/tok-0002',
    ]);
  });

  it('writes the token filter as a query: the age in whole milliseconds, and nothing for what is unset or zero', async () => {
    const { api, requests } = client(() => json({ items: [] }));
    await api.tokens({
      status: 'pending',
      conversation: 'conv 1&x',
      olderThanMs: 1_500.7,
      limit: 50,
      cursor: 'c1',
    });
    await api.tokens({});
    await api.tokens({ olderThanMs: 0, limit: 0, conversation: '', cursor: '' });
    expect(requests.map(({ url }) => url)).toEqual([
      '/v1/tokens?status=pending&conversation=conv+1%26x&olderThan=1500&limit=50&cursor=c1',
      '/v1/tokens?',
      '/v1/tokens?',
    ]);
  });

  it('throws the problem of an error answer, and reports the gateway reached', async () => {
    const { api, reached } = client(() =>
      json(
        renderProblem({ kind: 'token-not-found', detail: 'token tok-0001 does not exist' }),
        404,
        PROBLEM_JSON,
      ),
    );
    const error = await api.token('tok-0001').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiProblem);
    expect(error).toMatchObject({
      status: 404,
      title: 'Token not found',
      detail: 'token tok-0001 does not exist',
      kind: 'token-not-found',
    });
    expect(reached).toEqual([true]);
  });

  it('throws a problem from the status alone for an error answer without a problem document', async () => {
    const cases: Array<[Response, { status: number; title: string; kind: string }]> = [
      [
        new Response('<h1>Service Unavailable</h1>', {
          status: 503,
          statusText: 'Service Unavailable',
          headers: { 'content-type': 'text/html' },
        }),
        { status: 503, title: 'Service Unavailable', kind: 'http-503' },
      ],
      [
        new Response('{"title": "cut sho', {
          status: 500,
          statusText: 'Internal Server Error',
          headers: PROBLEM_JSON,
        }),
        { status: 500, title: 'Internal Server Error', kind: 'http-500' },
      ],
      [json({ error: 'Bad Request' }, 400), { status: 400, title: 'HTTP 400', kind: 'http-400' }],
    ];
    for (const [response, expected] of cases) {
      const { api, reached } = client(() => response);
      const error = await api.overview().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(ApiProblem);
      expect(error).toMatchObject({ ...expected, detail: '' });
      expect(reached).toEqual([true]);
    }
  });

  it('calls the gateway unreachable when the request fails, and reports it not reached', async () => {
    const refused = new TypeError('fetch failed');
    const { api, reached } = client(() => Promise.reject(refused));
    const error = await api.overview().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Unreachable);
    expect(error).toMatchObject({
      name: 'Unreachable',
      message: 'the gateway did not answer',
      cause: refused,
    });
    expect(reached).toEqual([false]);
  });

  it('calls the gateway unreachable on a 502 or 504 without a problem document: a proxy speaks for it', async () => {
    for (const status of [502, 504]) {
      const { api, reached } = client(
        () => new Response('<h1>Bad Gateway</h1>', { status, headers: { 'content-type': 'text/html' } }),
      );
      const error = await api.overview().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(Unreachable);
      expect((error as Unreachable).cause).toEqual(new Error(`HTTP ${status}`));
      expect(reached).toEqual([false]);
    }
  });

  it('takes a 502 or 504 that carries a problem document as an answer, not as a gateway away', async () => {
    const { api, reached } = client(() =>
      json(
        { type: 'https://proxy.example/problems/upstream-timeout', title: 'Upstream timed out' },
        504,
        PROBLEM_JSON,
      ),
    );
    const error = await api.overview().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiProblem);
    expect(error).toMatchObject({ status: 504, title: 'Upstream timed out', kind: 'upstream-timeout' });
    expect(reached).toEqual([true]);
  });
});
