import { EventEmitter } from 'node:events';
import type { ConfirmChannel } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { DispatchFailedError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/observer.js';
import { ConfirmedChannel, type OutgoingMessage } from '../../src/transports/amqp/confirmed-channel.js';

/**
 * The confirm bookkeeping alone, over a stand-in for amqplib's channel that keeps each publish's callback so the
 * test decides what the broker answers. What the real broker does is tested in the integration suites.
 */
class FakeChannel extends EventEmitter {
  readonly confirms: Array<(error: unknown) => void> = [];
  closed = false;

  publish(_exchange: string, _key: string, _body: Buffer, _options: unknown, confirm: (e: unknown) => void) {
    if (this.closed) throw new Error('Channel closed');
    this.confirms.push(confirm);
    return true;
  }
}

const message = (id: string): OutgoingMessage => ({
  exchange: 'orders',
  routingKey: 'placed',
  body: Buffer.from('{}'),
  properties: { messageId: id, persistent: true, mandatory: true },
});

function open(confirmTimeoutMs = 1_000) {
  const raw = new FakeChannel();
  const channel = new ConfirmedChannel(raw as unknown as ConfirmChannel, confirmTimeoutMs, silentLogger);
  return { raw, channel };
}

describe('ConfirmedChannel.publishOne', () => {
  it('resolves with nothing once the broker confirms', async () => {
    const { raw, channel } = open();
    const sent = channel.publishOne(message('m1'));
    await Promise.resolve();
    raw.confirms[0]!(null);
    expect(await sent).toBeUndefined();
  });

  it('resolves with a DispatchFailedError on a nack, naming the message', async () => {
    const { raw, channel } = open();
    const sent = channel.publishOne(message('m2'));
    await Promise.resolve();
    raw.confirms[0]!(new Error('nack'));
    const failure = await sent;
    expect(failure).toBeInstanceOf(DispatchFailedError);
    expect(failure?.details).toMatchObject({ messageId: 'm2', exchange: 'orders' });
  });

  it('fails a message the broker returned as unroutable, although it then confirms it', async () => {
    const { raw, channel } = open();
    const sent = channel.publishOne(message('m3'));
    await Promise.resolve();
    raw.emit('return', {
      properties: { messageId: 'm3' },
      fields: { replyCode: 312, replyText: 'NO_ROUTE' },
    });
    raw.confirms[0]!(null);
    const failure = await sent;
    expect(failure?.message).toBe('unroutable: 312 NO_ROUTE');
    expect(failure?.details).toMatchObject({ unroutable: true });
  });

  it('gives up when no confirm comes in time, and ignores a confirm that comes later', async () => {
    const { raw, channel } = open(30);
    const failure = await channel.publishOne(message('m4'));
    expect(failure?.message).toBe('no broker confirm within 30 ms');
    expect(failure?.details).toMatchObject({ messageId: 'm4' });
    expect(() => raw.confirms[0]!(null)).not.toThrow();
  });

  it('says a message on a closed channel never left, so that it may go again', async () => {
    const { raw, channel } = open();
    raw.emit('close');
    expect((await channel.publishOne(message('m5')))?.details).toMatchObject({ sent: false });
    const { raw: thrown, channel: other } = open();
    thrown.closed = true;
    expect((await other.publishOne(message('m6')))?.details).toMatchObject({ sent: false });
  });

  it('publish rejects with what publishOne resolves with', async () => {
    const { raw, channel } = open();
    const sent = channel.publish(message('m7'));
    await Promise.resolve();
    raw.confirms[0]!(new Error('nack'));
    await expect(sent).rejects.toBeInstanceOf(DispatchFailedError);
  });
});
