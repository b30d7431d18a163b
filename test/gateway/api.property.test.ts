import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, RecordingPublisher, type TestGateway, testGateway } from './support.js';

// Whatever an outside caller sends, the API answers a clear 4xx or a valid result — never a 500 or a crash.
let gateway: TestGateway;
beforeAll(async () => {
  gateway = await testGateway({
    publisher: new RecordingPublisher(),
    bridges: { ingress: [{ route: 'orders', exchange: 'shop', routingKey: 'orders' }], egress: [] },
  });
});
afterAll(async () => gateway.close());

const auth = { authorization: `Bearer ${ADMIN_KEY}` };
const anyText = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.json(),
  fc.constantFrom('', '{', 'null', '[]'),
);
const RUNS = 150;

function expectClearAnswer(status: number, contentType: unknown, body: string): void {
  expect(status).toBeLessThan(500);
  if (status >= 400) {
    expect(contentType).toMatch(/^application\/problem\+json/);
    const problem = JSON.parse(body) as { type: string; status: number };
    expect(problem.type).toMatch(/^\/problems\/[a-z-]+$/);
    expect(problem.status).toBe(status);
  }
}

describe('gateway API under arbitrary input', () => {
  it('POST /v1/tokens with any body', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          anyText,
          fc
            .record(
              {
                id: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
                payload: fc.jsonValue(),
                fingerprint: fc.oneof(
                  fc.string(),
                  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }),
                ),
                expiresInMs: fc.oneof(fc.integer(), fc.double(), fc.string()),
                conversationId: fc.string(),
                destination: fc.anything(),
              },
              { requiredKeys: [] },
            )
            .map((v) => JSON.stringify(v)),
        ),
        async (body) => {
          const res = await gateway.app.inject({
            method: 'POST',
            url: '/v1/tokens',
            headers: { ...auth, 'content-type': 'application/json' },
            payload: body,
          });
          expectClearAnswer(res.statusCode, res.headers['content-type'], res.body);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('GET /v1/tokens with any query string, and GET /v1/tokens/:id with any id', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(
          fc.constantFrom('status', 'conversation', 'olderThan', 'limit', 'cursor', 'x'),
          fc.string(),
        ),
        fc.string(),
        async (query, id) => {
          const list = await gateway.app.inject({ method: 'GET', url: '/v1/tokens', query, headers: auth });
          expectClearAnswer(list.statusCode, list.headers['content-type'], list.body);
          const one = await gateway.app.inject({
            method: 'GET',
            url: `/v1/tokens/${encodeURIComponent(id)}`,
            headers: auth,
          });
          expectClearAnswer(one.statusCode, one.headers['content-type'], one.body);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('POST /v1/signals/:route with any token header and body', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string().filter((h) => /^[\t\x20-\x7e]*$/.test(h)),
        anyText,
        async (token, body) => {
          const res = await gateway.app.inject({
            method: 'POST',
            url: '/v1/signals/orders',
            headers: { ...auth, 'content-type': 'application/json', 'exactly-once-token': token },
            payload: body,
          });
          expectClearAnswer(res.statusCode, res.headers['content-type'], res.body);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
