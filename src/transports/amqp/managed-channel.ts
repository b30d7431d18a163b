import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { ClosedError } from '../../core/errors.js';
import type { Logger } from '../../core/observer.js';
import { backoffDelay, type DelayPolicy, sleep } from '../../core/retry.js';
import { ConfirmedChannel } from './confirmed-channel.js';
import type { AmqpConnection } from './connection.js';
import type { Delivery } from './delivery.js';
import { Readiness } from './readiness.js';

export interface Subscription {
  queue: string;
  /** Unacknowledged messages the broker hands over at once. */
  prefetch: number;
  /** Takes each delivery (manual acks); must not throw. */
  deliver(delivery: Delivery): void;
}

export interface ManagedChannelOptions {
  connection: AmqpConnection;
  /** Who owns the channel ("AMQP publisher"): the ClosedError of waiters once it stops says so. */
  owner: string;
  logger: Logger;
  /** How long a publish on the channel waits for the broker's confirm. */
  confirmTimeoutMs: number;
  /** Declares what the channel needs (exchanges, queues, bindings); runs on every new channel. */
  declare?(channel: Channel): Promise<void>;
  /** A queue to consume on every new channel. */
  subscription?: Subscription;
  /** Runs after every successful open: the first and each recovery. */
  opened?(): void;
}

/** Pauses between attempts to re-open a channel the broker closed on a live connection. */
const REOPEN_DELAYS: DelayPolicy = { baseDelayMs: 250, maxDelayMs: 5_000, jitter: 'none' };

interface Open {
  connection: ChannelModel;
  channel: ConfirmedChannel;
  consumerTag: string | undefined;
}

/**
 * The lifecycle of one confirm channel on the self-healing connection, shared by the consumer, the publisher and
 * the gateway's egress bridge: open it, declare, consume; open it again after a lost connection (the connection's
 * hook) and after the broker closed the channel or cancelled the consumer on a live connection (a retry loop
 * here); on stop, cancel the consumer, let the owner drain, close.
 */
export class ManagedChannel {
  private readonly ready = new Readiness<ConfirmedChannel>();
  private readonly stopping = new AbortController();
  private live: Open | undefined;
  private opening: Promise<void> = Promise.resolve();
  private unregister: (() => void) | undefined;
  private started = false;

  constructor(private readonly options: ManagedChannelOptions) {}

  /** Opens the channel (its errors reach the caller) if connected, and again after every reconnection. */
  async start(): Promise<void> {
    this.unregister = await this.options.connection.onConnect((connection) => this.open(connection));
    this.started = true;
  }

  /** The open channel, if there is one now. */
  get current(): ConfirmedChannel | undefined {
    const channel = this.ready.current;
    return channel?.isOpen ? channel : undefined;
  }

  /** Resolves with the open channel; waits up to `timeoutMs` while there is none, then rejects. */
  async wait(timeoutMs: number, onTimeout: () => Error): Promise<ConfirmedChannel> {
    const channel = await this.ready.wait(timeoutMs, onTimeout);
    if (channel.isOpen) return channel;
    // The broker has closed it and its 'close' is still being handled: wait for the channel that replaces it.
    if (this.ready.current === channel) this.ready.clear();
    return this.ready.wait(timeoutMs, onTimeout);
  }

  /**
   * No more re-opening; the consumer, if any, is cancelled; then `drain` runs (the owner's work in flight, which
   * may still ack or publish on the channel), and the channel closes.
   */
  async stop(drain: () => Promise<void> = async () => undefined): Promise<void> {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    this.unregister?.();
    const live = this.live;
    if (live?.consumerTag !== undefined) {
      await live.channel.channel.cancel(live.consumerTag).catch(() => undefined);
    }
    await drain();
    this.live = undefined;
    this.ready.fail(new ClosedError(this.options.owner));
    await live?.channel.close();
  }

  /** Serialized: a reconnection hook and the re-open loop must not both open a channel. */
  private open(connection: ChannelModel): Promise<void> {
    const next = this.opening.catch(() => undefined).then(() => this.openOnce(connection));
    this.opening = next;
    return next;
  }

  private async openOnce(connection: ChannelModel): Promise<void> {
    if (this.stopping.signal.aborted) return;
    if (this.live?.connection === connection && this.live.channel.isOpen) return;
    const raw = await connection.createConfirmChannel();
    const channel = new ConfirmedChannel(raw, this.options.confirmTimeoutMs, this.options.logger);
    raw.on('close', () => this.closed(connection, channel));
    let consumerTag: string | undefined;
    try {
      await this.options.declare?.(raw);
      const subscription = this.options.subscription;
      if (subscription) {
        await raw.prefetch(subscription.prefetch);
        ({ consumerTag } = await raw.consume(
          subscription.queue,
          (message) => this.received(subscription, channel, message),
          { noAck: false },
        ));
      }
    } catch (error) {
      await channel.close();
      throw error;
    }
    if (this.stopping.signal.aborted) {
      await channel.close(); // stopped while opening: nobody would cancel or close it
      return;
    }
    this.live = { connection, channel, consumerTag };
    this.ready.set(channel);
    this.options.opened?.();
  }

  /**
   * On a live connection the broker closed the channel (an error on it, a cancelled consumer): re-open it here.
   * After a lost connection, the connection's hook re-opens it instead.
   */
  private closed(connection: ChannelModel, channel: ConfirmedChannel): void {
    if (this.live?.channel === channel) {
      this.live = undefined;
      this.ready.clear();
    }
    // Before `start` returns, a failed open reaches its caller, who decides.
    if (this.stopping.signal.aborted || !this.started) return;
    void this.reopenOn(connection);
  }

  /** With growing pauses, until a channel is open again, the connection is replaced, or the owner stops. */
  private async reopenOn(connection: ChannelModel): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await sleep(backoffDelay(REOPEN_DELAYS, attempt), this.stopping.signal);
      const settled = this.stopping.signal.aborted || this.live !== undefined;
      if (settled || this.options.connection.current !== connection) return;
      try {
        await this.open(connection);
        return;
      } catch (error) {
        this.options.logger.warn({ err: error, attempt }, 'could not re-open the channel; retrying');
      }
    }
  }

  private received(
    subscription: Subscription,
    channel: ConfirmedChannel,
    message: ConsumeMessage | null,
  ): void {
    if (message === null) {
      // The broker cancelled the consumer (its queue was deleted, say): closing the channel re-opens it, and the
      // re-opened channel declares the queue again.
      this.options.logger.warn({}, 'the broker cancelled the consumer');
      void channel.close();
      return;
    }
    subscription.deliver({ channel, message });
  }
}
