import { setMaxListeners } from 'node:events';
import type { Span } from '@opentelemetry/api';
import { type BatchRequest, processBatch, type Settled } from '../../core/batch.js';
import { crashPoint } from '../../core/crash.js';
import { Dispatcher, type SignalSender } from '../../core/dispatcher.js';
import { ErrorCodes } from '../../core/errors.js';
import type { JsonValue } from '../../core/fingerprint.js';
import { fanOut, type Logger, type Observer, silentLogger } from '../../core/observer.js';
import { type Handler, type Processed, processSignal, type RetryPolicy } from '../../core/processor.js';
import { type BackoffPolicy, sleep } from '../../core/retry.js';
import type { TokenStore } from '../../core/store.js';
import type { TokenRecord } from '../../core/token.js';
import { Acks } from './acks.js';
import type { AmqpConnection } from './connection.js';
import { type DeadLetterReason, publishDeadLetter } from './dead-letter.js';
import type { Delivery } from './delivery.js';
import { dispositionOf } from './disposition.js';
import { AmqpHeaders, headerText } from './headers.js';
import { ManagedChannel } from './managed-channel.js';
import type { AmqpPublisher } from './publisher.js';
import { deadLetterNames, declareConsumerQueue, type QueueTopology } from './topology.js';
import { receiveDelivery, traceDisposition } from './tracing.js';
import { type Verdict, verdictOf } from './verdict.js';
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
  /**
   * Emitted signals handed to the broker and not yet confirmed, beyond which the consumer starts no new batch
   * (its deliveries wait, unacked, so the broker stops at the prefetch). Deliveries are acked before their
   * emitted signals are confirmed (the committed tokens keep them for the relay), so this bounds what the
   * confirms may lag behind. Default 8 × prefetch, at least 64.
   */
  maxUnconfirmed?: number;
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
  /** Batches started: deliveries taken together, checked with one read and committed together. */
  batches: number;
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
    batches: 0,
  };
  private readonly logger: Logger;
  private readonly observe: Required<Observer>;
  private readonly dispatcher: Dispatcher;
  private readonly concurrency: number;
  private readonly attempts: BackoffPolicy;
  /** Arrived, not started yet. */
  private readonly waiting: Delivery[] = [];
  /** Started and not yet acked, given back or parked: at most `concurrency`. */
  private active = 0;
  private scheduled = false;
  /** Emitted signals handed to their senders whose dispatch has not finished. */
  private unconfirmed = 0;
  private readonly maxUnconfirmed: number;
  private readonly acks = new Acks();
  /** Runs, dead letters and dispatches under way, which stop() lets finish. */
  private readonly inFlight = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  private readonly channel: ManagedChannel;
  /** What every delivery's run of the protocol shares. */
  private readonly batchRequest: BatchRequest<P, R, Tx>;

  private constructor(
    deps: ConsumerDependencies<Tx>,
    readonly queue: string,
    handler: Handler<P, R, Tx>,
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
    const prefetch = options.prefetch ?? this.concurrency;
    this.maxUnconfirmed = Math.max(1, options.maxUnconfirmed ?? Math.max(64, 8 * prefetch));
    this.batchRequest = {
      store: deps.store,
      endpoint: this.endpoint,
      handler,
      observer: this.observe,
      ...(options.storeRetry ? { retry: options.storeRetry } : {}),
    };
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
        prefetch,
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
    this.acks.track(delivery);
    this.waiting.push(delivery);
    this.schedule();
  }

  /** The deliveries of this turn start together, as one batch, once the turn has taken in all it will. */
  private schedule(): void {
    if (this.scheduled || this.stopping.signal.aborted) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.startBatch();
    });
  }

  private startBatch(): void {
    if (this.unconfirmed >= this.maxUnconfirmed) return; // resumed when confirms come in
    const batch: Delivery[] = [];
    while (this.active + batch.length < this.concurrency && this.waiting.length > 0) {
      const delivery = this.waiting.shift() as Delivery;
      // Deliveries of a closed channel can no longer be acked; the broker redelivers them.
      if (delivery.channel.isOpen) batch.push(delivery);
      else this.acks.forget(delivery);
    }
    if (batch.length === 0) return;
    this.active += batch.length;
    this.stats.batches += 1;
    this.track(this.runBatch(batch));
  }

  /** Runs `work` to its end under stop()'s eye; an unexpected failure is logged, never thrown. */
  private track(work: Promise<unknown>): void {
    const running = work
      .catch((error: unknown) => this.logger.error({ err: error }, 'unexpected failure handling a message'))
      .then(() => undefined);
    this.inFlight.add(running);
    void running.finally(() => this.inFlight.delete(running));
  }

  /**
   * The batch pipeline: one read checks every token of the batch, the handlers run, and their commits reach the
   * store together (one group commit on SQLite). Then the emitted signals go to the broker together, and one
   * ack settles the batch (`multiple` where the order allows); the confirms are awaited after the ack.
   * A delivery that failed leaves the batch and goes its own way (re-run, requeue or dead letter).
   */
  private async runBatch(batch: Delivery[]): Promise<void> {
    const started = performance.now();
    const hops: Hop<P, R>[] = [];
    for (const delivery of batch) {
      const hop = this.open(delivery, started);
      try {
        hop.payload = JSON.parse(delivery.message.content.toString('utf8')) as P;
        hops.push(hop);
      } catch {
        this.track(
          this.deadLetter(hop, {
            code: ErrorCodes.INVALID_PAYLOAD,
            reason: 'the message body is not JSON',
            attempts: 0,
          }),
        );
      }
    }
    if (hops.length === 0) return;
    let settled: Array<Settled<R>>;
    try {
      settled = await processBatch(
        this.batchRequest,
        hops.map((hop) => ({
          tokenId: hop.tokenId,
          payload: hop.payload as P,
          span: hop.span,
          maybeCommitted: hop.maybeCommitted,
        })),
      );
    } catch (error) {
      // processBatch settles each signal; should it throw all the same, each delivery goes its own way.
      settled = hops.map(() => ({ ok: false, error }));
    }
    const finished: Array<Finished<P, R>> = [];
    hops.forEach((hop, i) => {
      const verdict = verdictOf(settled[i] as Settled<R>);
      if (verdict.action === 'ack') finished.push({ hop, verdict });
      else if (verdict.action === 'alone') this.track(this.runAlone(hop, verdict.error));
      else this.track(this.deadLetter(hop, { code: verdict.code, reason: verdict.reason, attempts: 0 }));
    });
    this.complete(finished);
  }

  /**
   * A delivery whose run failed, on its own from here: re-run after a pause, given back to the broker or
   * dead-lettered, as `dispositionOf` decides from the error.
   */
  private async runAlone(hop: Hop<P, R>, firstError: unknown): Promise<void> {
    let error = firstError;
    for (let attempt = 1; ; attempt++) {
      const next = dispositionOf(error, attempt, this.attempts, {
        heldMs: performance.now() - hop.started,
        outageHoldMs: this.options.outageHoldMs ?? DEFAULT_OUTAGE_HOLD_MS,
      });
      traceDisposition(hop.span, error, next);
      if (next.action === 'dead-letter') {
        const ran = next.code === ErrorCodes.TOKEN_HEADER_MISSING || next.code === ErrorCodes.TOKEN_MALFORMED;
        await this.deadLetter(hop, { code: next.code, reason: next.reason, attempts: ran ? 0 : attempt });
        return;
      }
      this.logger.warn(
        { err: error, token: loggable(hop.tokenId), attempt, action: next.action },
        'handling failed',
      );
      await sleep(next.delayMs, this.stopping.signal);
      if (next.action === 'requeue' || this.stopping.signal.aborted) {
        this.nack(hop);
        return;
      }
      // The channel closed meanwhile: the broker has taken the message back and redelivers it.
      if (!hop.delivery.channel.isOpen) {
        this.settle(hop);
        return;
      }
      this.stats.retried += 1;
      try {
        const verdict = verdictOf({
          ok: true,
          outcome: await processSignal({
            ...this.batchRequest,
            tokenId: hop.tokenId,
            payload: hop.payload as P,
            span: hop.span,
            maybeCommitted: hop.maybeCommitted,
          }),
        });
        if (verdict.action === 'ack') this.complete([{ hop, verdict }]);
        else if (verdict.action === 'dead-letter') {
          await this.deadLetter(hop, { code: verdict.code, reason: verdict.reason, attempts: 0 });
        }
        return;
      } catch (failure) {
        error = failure;
      }
    }
  }

  /**
   * After the commits: the emitted signals are handed to the broker (together, one confirm wait), then one ack
   * settles the deliveries. The ack need not wait for the confirms: the emitted tokens are committed `pending`
   * with their payload, so the relay sends whatever a crash or a refusal keeps from going out. The confirms and
   * the `dispatched` marks follow off the hop's path; `maxUnconfirmed` bounds how many may be outstanding.
   */
  private complete(finished: ReadonlyArray<Finished<P, R>>): void {
    if (finished.length === 0) return;
    const emitted: TokenRecord[] = [];
    let committed = 0;
    for (const { verdict } of finished) {
      if (!verdict.processed) continue;
      committed += 1;
      for (const token of verdict.emitted) emitted.push(token);
    }
    if (committed > 1) crashPoint('after-group-commit');
    const dispatching = emitted.length > 0 ? this.dispatcher.dispatch(emitted, 'hop') : undefined;
    crashPoint('before-ack');
    const failure = this.acks.ack(finished.map(({ hop }) => hop.delivery));
    // The channel went away: the broker redelivers the messages and their copies are dropped as duplicates.
    if (failure) this.logger.debug({ err: failure }, 'could not ack; the messages will be redelivered');
    const now = performance.now();
    for (const { hop, verdict } of finished) {
      if (verdict.processed) {
        this.stats.processed += 1;
        this.observe.hopCompleted(this.endpoint, now - hop.started);
      } else {
        this.stats.dropped += 1;
      }
      this.settle(hop);
    }
    if (dispatching) {
      const count = emitted.length;
      this.unconfirmed += count;
      this.track(
        dispatching.finally(() => {
          this.unconfirmed -= count;
          this.schedule();
        }),
      );
    }
  }

  /** The delivery's receive span starts now and lasts until the delivery is settled. */
  private open(delivery: Delivery, started: number): Hop<P, R> {
    const hop: Hop<P, R> = {
      delivery,
      tokenId: headerText(delivery.message.properties.headers, AmqpHeaders.token),
      started,
      // Kept across the runs of this delivery: a commit whose answer was lost in an outage is still ours.
      maybeCommitted: new Map(),
      span: undefined as unknown as Span,
      end: () => undefined,
    };
    // Never rejects; stop() waits for the delivery's work, which settles it, not for the span.
    void receiveDelivery(delivery.message, this.queue, this.endpoint, (span) => {
      hop.span = span;
      return new Promise<void>((resolve) => {
        hop.end = resolve;
      });
    });
    return hop;
  }

  /** The delivery is acked, given back or parked: its place in the window is free. */
  private settle(hop: Hop<P, R>): void {
    hop.end();
    this.active -= 1;
    if (this.waiting.length > 0) this.schedule();
  }

  private async deadLetter(hop: Hop<P, R>, why: Omit<DeadLetterReason, 'endpoint' | 'queue'>): Promise<void> {
    const { delivery, tokenId } = hop;
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
      this.nack(hop);
      return;
    }
    const failure = this.acks.ack([delivery]);
    if (failure) this.logger.debug({ err: failure }, 'could not ack; the message will be redelivered');
    this.settle(hop);
    this.stats.deadLettered += 1;
    this.observe.deadLettered(this.endpoint, loggable(tokenId), why.code);
    this.logger.warn(
      { token: loggable(tokenId), code: why.code, reason: why.reason },
      'dead-lettered a message',
    );
  }

  private nack(hop: Hop<P, R>): void {
    const failure = this.acks.requeue(hop.delivery);
    this.settle(hop);
    if (failure) this.logger.debug({ err: failure }, 'could not nack; the message will be redelivered');
    else this.stats.requeued += 1;
  }
}

/** A delivery whose run ended in an ack. */
interface Finished<P, R> {
  hop: Hop<P, R>;
  verdict: Extract<Verdict, { action: 'ack' }>;
}

/** One delivery on its way through the pipeline. */
interface Hop<P, R> {
  delivery: Delivery;
  tokenId: string | undefined;
  payload?: P;
  /** When the batch it came in started. */
  started: number;
  maybeCommitted: Map<string, Processed<R>>;
  span: Span;
  /** Ends the receive span. */
  end(): void;
}

/** A token header comes from outside and may be anything: never log more of it than a real id could be. */
function loggable(tokenId: string | undefined): string | undefined {
  return tokenId === undefined ? undefined : tokenId.slice(0, 128);
}
