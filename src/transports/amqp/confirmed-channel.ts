import type { ConfirmChannel, Message, Options } from 'amqplib';
import { crashPoint } from '../../core/crash.js';
import { DispatchFailedError } from '../../core/errors.js';
import type { Logger } from '../../core/observer.js';

export interface OutgoingMessage {
  exchange: string;
  routingKey: string;
  body: Buffer;
  /** `messageId` is required: a basic.return is matched to its publish by it. */
  properties: Options.Publish & { messageId: string };
}

interface AwaitingConfirm {
  messageId: string;
  /** Set when the broker returned the message as unroutable (it then still confirms it). */
  returned?: string;
}

/**
 * A confirm channel that turns one publish into one promise: resolved when the broker confirms, rejected
 * (DispatchFailedError) on a nack, an unroutable return, a closed channel or a confirm that does not come in time.
 * It honours backpressure: when amqplib's buffer is full, later publishes wait for 'drain'.
 */
export class ConfirmedChannel {
  private readonly awaiting = new Set<AwaitingConfirm>();
  private draining: Promise<void> | undefined;
  private open = true;

  constructor(
    readonly channel: ConfirmChannel,
    private readonly confirmTimeoutMs: number,
    logger: Logger,
  ) {
    // A channel the broker closes emits 'error' first; unhandled, that would crash the process.
    // It is doomed from the error on: no publish may go out on it while its 'close' is still on its way.
    channel.on('error', (error: unknown) => {
      this.open = false;
      logger.warn({ err: error }, 'RabbitMQ closed a channel');
    });
    channel.on('close', () => {
      this.open = false;
    });
    channel.on('return', (message: Message) => this.markReturned(message));
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** Resolves once the broker confirms; rejects with what `publishOne` would have resolved with. */
  async publish(message: OutgoingMessage): Promise<void> {
    const failure = await this.publishOne(message);
    if (failure) throw failure;
  }

  /**
   * One message, with a timer of its own: undefined once the broker confirms it, or the DispatchFailedError of
   * `publish`. Never rejects. The path of every single send (the gateway's ingress, a relay's lone token), so it
   * allocates only the entry, one settle function and the timer.
   */
  async publishOne(message: OutgoingMessage): Promise<DispatchFailedError | undefined> {
    while (this.draining) await this.draining;
    if (!this.open) return closed(detailsOf(message));
    return new Promise((resolve) => {
      const entry: AwaitingConfirm = { messageId: message.properties.messageId };
      const timer = setTimeout(() => settle(this.unconfirmed(detailsOf(message))), this.confirmTimeoutMs);
      const settle = (error?: DispatchFailedError) => {
        if (!this.awaiting.delete(entry)) return;
        clearTimeout(timer);
        resolve(error);
      };
      this.awaiting.add(entry);
      this.hand(message, entry, settle);
    });
  }

  /**
   * Publishes the messages together and waits for all their confirms under one timer. Settles by position with
   * undefined (confirmed) or the DispatchFailedError `publish` would have rejected with; never rejects. With
   * nothing draining, the messages are handed to the connection before this returns its promise.
   */
  async publishMany(messages: readonly OutgoingMessage[]): Promise<Array<DispatchFailedError | undefined>> {
    while (this.draining) await this.draining;
    const results = new Array<DispatchFailedError | undefined>(messages.length);
    if (messages.length === 0) return results;
    return new Promise((resolve) => {
      const done = new Array<boolean>(messages.length).fill(false);
      const entries: AwaitingConfirm[] = [];
      let unsettled = messages.length;
      let confirmed = 0;
      let timer: NodeJS.Timeout | undefined;
      const settle = (i: number, error?: DispatchFailedError) => {
        if (done[i]) return;
        done[i] = true;
        results[i] = error;
        const entry = entries[i];
        if (entry) this.awaiting.delete(entry);
        unsettled -= 1;
        if (unsettled === 0) {
          clearTimeout(timer);
          resolve(results);
        }
      };
      timer = setTimeout(() => {
        messages.forEach((message, i) => {
          settle(i, this.unconfirmed(detailsOf(message)));
        });
      }, this.confirmTimeoutMs);
      messages.forEach((message, i) => {
        if (!this.open) {
          settle(i, closed(detailsOf(message)));
          return;
        }
        const entry: AwaitingConfirm = { messageId: message.properties.messageId };
        entries[i] = entry;
        this.awaiting.add(entry);
        this.hand(message, entry, (error) => {
          if (error === undefined) {
            confirmed += 1;
            // The broker has part of the batch; the process knows nothing yet of the rest.
            if (confirmed === 1 && unsettled > 1) crashPoint('after-some-published');
          }
          settle(i, error);
        });
      });
    });
  }

  async close(): Promise<void> {
    if (!this.open) return;
    this.open = false;
    await this.channel.close().catch(() => undefined);
  }

  private waitForDrain(): void {
    if (this.draining) return;
    this.draining = new Promise<void>((resolve) => {
      const done = () => {
        this.channel.off('drain', done);
        this.channel.off('close', done);
        this.draining = undefined;
        resolve();
      };
      this.channel.on('drain', done);
      this.channel.on('close', done);
    });
  }

  /**
   * Hands one message to the channel. `settle` hears what became of it: undefined once the broker confirms it, or
   * the DispatchFailedError for a nack, an unroutable return or a channel already closed (then at once). The caller
   * has put `entry` in `awaiting` and takes it out, and owns the confirm timer.
   */
  private hand(
    message: OutgoingMessage,
    entry: AwaitingConfirm,
    settle: (error?: DispatchFailedError) => void,
  ): void {
    let accepted: boolean;
    try {
      accepted = this.channel.publish(
        message.exchange,
        message.routingKey,
        message.body,
        message.properties,
        (error: unknown) => {
          if (error) {
            const details = detailsOf(message);
            settle(
              new DispatchFailedError('the broker did not confirm the message', details, { cause: error }),
            );
          } else if (entry.returned !== undefined) {
            const details = { ...detailsOf(message), unroutable: true };
            settle(new DispatchFailedError(`unroutable: ${entry.returned}`, details));
          } else {
            settle();
          }
        },
      );
    } catch (error) {
      // amqplib throws synchronously once the channel is closed.
      settle(closed(detailsOf(message), error));
      return;
    }
    if (!accepted) this.waitForDrain();
  }

  private unconfirmed(details: MessageDetails): DispatchFailedError {
    return new DispatchFailedError(`no broker confirm within ${this.confirmTimeoutMs} ms`, details);
  }

  /** The broker sends basic.return before the confirm of the same publish, in publish order. */
  private markReturned(message: Message): void {
    const messageId = message.properties.messageId as string | undefined;
    for (const entry of this.awaiting) {
      if (entry.messageId === messageId && entry.returned === undefined) {
        // basic.return carries replyCode/replyText, which amqplib's typings leave out.
        const fields = message.fields as unknown as Record<string, unknown>;
        entry.returned = `${String(fields.replyCode ?? '')} ${String(fields.replyText ?? '')}`.trim();
        return;
      }
    }
  }
}

/** What a failed publish's error names. */
type MessageDetails = Pick<OutgoingMessage, 'exchange' | 'routingKey'> & { messageId: string };

function detailsOf(message: OutgoingMessage): MessageDetails {
  return {
    exchange: message.exchange,
    routingKey: message.routingKey,
    messageId: message.properties.messageId,
  };
}

/** `sent: false`: nothing left, so the caller may publish again on the re-opened channel. */
function closed(details: MessageDetails, cause?: unknown): DispatchFailedError {
  const options = cause === undefined ? undefined : { cause };
  return new DispatchFailedError('the channel is closed', { ...details, sent: false }, options);
}
