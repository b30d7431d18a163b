import { setMaxListeners } from 'node:events';
import type { ChannelModel, ConsumeMessage } from 'amqplib';
import { crashPoint } from '../../core/crash.js';
import { Dispatcher, type SignalSender } from '../../core/dispatcher.js';
import { ErrorCodes } from '../../core/errors.js';
import type { JsonValue } from '../../core/fingerprint.js';
import { fanOut, type Logger, type Observer, silentLogger } from '../../core/observer.js';
import { type Handler, type Processed, processSignal, type RetryPolicy } from '../../core/processor.js';
import { type BackoffPolicy, sleep } from '../../core/retry.js';
import type { TokenStore } from '../../core/store.js';
import { recoverChannel } from './channel-recovery.js';
import { ConfirmedChannel } from './confirmed-channel.js';
import type { AmqpConnection } from './connection.js';
import { type DeadLetterReason, publishDeadLetter } from './dead-letter.js';
import { dispositionOf } from './disposition.js';
import { AmqpHeaders, headerText } from './headers.js';
import type { AmqpPublisher } from './publisher.js';
import { deadLetterNames, declareConsumerQueue, type QueueTopology } from './topology.js';
import { settleWithin } from './wait.js';

export interface ConsumeOptions extends QueueTopology {
  /** Recorded as `consumedBy` and as `mintedBy` of emitted tokens. Default: the queue name. */
  endpoint?: string;
  /** Handlers running at once. Default 8. */
  concurrency?: number;
  /** Unacknowledged messages the broker hands this consumer. Default: `concurrency`. */
  prefetch?: number;
  /** Handler runs per delivery before the message is dead-lettered, and the pauses between. Default 5 runs. */
  attempts?: BackoffPolicy;
  /** Store retries inside one run (version conflicts, transient failures); the core's defaults otherwise. */
  storeRetry?: RetryPolicy;
  /** Senders for emitted signals of other media (e.g. the HTTP transport's). */
  senders?: readonly SignalSender[];
  /** Where dead letters go. Default `<queue>.dlx`, which `declare` creates. */
  deadLetterExchange?: string;
  /** How long `stop` waits for handlers in flight. Default 10 s. */
  stopTimeoutMs?: number;
  /**
   * How long a delivery is kept and re-run while the store is unavailable before it goes back to the broker
   * (each requeue counts toward the queue's delivery limit). Keep it well under the broker's consumer timeout
   * (30 min by default). Default 5 min.
   */
  outageHoldMs?: number;
}

export interface ConsumerStats {
  received: number;
  processed: number;
  /** Duplicates and signals whose token ended: acked without running the handler. */
  dropped: number;
  deadLettered: number;
  /** Given back to the broker (store unavailable, shutting down). */
  requeued: number;
  /** Handler re-runs on the same delivery after it threw. */
  retried: number;
  /** Subscriptions made: 1 + recoveries. */
  subscriptions: number;
}

export interface ConsumerDependencies<Tx = unknown> {
  connection: AmqpConnection;
  /** `Tx`: the store's handle on the application's own tables, given to handlers as `ctx.tx`. */
  store: TokenStore<Tx>;
  publisher: AmqpPublisher;
  logger?: Logger;
  observers?: readonly Observer[];
}

const DEFAULT_ATTEMPTS: BackoffPolicy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 5_000 };
const DEFAULT_OUTAGE_HOLD_MS = 5 * 60_000;

interface Subscription {
  connection: ChannelModel;
  channel: ConfirmedChannel;
  consumerTag: string;
}

interface Delivery {
  channel: ConfirmedChannel;
  message: ConsumeMessage;
}

/**
 * Consumes one queue following PROTOCOL.md's receiving steps: duplicate check, handler, one commit (all in the
 * core's `processSignal`), dispatch of emitted signals, then ack. Manual acks only: until the ack, the broker
 * keeps the message, so a crash at any step means a redelivery that the token check turns into a no-op.
 */
export class AmqpConsumer<P = JsonValue, R = unknown, Tx = unknown> {
  readonly endpoint: string;
  readonly stats: ConsumerStats = {
    received: 0,
    processed: 0,
    dropped: 0,
    deadLettered: 0,
    requeued: 0,
    retried: 0,
    subscriptions: 0,
  };
  private readonly logger: Logger;
  private readonly observe: Required<Observer>;
  private readonly dispatcher: Dispatcher;
  private readonly concurrency: number;
  private readonly attempts: BackoffPolicy;
  private readonly waiting: Delivery[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  private subscription: Subscription | undefined;
  private subscribing: Promise<void> = Promise.resolve();
  private unregister: (() => void) | undefined;
  private started = false;

  private constructor(
    private readonly deps: ConsumerDependencies<Tx>,
    readonly queue: string,
    private readonly handler: Handler<P, R, Tx>,
    private readonly options: ConsumeOptions,
  ) {
    this.endpoint = options.endpoint ?? queue;
    this.logger = (deps.logger ?? silentLogger).child({
      component: 'amqp-consumer',
      queue,
      endpoint: this.endpoint,
    });
    this.observe = fanOut(deps.observers ?? []);
    this.concurrency = Math.max(1, options.concurrency ?? 8);
    // Each handler pausing between runs listens to it: `concurrency` listeners at once is expected.
    setMaxListeners(0, this.stopping.signal);
    this.attempts = options.attempts ?? DEFAULT_ATTEMPTS;
    this.dispatcher = options.senders?.length
      ? new Dispatcher({
          store: deps.store,
          senders: [deps.publisher, ...options.senders],
          logger: deps.logger ?? silentLogger,
          observers: deps.observers ?? [],
        })
      : deps.publisher.dispatcher;
  }

  /** Declares the topology and subscribes; resolves once messages flow. Re-subscribes after every reconnection. */
  static async start<P = JsonValue, R = unknown, Tx = unknown>(
    deps: ConsumerDependencies<Tx>,
    queue: string,
    handler: Handler<P, R, Tx>,
    options: ConsumeOptions = {},
  ): Promise<AmqpConsumer<P, R, Tx>> {
    const consumer = new AmqpConsumer(deps, queue, handler, options);
    consumer.unregister = await deps.connection.onConnect((connection) => consumer.subscribe(connection));
    consumer.started = true;
    return consumer;
  }

  /**
   * Graceful shutdown: stop taking messages, let handlers in flight finish (bounded; a handler still running
   * after that is abandoned and its message redelivered), then close the channel.
   */
  async stop(): Promise<void> {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    this.unregister?.();
    const subscription = this.subscription;
    if (subscription)
      await subscription.channel.channel.cancel(subscription.consumerTag).catch(() => undefined);
    this.waiting.length = 0; // not started: the broker redelivers them once the channel closes
    await settleWithin(this.inFlight, this.options.stopTimeoutMs ?? 10_000);
    this.subscription = undefined;
    await subscription?.channel.close();
  }

  /** Serialized: a reconnection hook and a channel-recovery loop must not both open a subscription. */
  private subscribe(connection: ChannelModel): Promise<void> {
    const next = this.subscribing.catch(() => undefined).then(() => this.subscribeOnce(connection));
    this.subscribing = next;
    return next;
  }

  private async subscribeOnce(connection: ChannelModel): Promise<void> {
    if (this.stopping.signal.aborted) return;
    const current = this.subscription;
    if (current?.connection === connection && current.channel.isOpen) return;
    const raw = await connection.createConfirmChannel();
    const channel = new ConfirmedChannel(raw, 10_000, this.logger);
    raw.on('close', () => this.unsubscribed(connection, channel));
    let consumerTag: string;
    try {
      if (this.options.declare ?? true) await declareConsumerQueue(raw, this.queue, this.options);
      await raw.prefetch(this.options.prefetch ?? this.concurrency);
      ({ consumerTag } = await raw.consume(this.queue, (message) => this.received(channel, message), {
        noAck: false,
      }));
    } catch (error) {
      await channel.close();
      throw error;
    }
    this.subscription = { connection, channel, consumerTag };
    this.stats.subscriptions += 1;
    this.logger.info({ subscriptions: this.stats.subscriptions }, 'consuming');
  }

  /**
   * A lost channel on a live connection (the broker closed it, or cancelled the consumer) is re-subscribed here;
   * a lost connection is re-subscribed by the connection's hook.
   */
  private unsubscribed(connection: ChannelModel, channel: ConfirmedChannel): void {
    if (this.subscription?.channel === channel) this.subscription = undefined;
    if (this.stopping.signal.aborted || !this.started) return;
    recoverChannel({
      lostOn: connection,
      connection: this.deps.connection,
      settled: () => this.stopping.signal.aborted || this.subscription !== undefined,
      reopen: (live) => this.subscribe(live),
      logger: this.logger,
      what: 'the subscription',
      signal: this.stopping.signal,
    });
  }

  private received(channel: ConfirmedChannel, message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled us (e.g. the queue was deleted): drop the channel; re-subscribing re-declares.
      this.logger.warn({}, 'the broker cancelled the consumer');
      void channel.close();
      return;
    }
    this.stats.received += 1;
    this.waiting.push({ channel, message });
    this.startWaiting();
  }

  private startWaiting(): void {
    while (this.inFlight.size < this.concurrency && this.waiting.length > 0) {
      const delivery = this.waiting.shift() as Delivery;
      // Deliveries of a closed channel can no longer be acked; the broker redelivers them.
      if (!delivery.channel.isOpen) continue;
      const running = this.handle(delivery)
        .catch((error: unknown) => this.logger.error({ err: error }, 'unexpected failure handling a message'))
        .finally(() => {
          this.inFlight.delete(running);
          this.startWaiting();
        });
      this.inFlight.add(running);
    }
  }

  private async handle(delivery: Delivery): Promise<void> {
    const { message } = delivery;
    const started = performance.now();
    const tokenId = headerText(message.properties.headers, AmqpHeaders.token);
    let payload: P;
    try {
      payload = JSON.parse(message.content.toString('utf8')) as P;
    } catch {
      await this.deadLetter(delivery, tokenId, {
        code: ErrorCodes.INVALID_PAYLOAD,
        reason: 'the message body is not JSON',
        attempts: 0,
      });
      return;
    }
    // Kept across the runs of this delivery: a commit whose answer was lost in an outage is still ours.
    const maybeCommitted = new Map<string, Processed<R>>();
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await processSignal({
          store: this.deps.store,
          endpoint: this.endpoint,
          tokenId,
          payload,
          handler: this.handler,
          observer: this.observe,
          maybeCommitted,
          ...(this.options.storeRetry ? { retry: this.options.storeRetry } : {}),
        });
        if (outcome.kind === 'processed') {
          // Emitted signals go out after the commit (causal order); a failed send leaves them to the relay.
          await this.dispatcher.dispatch(outcome.emitted, 'hop');
          crashPoint('before-ack');
          this.ack(delivery);
          this.stats.processed += 1;
          this.observe.hopCompleted(this.endpoint, performance.now() - started);
        } else if (outcome.kind === 'dropped') {
          this.ack(delivery);
          this.stats.dropped += 1;
        } else {
          await this.deadLetter(delivery, tokenId, {
            code: outcome.error.code,
            reason: outcome.error.message,
            attempts: 0,
          });
        }
        return;
      } catch (error) {
        const next = dispositionOf(error, attempt, this.attempts, {
          heldMs: performance.now() - started,
          outageHoldMs: this.options.outageHoldMs ?? DEFAULT_OUTAGE_HOLD_MS,
        });
        if (next.action === 'dead-letter') {
          const ran =
            next.code === ErrorCodes.TOKEN_HEADER_MISSING || next.code === ErrorCodes.TOKEN_MALFORMED;
          await this.deadLetter(delivery, tokenId, {
            code: next.code,
            reason: next.reason,
            attempts: ran ? 0 : attempt,
          });
          return;
        }
        this.logger.warn(
          { err: error, token: loggable(tokenId), attempt, action: next.action },
          'handling failed',
        );
        await sleep(next.delayMs, this.stopping.signal);
        if (next.action === 'requeue' || this.stopping.signal.aborted) {
          this.nack(delivery);
          return;
        }
        // The channel closed meanwhile: the broker has taken the message back and redelivers it.
        if (!delivery.channel.isOpen) return;
        this.stats.retried += 1;
      }
    }
  }

  private async deadLetter(
    delivery: Delivery,
    tokenId: string | undefined,
    why: Omit<DeadLetterReason, 'endpoint' | 'queue'>,
  ): Promise<void> {
    const exchange = this.options.deadLetterExchange ?? deadLetterNames(this.queue).exchange;
    try {
      await publishDeadLetter(delivery.channel, exchange, delivery.message, {
        ...why,
        endpoint: this.endpoint,
        queue: this.queue,
      });
    } catch (error) {
      // Not parked, so not acked either: the broker keeps it (its delivery limit still bounds the loop).
      this.logger.error(
        { err: error, token: loggable(tokenId) },
        'could not dead-letter a message; requeueing it',
      );
      await sleep(1_000, this.stopping.signal);
      this.nack(delivery);
      return;
    }
    this.ack(delivery);
    this.stats.deadLettered += 1;
    this.observe.deadLettered(this.endpoint, loggable(tokenId), why.code);
    this.logger.warn(
      { token: loggable(tokenId), code: why.code, reason: why.reason },
      'dead-lettered a message',
    );
  }

  private ack(delivery: Delivery): void {
    try {
      delivery.channel.channel.ack(delivery.message);
    } catch (error) {
      // The channel went away: the broker redelivers the message and its copy is dropped as a duplicate.
      this.logger.debug({ err: error }, 'could not ack; the message will be redelivered');
    }
  }

  private nack(delivery: Delivery): void {
    try {
      delivery.channel.channel.nack(delivery.message, false, true);
      this.stats.requeued += 1;
    } catch (error) {
      this.logger.debug({ err: error }, 'could not nack; the message will be redelivered');
    }
  }
}

/** A token header comes from outside and may be anything: never log more of it than a real id could be. */
function loggable(tokenId: string | undefined): string | undefined {
  return tokenId === undefined ? undefined : tokenId.slice(0, 128);
}
