import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenStore } from '../../src/core/store.js';
import { HttpEdgeClient } from '../../src/transports/http/index.js';
import { freshStore, STORE_KINDS } from '../support/stores.js';
import { buildTestApp } from './fixtures/app.js';
import { listen } from './support.js';

const run = promisify(execFile);

interface CurlAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One request with the real curl binary: an independent HTTP client that knows nothing of Tollgate. */
async function curl(url: string, tokenId: string, body: string): Promise<CurlAnswer> {
  const { stdout } = await run('curl', [
    '--silent',
    '--show-error',
    '--include',
    '--request',
    'POST',
    '--header',
    'Content-Type: application/json',
    '--header',
    `Exactly-Once-Token: ${tokenId}`,
    '--data-binary',
    body,
    url,
  ]);
  const [head = '', ...rest] = stdout.split('\r\n\r\n');
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
}

describe.each(STORE_KINDS)('curl against an exactly-once route on %s', (kind) => {
  let store: TokenStore;
  let app: FastifyInstance;
  let base: string;

  beforeAll(async () => {
    store = await freshStore(kind);
    app = await buildTestApp({ store });
    base = await listen(app);
  });

  afterAll(async () => {
    await app.close();
    await store.close();
  });

  it('processes the first request and replays the answer to the second', async () => {
    const payload = { key: 'curl', amount: 9 };
    const token = await new HttpEdgeClient({ store }).mint({ method: 'POST', url: `${base}/add` }, payload);

    const first = await curl(`${base}/add`, token.id, JSON.stringify(payload));
    expect(first.status).toBe(201);
    expect(first.headers['exactly-once-status']).toBe('processed');
    expect(first.headers.location).toBe('/totals/curl');
    expect(JSON.parse(first.body)).toEqual({ key: 'curl', total: 9 });

    // Same token, same payload with its keys in another order and other spacing: the same request.
    const second = await curl(`${base}/add`, token.id, '{"amount": 9, "key": "curl"}');
    expect(second.status).toBe(201);
    expect(second.headers['exactly-once-status']).toBe('duplicate');
    expect(second.body).toBe(first.body);

    expect((await store.readState('curl'))?.value).toBe(9);
    expect((await store.readState('runs:curl'))?.value).toBe(1);
  });

  it('gets a problem document for an unknown token', async () => {
    const answer = await curl(`${base}/add`, 'never-minted-token-id', '{"key":"curl","amount":1}');
    expect(answer.status).toBe(409);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(answer.body)).toMatchObject({
      type: '/problems/token-unknown',
      code: 'TOLLGATE_ERR_TOKEN_UNKNOWN',
    });
  });
});
