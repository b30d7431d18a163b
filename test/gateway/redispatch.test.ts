import { type Channel, type ChannelModel, connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newTokenId } from '../../src/core/ids.js';
import { pendingToken } from '../../src/core/mint.js';
import { ENV, loadConfig } from '../../src/gateway/config/index.js';
import { createLogger } from '../../src/gateway/logging.js';
import { startGateway } from '../../src/gateway/runtime.js';
import { AmqpHeaders, deadLetterNames, declareConsumerQueue } from '../../src/transports/amqp/index.js';
import { AMQP_URL } from '../support/rabbitmq.js';
import { until } from '../support/until.js';
import { LogCapture, scratchDir } from './support.js';

/**
 * The operator's redispatch on the gateway as it runs (startGateway: its SQLite store, its relay, RabbitMQ); the
 * route's answers without a broker are in api.test.ts.
 */

const RELAY_DELAY_MS = 600_000;

let model: ChannelModel;
let channel: Channel;
beforeAll(async () => {
  model = await connect(AMQP_URL);
  channel = await model.createChannel();
});
afterAll(async () => {
  await model.close();
});

describe('POST /v1/tokens/:id/redispatch on the running gateway', () => {
  it('sends a pending token younger than the relay delay to its queue once, and it ends dispatched', async () => {
    const suffix = newTokenId()
      .replace(/[^A-Za-z0-9]/g, '')
      .slice(0, 10);
    const exchange = `tg-gw.redispatch.${suffix}`;
    const queue = `tg-gw.redispatch-q.${suffix}`;
    await declareConsumerQueue(channel, queue, { bindings: [{ exchange, routingKey: 'stuck' }] });
    const config = loadConfig({
      [ENV.host]: '127.0.0.1',
      [ENV.port]: '0',
      [ENV.sqlitePath]: `${scratchDir()}/redispatch-${suffix}.db`,
      [ENV.amqpUrl]: AMQP_URL,
      // Passes run often, and none would send the token by itself: it stays younger than the delay.
      [ENV.relayDelayMs]: String(RELAY_DELAY_MS),
      [ENV.relayIntervalMs]: '50',
    });
    const gateway = await startGateway(config, createLogger('info', new LogCapture()));
    try {
      // Pending and never sent: its process stopped between the commit and the publish.
      const token = pendingToken(
        { destination: { medium: 'amqp', exchange, routingKey: 'stuck' }, payload: { order: 7 } },
        { mintedBy: 'orders', now: Date.now() },
      );
      await gateway.store.mint([token]);

      const res = await fetch(`${gateway.url}/v1/tokens/${token.id}/redispatch`, { method: 'POST' });
      expect(res.status).toBe(202);
      expect(await res.json()).toEqual({ id: token.id, status: 'pending', relayTriggered: true });

      const message = await until('the message in the queue', () => channel.get(queue, { noAck: true }));
      expect(message.properties.headers?.[AmqpHeaders.token]).toBe(token.id);
      expect(JSON.parse(message.content.toString('utf8'))).toEqual({ order: 7 });
      const sent = await until('the token dispatched', async () => {
        const now = await gateway.store.getToken(token.id);
        return now?.status === 'dispatched' ? now : undefined;
      });
      expect(sent.attempts).toBe(1);
      expect(sent.mintedAt).toBeGreaterThan(Date.now() - RELAY_DELAY_MS);

      // Once: relay passes since then sent no copy, and a second redispatch is refused.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect((await channel.checkQueue(queue)).messageCount).toBe(0);
      const again = await fetch(`${gateway.url}/v1/tokens/${token.id}/redispatch`, { method: 'POST' });
      expect(again.status).toBe(409);
      expect((await channel.checkQueue(queue)).messageCount).toBe(0);
    } finally {
      await gateway.stop();
      const dead = deadLetterNames(queue);
      await channel.deleteQueue(queue);
      await channel.deleteQueue(dead.queue);
      await channel.deleteExchange(dead.exchange);
      await channel.deleteExchange(exchange);
    }
  });
});
