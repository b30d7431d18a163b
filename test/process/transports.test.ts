import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import type { JsonValue } from '../../src/core/fingerprint.js';
import { processSignal } from '../../src/core/processor.js';
import { processHandler, processRoute, UnknownSignalTypeError } from '../../src/entries/process.js';
import { mintTestToken, testStore } from '../../src/entries/testing.js';
import { dispositionOf } from '../../src/transports/amqp/disposition.js';
import { tollgatePlugin } from '../../src/transports/http/index.js';
import { READ_KEY, type TestGateway, testGateway } from '../gateway/support.js';
import { payment, requested } from './fixtures/payment.js';

describe('a process behind the transports', () => {
  let gateway: TestGateway | undefined;
  afterEach(async () => {
    await gateway?.close();
    gateway = undefined;
  });

  it('dead-letters a signal of an unknown type over AMQP at once, with its reason', () => {
    const policy = { attempts: 5, baseDelayMs: 10, maxDelayMs: 100 };
    expect(dispositionOf(new UnknownSignalTypeError('payment', 'PaymentRefused'), 1, policy)).toEqual({
      action: 'dead-letter',
      code: ErrorCodes.UNKNOWN_SIGNAL_TYPE,
      reason: 'process payment has no step for signals of type PaymentRefused',
    });
  });

  it('runs a step on an exactly-once fastify route, and answers an unknown type with 422', async () => {
    const store = testStore();
    const app = Fastify();
    await app.register(tollgatePlugin, { store, endpoint: 'payments' });
    app.post('/payments', { config: { exactlyOnce: true } }, processRoute(payment));
    try {
      const post = async (payload: JsonValue) => {
        const token = await mintTestToken(store, payload);
        return app.inject({
          method: 'POST',
          url: '/payments',
          headers: { 'exactly-once-token': token.id },
          payload: payload as object,
        });
      };
      const started = await post(requested);
      expect(started.statusCode).toBe(200);
      expect(started.json()).toMatchObject({ process: 'payment', id: 'o-1', outcome: 'started' });
      const stray = await post({ type: 'PaymentRefused', orderId: 'o-1' });
      expect(stray.statusCode).toBe(422);
      expect(stray.json()).toMatchObject({
        type: '/problems/unknown-signal-type',
        code: ErrorCodes.UNKNOWN_SIGNAL_TYPE,
      });
    } finally {
      await app.close();
      await store.close();
    }
  });

  it('shows a running instance on the gateway: state, pending timeout with its due time, conversation', async () => {
    gateway = await testGateway({ apiKeys: { read: [READ_KEY], mint: [], admin: [] } });
    const { store, app } = gateway;
    const token = await mintTestToken(store, requested);
    await processSignal({
      store,
      endpoint: 'payments',
      tokenId: token.id,
      payload: requested,
      handler: processHandler(payment),
    });
    const headers = { authorization: `Bearer ${READ_KEY}` };
    const res = await app.inject({ url: '/v1/processes/payment/o-1', headers });
    expect(res.statusCode).toBe(200);
    const view = res.json();
    expect(view).toMatchObject({
      process: 'payment',
      id: 'o-1',
      state: { orderId: 'o-1', amount: 30, paid: false, closed: false },
      timeouts: [{ name: 'payment', status: 'scheduled' }],
      conversation: { id: token.conversationId, truncated: false },
    });
    expect(Date.parse(view.timeouts[0].dueAt)).toBeGreaterThan(Date.now());
    // The conversation: the signal that started it, and the timeout it scheduled.
    expect(view.conversation.tokens.map((t: { id: string }) => t.id).sort()).toEqual(
      [token.id, view.timeouts[0].tokenId].sort(),
    );

    const missing = await app.inject({ url: '/v1/processes/payment/o-2', headers });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ code: ErrorCodes.NOT_FOUND });
    expect((await app.inject({ url: '/v1/processes/payment/o-1' })).statusCode).toBe(401);
  });
});
