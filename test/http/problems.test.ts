import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ErrorCode, ErrorCodes, TollgateError } from '../../src/core/errors.js';
import { pendingToken } from '../../src/core/mint.js';
import type { TokenStore } from '../../src/core/store.js';
import { buildGateway } from '../../src/gateway/app.js';
import { createLogger } from '../../src/gateway/logging.js';
import { SqliteTokenStore } from '../../src/stores/sqlite/sqlite-store.js';
import {
  PROBLEM_KINDS,
  PROBLEMS,
  problemKindOf,
  problemKindOfCode,
  tollgatePlugin,
} from '../../src/transports/http/index.js';
import { LogCapture } from '../gateway/support.js';

// A base the deployment chose, so the test also shows it is used verbatim by both.
const BASE = 'https://docs.example.com/tollgate/problems/';
const ALL_CODES = Object.values(ErrorCodes) as ErrorCode[];

let failWith: ErrorCode = ErrorCodes.STORE_FAILURE;
let pluginStore: SqliteTokenStore;
let gatewayStore: SqliteTokenStore;
let plugin: FastifyInstance;
let gateway: FastifyInstance;

/** The gateway's store, failing every token read with the code under test. */
function failingReads(store: TokenStore): TokenStore {
  return new Proxy(store, {
    get(target, name, receiver) {
      if (name === 'getToken') {
        return async () => {
          throw new TollgateError(failWith, `the store failed with ${failWith}`, {});
        };
      }
      const value: unknown = Reflect.get(target, name, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

beforeAll(async () => {
  pluginStore = new SqliteTokenStore({ filename: ':memory:' });
  gatewayStore = new SqliteTokenStore({ filename: ':memory:' });
  plugin = Fastify({ logger: false });
  await plugin.register(tollgatePlugin, { store: pluginStore, problemBase: BASE, problemPages: true });
  plugin.post('/fail', { config: { exactlyOnce: true } }, async () => {
    throw new TollgateError(failWith, `the handler failed with ${failWith}`, {});
  });
  await plugin.ready();
  gateway = buildGateway({
    store: failingReads(gatewayStore),
    publisher: null,
    registry: new Registry(),
    logger: createLogger('fatal', new LogCapture()),
    config: {
      apiKeys: { read: [], mint: [], admin: [] },
      bridges: { ingress: [], egress: [] },
      bodyLimitBytes: 64 * 1024,
      defaultTokenTtlMs: 60_000,
      problemBase: BASE,
    },
  });
  await gateway.ready();
});

afterAll(async () => {
  await plugin.close();
  await gateway.close();
  await pluginStore.close();
  await gatewayStore.close();
});

async function pluginAnswer(code: ErrorCode) {
  failWith = code;
  const token = pendingToken(
    { destination: { medium: 'http', method: 'POST', url: 'http://localhost/fail' }, payload: {} },
    { mintedBy: 'test', now: Date.now() },
  );
  await pluginStore.mint([token]);
  return plugin.inject({
    method: 'POST',
    url: '/fail',
    headers: { 'exactly-once-token': token.id },
    payload: {},
  });
}

async function gatewayAnswer(code: ErrorCode) {
  failWith = code;
  return gateway.inject({ method: 'GET', url: '/v1/tokens/some-token-id' });
}

describe('one problem catalogue for the plugin and the gateway', () => {
  it.each(ALL_CODES)('answers %s the same from the plugin and the gateway', async (code) => {
    const [fromPlugin, fromGateway] = await Promise.all([pluginAnswer(code), gatewayAnswer(code)]);
    const kind = problemKindOfCode(code);
    for (const answer of [fromPlugin, fromGateway]) {
      expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(answer.statusCode).toBe(PROBLEMS[kind].status);
      expect(answer.json()).toMatchObject({
        type: BASE + kind,
        title: PROBLEMS[kind].title,
        status: PROBLEMS[kind].status,
        code,
      });
      expect(typeof answer.json().detail).toBe('string');
      // A server failure says nothing about internals.
      if (PROBLEMS[kind].status >= 500) expect(answer.json().detail).not.toContain(code);
    }
    const pick = (answer: typeof fromPlugin) => {
      const { type, title, status, code } = answer.json();
      return {
        httpStatus: answer.statusCode,
        type,
        title,
        status,
        code,
        retryAfter: answer.headers['retry-after'],
      };
    };
    expect(pick(fromPlugin)).toEqual(pick(fromGateway));
  });

  it('gives every code a kind whose own code it is, except server failures, which are internal errors', () => {
    for (const code of ALL_CODES) {
      const kind = problemKindOfCode(code);
      if (kind !== 'internal-error') expect(PROBLEMS[kind].code).toBe(code);
    }
    const codes = PROBLEM_KINDS.map((kind) => PROBLEMS[kind].code);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('answers a body that is not JSON the same from both', async () => {
    const headers = { 'content-type': 'application/json', 'exactly-once-token': 'some-token-id' };
    const fromPlugin = await plugin.inject({ method: 'POST', url: '/fail', headers, payload: '{"a":' });
    const fromGateway = await gateway.inject({
      method: 'POST',
      url: '/v1/tokens',
      headers,
      payload: '{"a":',
    });
    for (const answer of [fromPlugin, fromGateway]) {
      expect(answer.statusCode).toBe(400);
      expect(answer.json()).toMatchObject({
        type: `${BASE}invalid-payload`,
        code: ErrorCodes.INVALID_PAYLOAD,
      });
    }
  });

  it('serves a page for every kind from the catalogue, on the gateway and on the plugin when asked', async () => {
    for (const app of [gateway, plugin]) {
      for (const kind of PROBLEM_KINDS) {
        const page = await app.inject({ url: `/problems/${kind}`, headers: { accept: 'application/json' } });
        expect(page.statusCode).toBe(200);
        const { status, title, code, description } = PROBLEMS[kind];
        expect(page.json()).toEqual({ kind, status, title, code, description });
      }
      const html = await app.inject({ url: '/problems/token-consumed' });
      expect(html.headers['content-type']).toMatch(/^text\/html/);
      expect(html.body).toContain(PROBLEMS['token-consumed'].title);
      const unknown = await app.inject({ url: '/problems/no-such-kind' });
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json()).toMatchObject({ type: `${BASE}not-found`, code: ErrorCodes.NOT_FOUND });
    }
  });

  it('reads the kind of a problem type whatever base the peer answered with', () => {
    expect(problemKindOf('/problems/token-consumed')).toBe('token-consumed');
    expect(problemKindOf(`${BASE}token-not-found`)).toBe('token-not-found');
    expect(problemKindOf('urn:example:problem:not-found')).toBe('not-found');
    expect(problemKindOf('/problems/no-such-kind')).toBeUndefined();
    expect(problemKindOf(42)).toBeUndefined();
  });
});
