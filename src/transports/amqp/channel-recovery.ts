import type { ChannelModel } from 'amqplib';
import type { Logger } from '../../core/observer.js';
import { sleep } from '../../core/retry.js';
import type { AmqpConnection } from './connection.js';

export interface ChannelRecovery {
  /** The live connection the channel was lost on. */
  lostOn: ChannelModel;
  connection: AmqpConnection;
  /** Nothing left to do: the owner is closing, or a channel is open again. */
  settled(): boolean;
  /** Opens the channel again (declares, subscribes...) on the given connection. */
  reopen(connection: ChannelModel): Promise<void>;
  logger: Logger;
  /** What is being re-opened, for the log line. */
  what: string;
  signal?: AbortSignal;
}

/**
 * The broker closed a channel (an error on it, a cancelled consumer) while its connection lives on: open it again
 * on that connection, with growing pauses, until it works. A lost connection is not handled here: once the
 * connection is replaced, its reconnection hooks re-open everything, and this loop stops.
 */
export function recoverChannel(recovery: ChannelRecovery): void {
  void (async () => {
    for (let attempt = 1; ; attempt++) {
      await sleep(Math.min(250 * attempt, 5_000), recovery.signal);
      if (recovery.settled() || recovery.connection.current !== recovery.lostOn) return;
      try {
        await recovery.reopen(recovery.lostOn);
        return;
      } catch (error) {
        recovery.logger.warn({ err: error, attempt }, `could not re-open ${recovery.what}; retrying`);
      }
    }
  })();
}
