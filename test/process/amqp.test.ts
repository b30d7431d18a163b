import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { pendingToken } from '../../src/core/mint.js';
import type { TokenStore } from '../../src/core/store.js';
import { defineProcess, instanceKey, processHandler } from '../../src/entries/process.js';
import { queueDestination } from '../../src/transports/amqp/destination.js';
import { type AmqpTollgate, createAmqpTollgate } from '../../src/transports/amqp/tollgate.js';
import { deadLetterNames } from '../../src/transports/amqp/topology.js';
import { stderrLogger } from '../amqp/fixtures/scenario.js';
import { AMQP_URL, BrokerProbe, uniqueName, waitFor } from '../amqp/support.js';
import { freshStore } from '../support/stores.js';

type Hold = { holdId: string; status: 'held' | 'expired' | 'released' };
type Signal = { type: 'SeatsHeld' | 'HoldExpired' | 'SeatsReleased'; holdId: string };

describe('a process behind an AMQP queue', () => {
  let store: TokenStore;
  let probe: BrokerProbe;
  let tollgate: AmqpTollgate;
  let queue: string;

  beforeEach(async () => {
    store = await freshStore('sqlite');
    probe = await BrokerProbe.open();
    queue = uniqueName('holds');
    tollgate = await createAmqpTollgate({
      url: AMQP_URL,
      store,
      name: 'tg-test-process',
      relay: { delayMs: 0, intervalMs: 60_000, dueIntervalMs: 20 },
      logger: stderrLogger(),
    });
  });

  afterEach(async () => {
    await tollgate.close();
    await store.close();
    await probe.cleanUp([queue]);
    await probe.close();
  });

  const holds = () =>
    defineProcess<Hold, Signal>({
      name: 'hold',
      correlate: (signal) => signal.holdId,
      initial: ({ holdId }) => ({ holdId, status: 'held' }),
      startedBy: ['SeatsHeld'],
      on: {
        SeatsHeld: (state) => ({
          state,
          schedule: [
            {
              name: 'expiry',
              afterMs: 100,
              destination: queueDestination(queue),
              payload: { type: 'HoldExpired', holdId: state.holdId },
            },
          ],
        }),
        HoldExpired: (state) => ({ state: { ...state, status: 'expired' } }),
        SeatsReleased: (state) => ({ state: { ...state, status: 'released' }, done: true }),
      },
    });

  async function send(payload: Signal | { type: string; holdId: string }) {
    const token = pendingToken(
      { destination: queueDestination(queue), payload },
      { mintedBy: 'test', now: Date.now() },
    );
    await store.mint([token]);
    await tollgate.publisher.send(token);
    return token;
  }

  it('fires its timeout through the relay and the broker, once, and dead-letters an unknown type at once', async () => {
    const consumer = await tollgate.consume(queue, processHandler(holds()), {
      attempts: { attempts: 5, baseDelayMs: 5, maxDelayMs: 20 },
    });
    await send({ type: 'SeatsHeld', holdId: 'h-1' });
    const state = async () => (await store.readState(instanceKey('hold', 'h-1')))?.value as { state: Hold };
    await waitFor('the hold expired by its timeout', async () => (await state())?.state.status === 'expired');
    expect((await state()) as unknown).toMatchObject({ timeouts: {} });

    const stray = await send({ type: 'SeatsSold', holdId: 'h-1' });
    const dead = deadLetterNames(queue).queue;
    await waitFor('the stray signal dead-lettered', async () => (await probe.messageCount(dead)) >= 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Only the stray: the timeout was never sent before it was due.
    const letters = await probe.drain(dead);
    expect(letters.map((letter) => letter.properties.headers?.['exactly-once-token'])).toEqual([stray.id]);
    const headers = letters[0]?.properties.headers ?? {};
    expect(headers['x-tollgate-error-code']).toBe(ErrorCodes.UNKNOWN_SIGNAL_TYPE);
    expect(headers['x-tollgate-reason']).toContain('no step for signals of type SeatsSold');
    expect(headers['x-tollgate-attempts']).toBe(1);
    expect((await store.getToken(stray.id))?.status).not.toBe('consumed');

    await send({ type: 'SeatsReleased', holdId: 'h-1' });
    await waitFor('the process done', async () => (await state()) === undefined);
    expect(consumer.stats).toMatchObject({ processed: 3, deadLettered: 1 });
  });
});
