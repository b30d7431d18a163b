import { type ChannelModel, connect } from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { coalesceWrites } from '../../src/transports/amqp/coalesced-writes.js';
import { AMQP_URL, uniqueName } from './support.js';

/** Counts the socket's write calls and the chunks each carried. */
function watchSocket(model: ChannelModel): { calls: number[] } {
  const stream = (model as unknown as { connection: { stream: Record<string, unknown> } }).connection.stream;
  const seen = { calls: [] as number[] };
  const writev = stream._writev as (chunks: unknown[], cb: unknown) => void;
  const write = stream._write as (...args: unknown[]) => void;
  stream._writev = function (this: unknown, chunks: unknown[], cb: unknown) {
    seen.calls.push(chunks.length);
    writev.call(this, chunks, cb);
  };
  stream._write = function (this: unknown, ...args: unknown[]) {
    seen.calls.push(1);
    write.apply(this, args);
  };
  return seen;
}

/** Publishes `count` messages from the check phase, as a read batch or a group commit resumes its callers. */
function publishFromCheckPhase(model: ChannelModel, queue: string, count: number) {
  return model.createConfirmChannel().then(async (channel) => {
    await channel.assertQueue(queue, { exclusive: true });
    const seen = watchSocket(model);
    const writesByNextTurn = await new Promise<number[]>((resolve) => {
      setImmediate(() => {
        for (let i = 0; i < count; i++)
          channel.sendToQueue(queue, Buffer.from(`m${i}`), { persistent: false });
        setImmediate(() => resolve([...seen.calls]));
      });
    });
    await channel.waitForConfirms();
    const { messageCount } = await channel.checkQueue(queue);
    return { writesByNextTurn, messageCount };
  });
}

describe('coalesceWrites', () => {
  const models: ChannelModel[] = [];
  afterEach(async () => {
    await Promise.all(models.splice(0).map((model) => model.close().catch(() => undefined)));
  });

  it('sends the publishes of one turn in one socket write, before the next turn', async () => {
    const model = await connect(AMQP_URL);
    models.push(model);
    expect(coalesceWrites(model)).toBe(true);

    const { writesByNextTurn, messageCount } = await publishFromCheckPhase(model, uniqueName('coalesce'), 20);
    // One writev with every frame of the 20 publishes (method, header and body frames in one buffer each).
    expect(writesByNextTurn).toEqual([20]);
    expect(messageCount).toBe(20);
  });

  it("is what amqplib alone does not do: there the same publishes wait for the next turn's muxer pass", async () => {
    const model = await connect(AMQP_URL);
    models.push(model);

    const { writesByNextTurn, messageCount } = await publishFromCheckPhase(model, uniqueName('plain'), 20);
    expect(writesByNextTurn).toEqual([]);
    expect(messageCount).toBe(20);
  });
});
