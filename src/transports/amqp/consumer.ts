import { setMaxListeners } from 'node:events';
import type { Span } from '@opentelemetry/api';
import { crashPoint } from '../../core/crash.js';
import { Dispatcher, type SignalSender } from '../../core/dispatcher.js';
import { ErrorCodes } from '../../core/errors.js';
import type { JsonValue } from '../../core/fingerprint.js';
import { fanOut, type Logger, type Observer, silentLogger } from '../../core/observer.js';
import { type Handler, type Processed, processSignal, type RetryPolicy } from '../../core/processor.js';
import { type BackoffPolicy, sleep } from '../../core/retry.js';
import type { TokenStore } from '../../core/store.js';
import type { AmqpConnection } from './connection.js';
import { type DeadLetterReason, publishDeadLetter } from './dead-letter.js';
import { ack, type Delivery, requeue } from './delivery.js';
import { dispositionOf } from './disposition.js';
import { AmqpHeaders, headerText } from './headers.js';
import { ManagedChannel } from './managed-channel.js';
import type { AmqpPublisher } from './publisher.js';
import { deadLetterNames, declareConsumerQueue, type QueueTopology } from './topology.js';
import { receiveDelivery, traceDisposition } from './tracing.js';
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

/**
 * Consumes one queue following the receiving steps of docs/protocol.md: duplicate check, handler, one commit (all in the
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
  private readonly channel: ManagedChannel;

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
    this.channel = new ManagedChannel({
      connection: deps.connection,
      owner: 'AMQP consumer',
      logger: this.logger,
      confirmTimeoutMs: 10_000,
      ...((options.declare ?? true) ? { declare: (raw) => declareConsumerQueue(raw, queue, options) } : {}),
      subscription: {
        queue,
        prefetch: options.prefetch ?? this.concurrency,
        deliver: (delivery) => this.received(delivery),
      },
      opened: () => {
        this.stats.subscriptions += 1;
        this.logger.info({ subscriptions: this.stats.subscriptions }, 'consuming');
      },
    });
  }

  /** Declares the topology and subscribes; resolves once messages flow. Re-subscribes after every reconnection. */
  static async start<P = JsonValue, R = unknown, Tx = unknown>(
    deps: ConsumerDependencies<Tx>,
    queue: string,
    handler: Handler<P, R, Tx>,
    options: ConsumeOptions = {},
  ): Promise<AmqpConsumer<P, R, Tx>> {
    const consumer = new AmqpConsumer(deps, queue, handler, options);
    await consumer.channel.start();
    return consumer;
  }

  /**
   * Graceful shutdown: stop taking messages, let handlers in flight finish (bounded; a handler still running
   * after that is abandoned and its message redelivered), then close the channel.
   */
  async stop(): Promise<void> {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    await this.channel.stop(async () => {
      this.waiting.length = 0; // not started: the broker redelivers them once the channel closes
      await settleWithin(this.inFlight, this.options.stopTimeoutMs ?? 10_000);
    });
  }

  private received(delivery: Delivery): void {
    this.stats.received += 1;
    this.waiting.push(delivery);
    this.startWaiting();
  }

  private startWaiting(): void {
    while (this.inFlight.size < this.concurrency && this.waiting.length > 0) {
      const delivery = this.waiting.shift() as Delivery;
      // Deliveries of a closed channel can no longer be acked; the broker redelivers them.
      if (!delivery.channel.isOpen) continue;
      const running = receiveDelivery(delivery.message, this.queue, this.endpoint, (span) =>
        this.handle(delivery, span),
      )
        .catch((error: unknown) => this.logger.error({ err: error }, 'unexpected failure handling a message'))
        .finally(() => {
          this.inFlight.delete(running);
          this.startWaiting();
        });
      this.inFlight.add(running);
    }
  }

  private async handle(delivery: Delivery, span: Span): Promise<void> {
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
          span,
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
        traceDisposition(span, error, next);
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
    const failure = ack(delivery);
    // The channel went away: the broker redelivers the message and its copy is dropped as a duplicate.
    if (failure) this.logger.debug({ err: failure }, 'could not ack; the message will be redelivered');
  }

  private nack(delivery: Delivery): void {
    const failure = requeue(delivery);
    if (failure) this.logger.debug({ err: failure }, 'could not nack; the message will be redelivered');
    else this.stats.requeued += 1;
  }
}

/** A token header comes from outside and may be anything: never log more of it than a real id could be. */
function loggable(tokenId: string | undefined): string | undefined {
  return tokenId === undefined ? undefined : tokenId.slice(0, 128);
}
