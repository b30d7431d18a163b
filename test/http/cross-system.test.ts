import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Dispatcher } from '../../src/core/dispatcher.js';
import { ErrorCodes } from '../../src/core/errors.js';
import { fingerprint } from '../../src/core/fingerprint.js';
import { pendingToken } from '../../src/core/mint.js';
import type { Logger, Observer } from '../../src/core/observer.js';
import { processSignal } from '../../src/core/processor.js';
import type { Destination, TokenRecord } from '../../src/core/token.js';
import { SqliteTokenStore } from '../../src/stores/sqlite/sqlite-store.js';
import {
  createHttpRelay,
  HttpSignalSender,
  IssueRefusedError,
  tollgateOf,
  tollgatePlugin,
} from '../../src/transports/http/index.js';
import { READ_KEY, testGateway } from '../gateway/support.js';
import { stablePort } from './support.js';

const B_KEY = 'b-issuing-key-0123456789abcdef';
const WRONG_KEY = 'not-the-key-of-b-0123456789';
const QUICK = { attempts: 4, baseDelayMs: 5, maxDelayMs: 20 };

/** A logger that keeps every line, so tests can look for secrets in them. */
function recordingLogger(lines: string[]): Logger {
  const keep = (obj: object, msg?: string) => {
    const { err, ...rest } = obj as { err?: unknown };
    const error =
      err instanceof Error ? { message: err.message, details: (err as { details?: unknown }).details } : err;
    lines.push(JSON.stringify({ ...rest, err: error, msg }));
  };
  const logger: Logger = { debug: keep, info: keep, warn: keep, error: keep, child: () => logger };
  return logger;
}

/**
 * Two systems that share no store, in one test process: A (its own SQLite file) handles an order and emits an
 * HTTP signal to B; B (another SQLite file) is a real fastify server on loopback with the plugin's issuing route.
 */
describe('HTTP between two systems with separate stores', () => {
  let dir: string;
  let a: SqliteTokenStore;
  let b: SqliteTokenStore;
  let app: FastifyInstance | undefined;
  let base: string;
  /** What reached B's signal route: one entry per request, replayed ones included. */
  let arrived: Array<{ token: string | undefined; authorization: string | undefined }>;
  let logs: string[];
  let failures: Array<{ token: TokenRecord; error: unknown }>;
  let senders: HttpSignalSender[];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-cross-'));
    a = new SqliteTokenStore({ filename: join(dir, 'a.db') });
    b = new SqliteTokenStore({ filename: join(dir, 'b.db') });
    arrived = [];
    logs = [];
    failures = [];
    senders = [];
    base = await startB();
  });

  afterEach(async () => {
    for (const sender of senders) sender.close();
    await app?.close();
    app = undefined;
    await a.close();
    await b.close();
  });

  /** System B: the plugin with its issuing route, and an exactly-once route that counts its runs per order. */
  async function startB(port = 0): Promise<string> {
    app = Fastify({ logger: false });
    await app.register(tollgatePlugin, { store: b, endpoint: 'shipping', issuing: { keys: [B_KEY] } });
    app.addHook('onRequest', async (request) => {
      if (request.url !== '/shipments') return;
      arrived.push({
        token: request.headers['exactly-once-token'] as string | undefined,
        authorization: request.headers.authorization,
      });
    });
    app.post('/shipments', { config: { exactlyOnce: true } }, async (request) => {
      const work = tollgateOf<{ order: string }>(request);
      const runs = ((await work.get<number>(`runs:${work.payload.order}`)) ?? 0) + 1;
      work.put(`runs:${work.payload.order}`, runs);
      return { shipped: work.payload.order };
    });
    return app.listen({ host: '127.0.0.1', port });
  }

  function toB(url = base, credential = 'shipping'): Destination {
    return {
      medium: 'http',
      method: 'POST',
      url: `${url}/shipments`,
      issuer: { url: `${url}/v1/tokens`, credential },
    };
  }

  function sender(keys: Record<string, string> = { shipping: B_KEY }, fetcher?: typeof fetch) {
    const made = new HttpSignalSender({
      retry: QUICK,
      credentials: (reference) => keys[reference],
      ...(fetcher ? { fetch: fetcher } : {}),
    });
    senders.push(made);
    return made;
  }

  function dispatcherWith(made: HttpSignalSender): Dispatcher {
    const observer: Observer = { dispatchFailed: (token, error) => failures.push({ token, error }) };
    return new Dispatcher({
      store: a,
      senders: [made],
      observers: [observer],
      logger: recordingLogger(logs),
    });
  }

  /** A's hop: consumes an incoming order token, writes A's state and emits the HTTP signal to B. */
  async function handleOrderAtA(order: string, destination: Destination = toB()) {
    const incoming = pendingToken(
      { destination: { medium: 'amqp', exchange: 'orders', routingKey: 'placed' }, payload: { order } },
      { mintedBy: 'shop', now: Date.now() },
    );
    await a.mint([incoming]);
    const outcome = await processSignal({
      store: a,
      endpoint: 'billing',
      tokenId: incoming.id,
      payload: { order },
      handler: (work) => {
        work.put(`billed:${order}`, true);
        work.emit(destination, { order });
      },
    });
    if (outcome.kind !== 'processed') throw new Error(`A did not process the order: ${outcome.kind}`);
    const [emitted] = outcome.emitted;
    if (!emitted) throw new Error('A emitted nothing');
    return { incoming, emitted };
  }

  async function runsAtB(order: string): Promise<unknown> {
    return (await b.readState(`runs:${order}`))?.value;
  }

  it("issues A's emitted signal at B, sends it there and applies it once; the key goes to the issuer only", async () => {
    const { emitted } = await handleOrderAtA('o-1');
    const report = await dispatcherWith(sender()).dispatch([emitted], 'hop');

    expect(report).toEqual({ dispatched: [emitted.id], failed: [] });
    expect(await runsAtB('o-1')).toBe(1);
    expect((await a.getToken(emitted.id))?.status).toBe('dispatched');
    expect((await b.getToken(emitted.id))?.status).toBe('consumed');
    expect(arrived).toEqual([{ token: emitted.id, authorization: undefined }]);
    // The record at A names the credential, never the key.
    expect(JSON.stringify(await a.getToken(emitted.id))).not.toContain(B_KEY);

    // A duplicate send (a second relay, an operator's redispatch) is issued again idempotently and replayed.
    const again = await sender().deliver(emitted);
    expect(again.outcome).toBe('duplicate');
    expect(await runsAtB('o-1')).toBe(1);
  });

  it("records A's conversation id and the parent token id on the token B issued", async () => {
    const { incoming, emitted } = await handleOrderAtA('o-2');
    await dispatcherWith(sender()).dispatch([emitted], 'hop');

    const atB = await b.getToken(emitted.id);
    expect(atB).toMatchObject({
      conversationId: incoming.conversationId,
      parentId: incoming.id,
      fingerprint: fingerprint({ order: 'o-2' }),
    });
    expect(emitted.conversationId).toBe(incoming.conversationId);
  });

  it('applies once when the answer is lost: the retry issues nothing new and gets the replayed answer', async () => {
    const { emitted } = await handleOrderAtA('o-3');
    let lost = 0;
    const losing: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (String(input).endsWith('/shipments') && lost++ === 0) {
        await response.text();
        throw new TypeError('fetch failed: socket closed before the answer');
      }
      return response;
    };
    const delivery = await sender({ shipping: B_KEY }, losing).deliver(emitted);

    expect(delivery).toMatchObject({ outcome: 'duplicate', attempts: 2 });
    expect(arrived).toHaveLength(2);
    expect(await runsAtB('o-3')).toBe(1);
  });

  it('applies once when the relay re-sends a signal whose answer was lost', async () => {
    const { emitted } = await handleOrderAtA('o-4');
    const losing: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!String(input).endsWith('/shipments')) return response;
      await response.text();
      throw new TypeError('fetch failed: socket closed before the answer');
    };
    const hop = await dispatcherWith(sender({ shipping: B_KEY }, losing)).dispatch([emitted], 'hop');
    expect(hop.failed).toHaveLength(1);
    expect((await a.getToken(emitted.id))?.status).toBe('pending');
    expect(await runsAtB('o-4')).toBe(1); // applied at B, though A never heard it

    // The relay issues again (B answers 409 token-consumed: go on) and sends again (the replayed answer).
    const { relay } = createHttpRelay({ store: a, delayMs: 0, sender: sender() });
    expect(await relay.runOnce()).toMatchObject({ claimed: 1, dispatched: 1, failed: 0 });
    expect((await a.getToken(emitted.id))?.status).toBe('dispatched');
    expect(await runsAtB('o-4')).toBe(1);
  });

  it('keeps the signal pending while B is unreachable; the relay delivers it once B is back', async () => {
    const port = await stablePort();
    const down = `http://127.0.0.1:${port}`;
    const { emitted } = await handleOrderAtA('o-5', toB(down));

    const hop = await dispatcherWith(sender()).dispatch([emitted], 'hop');
    expect(hop.failed).toHaveLength(1);
    expect(hop.failed[0]?.error).toMatchObject({
      code: ErrorCodes.DISPATCH_FAILED,
      retriable: true,
      details: { step: 'issue', attempts: QUICK.attempts },
    });
    expect((await a.getToken(emitted.id))?.status).toBe('pending');

    await app?.close();
    await startB(port);
    const { relay } = createHttpRelay({ store: a, delayMs: 0, sender: sender() });
    expect(await relay.runOnce()).toMatchObject({ claimed: 1, dispatched: 1, givenUp: 0 });
    expect((await a.getToken(emitted.id))?.status).toBe('dispatched');
    expect(await runsAtB('o-5')).toBe(1);
  });

  it('refuses for good on a wrong key (401): never sent, reported, and the relay gives the token up', async () => {
    const { emitted } = await handleOrderAtA('o-6');
    const wrong = sender({ shipping: WRONG_KEY });
    const hop = await dispatcherWith(wrong).dispatch([emitted], 'hop');

    const error = hop.failed[0]?.error;
    expect(error).toBeInstanceOf(IssueRefusedError);
    expect(error).toMatchObject({
      code: ErrorCodes.ISSUE_REFUSED,
      retriable: false,
      status: 401,
      details: { step: 'issue', attempts: 1, credential: 'shipping', issuer: new URL(base).origin },
    });
    expect(failures.map((f) => f.token.id)).toEqual([emitted.id]);
    expect(arrived).toEqual([]);
    expect(await b.getToken(emitted.id)).toBeUndefined();

    const relayLogs: string[] = [];
    const { relay } = createHttpRelay({
      store: a,
      delayMs: 0,
      sender: wrong,
      logger: recordingLogger(relayLogs),
    });
    expect(await relay.runOnce()).toMatchObject({ claimed: 1, failed: 1, givenUp: 1 });
    expect((await a.getToken(emitted.id))?.status).toBe('revoked');
    expect(await relay.runOnce()).toMatchObject({ claimed: 0 });
    expect(relayLogs.join('\n')).toContain(ErrorCodes.ISSUE_REFUSED);
    expect(arrived).toEqual([]);

    // The key was sent to B's issuer only; no record, log line or error names it.
    const said = [...logs, ...relayLogs, String(error), JSON.stringify(error)].join('\n');
    expect(said).not.toContain(WRONG_KEY);
    expect(JSON.stringify(await a.getToken(emitted.id))).not.toContain(WRONG_KEY);
  });

  it('refuses for good, without calling B, a credential the resolver does not know', async () => {
    const { emitted } = await handleOrderAtA('o-7', toB(base, 'nobody-knows-me'));
    let calls = 0;
    const counting: typeof fetch = (input, init) => {
      calls += 1;
      return fetch(input, init);
    };
    const hop = await dispatcherWith(sender({ shipping: B_KEY }, counting)).dispatch([emitted], 'hop');

    expect(hop.failed[0]?.error).toMatchObject({
      code: ErrorCodes.ISSUE_REFUSED,
      retriable: false,
      details: { credential: 'nobody-knows-me', attempts: 0 },
    });
    expect(calls).toBe(0);
    expect((await a.getToken(emitted.id))?.status).toBe('pending');
  });

  it('refuses for good on a key without the mint scope (403 from the gateway issuer)', async () => {
    const gateway = await testGateway({ apiKeys: { read: [READ_KEY], mint: [], admin: [] } });
    try {
      const gatewayBase = await gateway.app.listen({ host: '127.0.0.1', port: 0 });
      const destination: Destination = {
        medium: 'http',
        method: 'POST',
        url: `${base}/shipments`,
        issuer: { url: `${gatewayBase}/v1/tokens`, credential: 'gateway' },
      };
      const { emitted } = await handleOrderAtA('o-8', destination);
      const hop = await dispatcherWith(sender({ gateway: READ_KEY })).dispatch([emitted], 'hop');

      expect(hop.failed[0]?.error).toMatchObject({
        code: ErrorCodes.ISSUE_REFUSED,
        retriable: false,
        status: 403,
      });
      expect(arrived).toEqual([]);
    } finally {
      await gateway.close();
    }
  });

  it('refuses for good, and never sends, when B holds the id for another payload (409 token-exists)', async () => {
    const { emitted } = await handleOrderAtA('o-9');
    await b.issue({
      id: emitted.id,
      conversationId: emitted.conversationId,
      mintedBy: 'someone-else',
      fingerprint: fingerprint({ order: 'something else' }),
      status: 'issued',
      mintedAt: Date.now(),
      attempts: 0,
    });
    const hop = await dispatcherWith(sender()).dispatch([emitted], 'hop');

    const error = hop.failed[0]?.error;
    expect(error).toMatchObject({ code: ErrorCodes.ISSUE_REFUSED, retriable: false, status: 409 });
    expect((error as IssueRefusedError).problemType).toMatch(/token-exists$/);
    expect(arrived).toEqual([]);
    expect((await b.getToken(emitted.id))?.status).toBe('issued');
    expect((await a.getToken(emitted.id))?.status).toBe('pending');
  });
});
