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

  async publish(message: OutgoingMessage): Promise<void> {
    while (this.draining) await this.draining;
    const details = {
      exchange: message.exchange,
      routingKey: message.routingKey,
      messageId: message.properties.messageId,
    };
    // `sent: false`: nothing left, so the caller may publish again on the re-opened channel.
    if (!this.open) throw new DispatchFailedError('the channel is closed', { ...details, sent: false });
    await new Promise<void>((resolve, reject) => {
      const entry: AwaitingConfirm = { messageId: message.properties.messageId };
      let settled = false;
      const settle = (error?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.awaiting.delete(entry);
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(
        () =>
          settle(new DispatchFailedError(`no broker confirm within ${this.confirmTimeoutMs} ms`, details)),
        this.confirmTimeoutMs,
      );
      this.awaiting.add(entry);
      let accepted: boolean;
      try {
        accepted = this.channel.publish(
          message.exchange,
          message.routingKey,
          message.body,
          message.properties,
          (error: unknown) => {
            if (error) {
              settle(
                new DispatchFailedError('the broker did not confirm the message', details, { cause: error }),
              );
            } else if (entry.returned !== undefined) {
              settle(
                new DispatchFailedError(`unroutable: ${entry.returned}`, { ...details, unroutable: true }),
              );
            } else {
              settle();
            }
          },
        );
      } catch (error) {
        // amqplib throws synchronously once the channel is closed.
        settle(
          new DispatchFailedError('the channel is closed', { ...details, sent: false }, { cause: error }),
        );
        return;
      }
      if (!accepted) this.waitForDrain();
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
      const detailsOf = (message: OutgoingMessage) => ({
        exchange: message.exchange,
        routingKey: message.routingKey,
        messageId: message.properties.messageId,
      });
      timer = setTimeout(() => {
        messages.forEach((message, i) => {
          const late = `no broker confirm within ${this.confirmTimeoutMs} ms`;
          settle(i, new DispatchFailedError(late, detailsOf(message)));
        });
      }, this.confirmTimeoutMs);
      messages.forEach((message, i) => {
        const details = detailsOf(message);
        if (!this.open) {
          settle(i, new DispatchFailedError('the channel is closed', { ...details, sent: false }));
          return;
        }
        const entry: AwaitingConfirm = { messageId: details.messageId };
        entries[i] = entry;
        this.awaiting.add(entry);
        let accepted: boolean;
        try {
          accepted = this.channel.publish(
            message.exchange,
            message.routingKey,
            message.body,
            message.properties,
            (error: unknown) => {
              if (error) {
                settle(
                  i,
                  new DispatchFailedError('the broker did not confirm the message', details, {
                    cause: error,
                  }),
                );
              } else if (entry.returned !== undefined) {
                settle(
                  i,
                  new DispatchFailedError(`unroutable: ${entry.returned}`, { ...details, unroutable: true }),
                );
              } else {
                confirmed += 1;
                // The broker has part of the batch; the process knows nothing yet of the rest.
                if (confirmed === 1 && unsettled > 1) crashPoint('after-some-published');
                settle(i);
              }
            },
          );
        } catch (error) {
          // amqplib throws synchronously once the channel is closed.
          settle(
            i,
            new DispatchFailedError('the channel is closed', { ...details, sent: false }, { cause: error }),
          );
          return;
        }
        if (!accepted) this.waitForDrain();
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
