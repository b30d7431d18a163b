import { Dispatcher, type SignalSender } from '../../core/dispatcher.js';
import { ClosedError, DispatchFailedError } from '../../core/errors.js';
import type { JsonValue } from '../../core/fingerprint.js';
import { pendingToken } from '../../core/mint.js';
import { fanOut, type Logger, type Observer, silentLogger } from '../../core/observer.js';
import type { TokenStore } from '../../core/store.js';
import type { TokenRecord } from '../../core/token.js';
import type { OutgoingMessage } from './confirmed-channel.js';
import type { AmqpConnection } from './connection.js';
import { ManagedChannel } from './managed-channel.js';
import { messageForToken } from './message.js';
import { declareExchanges, type ExchangeSpec } from './topology.js';
import { settleWithin } from './wait.js';

/** Where an AMQP signal goes. `exchange: ''` with the queue name as routing key sends straight to a queue. */
export interface AmqpTarget {
  exchange: string;
  routingKey: string;
}

export interface AmqpPublisherOptions {
  connection: AmqpConnection;
  store: TokenStore;
  /** Recorded as `mintedBy` of the root tokens `publish` mints. Default 'edge'. */
  mintedBy?: string;
  /** How long a publish waits for the broker's confirm. Default 10 s. */
  confirmTimeoutMs?: number;
  /** How long a send waits for a lost connection to come back before it fails. Default 5 s. */
  outageTimeoutMs?: number;
  /** Exchanges declared (durable) on every connection, so publishing to them cannot fail with 404. */
  exchanges?: readonly ExchangeSpec[];
  /** Senders for other media (e.g. HTTP), added to the publisher's dispatcher. */
  senders?: readonly SignalSender[];
  logger?: Logger;
  observers?: readonly Observer[];
  clock?: () => number;
}

export interface PublishOptions {
  /** Joins an existing conversation; default a fresh one. */
  conversationId?: string;
  headers?: Record<string, string>;
}

/**
 * Sends tokens' signals to RabbitMQ over a confirm channel (the core's `SignalSender` for medium 'amqp'), and
 * publishes at the edge of a system: mint a root token first, then dispatch it.
 */
export class AmqpPublisher implements SignalSender {
  readonly medium = 'amqp' as const;
  /** Dispatches through this publisher (and `senders`), marking tokens `dispatched`. Shared with relay and consumers. */
  readonly dispatcher: Dispatcher;
  private readonly channel: ManagedChannel;
  private readonly observe: Required<Observer>;
  private readonly clock: () => number;
  private readonly outageTimeoutMs: number;
  private readonly sending = new Set<Promise<void>>();
  private closed = false;

  private constructor(private readonly options: AmqpPublisherOptions) {
    this.observe = fanOut(options.observers ?? []);
    this.clock = options.clock ?? Date.now;
    this.outageTimeoutMs = options.outageTimeoutMs ?? 5_000;
    this.dispatcher = new Dispatcher({
      store: options.store,
      senders: [this, ...(options.senders ?? [])],
      logger: options.logger ?? silentLogger,
      observers: options.observers ?? [],
      clock: this.clock,
    });
    this.channel = new ManagedChannel({
      connection: options.connection,
      owner: 'AMQP publisher',
      logger: (options.logger ?? silentLogger).child({ component: 'amqp-publisher' }),
      confirmTimeoutMs: options.confirmTimeoutMs ?? 10_000,
      declare: (raw) => declareExchanges(raw, options.exchanges ?? []),
    });
  }

  /** Creates the publisher and opens its confirm channel (again after every reconnection). */
  static async create(options: AmqpPublisherOptions): Promise<AmqpPublisher> {
    const publisher = new AmqpPublisher(options);
    await publisher.channel.start();
    return publisher;
  }

  /**
   * Edge publishing: mints a root `pending` token carrying the payload, then dispatches it. Resolves with the
   * token id once the token is minted. A failed dispatch does not reject: the token stays `pending` and the relay
   * sends it (retrying `publish` would start a second logical message). Rejects only if nothing was minted.
   */
  async publish(target: AmqpTarget, payload: JsonValue, options: PublishOptions = {}): Promise<string> {
    if (this.closed) throw new ClosedError('AMQP publisher');
    const mintedBy = this.options.mintedBy ?? 'edge';
    const token = pendingToken(
      {
        destination: { medium: 'amqp', exchange: target.exchange, routingKey: target.routingKey },
        payload,
        ...(options.headers ? { headers: options.headers } : {}),
      },
      {
        mintedBy,
        now: this.clock(),
        ...(options.conversationId ? { conversationId: options.conversationId } : {}),
      },
    );
    await this.options.store.mint([token]);
    this.observe.minted([token], mintedBy);
    await this.dispatcher.dispatch([token], 'edge');
    return token.id;
  }

  /** SignalSender: resolves once the broker confirmed the message; rejects with DispatchFailedError otherwise. */
  async send(token: TokenRecord): Promise<void> {
    const destination = token.destination;
    if (destination?.medium !== 'amqp') {
      throw new DispatchFailedError('the AMQP publisher only sends tokens with an amqp destination', {
        tokenId: token.id,
      });
    }
    if (this.closed) throw new ClosedError('AMQP publisher');
    const sending = this.publishConfirmed(
      messageForToken(token, destination.exchange, destination.routingKey),
    );
    this.sending.add(sending);
    try {
      await sending;
    } finally {
      this.sending.delete(sending);
    }
  }

  /**
   * SignalSender, for a batch: publishes the tokens' messages together and waits for their confirms at once.
   * Settles by position with what `send` would have rejected with (undefined: confirmed). With the channel open,
   * the messages are handed to the connection before this returns its promise.
   */
  sendMany(tokens: readonly TokenRecord[]): Promise<unknown[]> {
    if (this.closed) return Promise.reject(new ClosedError('AMQP publisher'));
    const failures = new Array<unknown>(tokens.length);
    const messages: OutgoingMessage[] = [];
    const positions: number[] = [];
    tokens.forEach((token, i) => {
      const destination = token.destination;
      if (destination?.medium !== 'amqp') {
        failures[i] = new DispatchFailedError(
          'the AMQP publisher only sends tokens with an amqp destination',
          {
            tokenId: token.id,
          },
        );
        return;
      }
      messages.push(messageForToken(token, destination.exchange, destination.routingKey));
      positions.push(i);
    });
    const sending = this.publishAll(messages).then((results) => {
      positions.forEach((i, k) => {
        failures[i] = results[k];
      });
      return failures;
    });
    const tracked = sending.then(() => undefined);
    this.sending.add(tracked);
    return sending.finally(() => this.sending.delete(tracked));
  }

  /** Stops accepting sends, waits (bounded) for confirms in flight, closes the channel. */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.channel.stop(() => settleWithin(this.sending, timeoutMs));
  }

  /**
   * One message (`publishAll`'s path, without its arrays): on the open channel at once, and once more on the channel
   * that replaces it if it never left.
   */
  private async publishConfirmed(message: OutgoingMessage): Promise<void> {
    const channel = this.channel.current;
    let failure = channel ? await channel.publishOne(message) : (await this.publishOnce([message]))[0];
    if (failure instanceof DispatchFailedError && failure.details.sent === false) {
      [failure] = await this.publishOnce([message]);
    }
    if (failure) throw failure;
  }

  /**
   * Publishes on the open channel (at once when there is one), waiting up to `outageTimeoutMs` for one otherwise.
   * A message that never left because the channel closed under it goes once more, on the channel that replaces it.
   */
  private async publishAll(messages: readonly OutgoingMessage[]): Promise<unknown[]> {
    const results: unknown[] = await this.publishOnce(messages);
    const again = results.flatMap((result, i) =>
      result instanceof DispatchFailedError && result.details.sent === false ? [i] : [],
    );
    if (again.length === 0) return results;
    const retried = await this.publishOnce(again.map((i) => messages[i] as OutgoingMessage));
    again.forEach((i, k) => {
      results[i] = retried[k];
    });
    return results;
  }

  private async publishOnce(messages: readonly OutgoingMessage[]): Promise<unknown[]> {
    let channel = this.channel.current;
    if (!channel) {
      try {
        channel = await this.channel.wait(this.outageTimeoutMs, () => this.unreachable());
      } catch (error) {
        return messages.map((message) =>
          error instanceof DispatchFailedError
            ? new DispatchFailedError(error.message, { tokenId: message.properties.messageId })
            : error,
        );
      }
    }
    return channel.publishMany(messages);
  }

  private unreachable(): DispatchFailedError {
    return new DispatchFailedError(
      `RabbitMQ unreachable for ${this.outageTimeoutMs} ms; the token stays pending for the relay`,
      {},
    );
  }
}
