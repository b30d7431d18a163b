import type { ChannelModel, ConfirmChannel, ConsumeMessage, MessagePropertyHeaders } from 'amqplib';
import { type ErrorCode, ErrorCodes, InvalidTokenError } from '../../core/errors.js';
import type { JsonValue } from '../../core/fingerprint.js';
import type { Observer } from '../../core/observer.js';
import { requireTokenId } from '../../core/processor.js';
import type { TokenRecord } from '../../core/token.js';
import { recoverChannel } from '../../transports/amqp/channel-recovery.js';
import {
  type AmqpConnection,
  AmqpHeaders,
  deadLetterNames,
  declareConsumerQueue,
} from '../../transports/amqp/index.js';
import { HttpDispatchError, HttpSignalSender } from '../../transports/http/index.js';
import type { EgressRoute } from '../config.js';
import { type GatewayLogger, signalFields } from '../logging.js';

export interface EgressDeps {
  connection: AmqpConnection;
  logger: GatewayLogger;
  observer: Required<Observer>;
  /** Messages handled at once (the channel's prefetch). */
  prefetch: number;
  /** For tests; default the global fetch. */
  fetch?: typeof fetch;
}

export interface EgressStats {
  delivered: number;
  deadLettered: number;
  requeued: number;
}

interface Subscription {
  connection: ChannelModel;
  channel: ConfirmChannel;
  consumerTag: string;
}

/**
 * AMQP → HTTP bridge for one queue: each message is sent to the route's URL with its token in
 * `Exactly-Once-Token` (the HTTP transport's sender retries with backoff). The bridge never consumes the token —
 * the HTTP endpoint that changes state does — so redelivering a message here is always safe.
 * Delivered (including "already consumed") → ack; refused for good (a permanent 4xx) → dead-letter with the
 * reason, then ack; retries exhausted or shutting down → requeue (the quorum queue's delivery limit bounds it).
 */
export class EgressBridge {
  readonly endpoint: string;
  readonly stats: EgressStats = { delivered: 0, deadLettered: 0, requeued: 0 };
  private readonly sender: HttpSignalSender;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly logger: GatewayLogger;
  private subscription: Subscription | undefined;
  private subscribing: Promise<void> = Promise.resolve();
  private unregister: (() => void) | undefined;
  private stopping = false;

  private constructor(
    private readonly deps: EgressDeps,
    readonly route: EgressRoute,
  ) {
    this.endpoint = `egress:${route.queue}`;
    this.logger = deps.logger.child({ component: 'egress', queue: route.queue });
    this.sender = new HttpSignalSender({
      retry: { attempts: route.attempts, baseDelayMs: 100, maxDelayMs: 5_000 },
      timeoutMs: route.timeoutMs,
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    });
  }

  /** Declares the queue (with its dead-letter queue and bindings) and consumes it, again after every reconnection. */
  static async start(deps: EgressDeps, route: EgressRoute): Promise<EgressBridge> {
    const bridge = new EgressBridge(deps, route);
    bridge.unregister = await deps.connection.onConnect((connection) => bridge.subscribe(connection));
    return bridge;
  }

  /** Stops taking messages and waits for those in flight; unfinished retries are requeued. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.unregister?.();
    const subscription = this.subscription;
    this.subscription = undefined;
    await subscription?.channel.cancel(subscription.consumerTag).catch(() => undefined);
    const settled = Promise.allSettled([...this.inFlight]);
    const timer = new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
    // Give deliveries in progress a moment, then cut their retries short: they requeue and nothing is lost.
    await Promise.race([settled, timer]);
    this.sender.close();
    await Promise.race([
      Promise.allSettled([...this.inFlight]),
      new Promise((r) => setTimeout(r, 1_000).unref()),
    ]);
    await subscription?.channel.close().catch(() => undefined);
  }

  /** Serialized: the reconnection hook and the channel-recovery loop must not both open a subscription. */
  private subscribe(connection: ChannelModel): Promise<void> {
    const next = this.subscribing.catch(() => undefined).then(() => this.subscribeOnce(connection));
    this.subscribing = next;
    return next;
  }

  private async subscribeOnce(connection: ChannelModel): Promise<void> {
    if (this.stopping) return;
    if (this.subscription?.connection === connection) return;
    const channel = await connection.createConfirmChannel();
    channel.on('error', (error: unknown) =>
      this.logger.warn({ err: error }, 'RabbitMQ closed the egress channel'),
    );
    channel.on('close', () => this.unsubscribed(connection, channel));
    try {
      await declareConsumerQueue(channel, this.route.queue, {
        bindings: this.route.bindings.map((b) => ({ exchange: b.exchange, routingKey: b.routingKey })),
      });
      await channel.prefetch(this.deps.prefetch);
      const { consumerTag } = await channel.consume(
        this.route.queue,
        (message) => this.received(channel, message),
        { noAck: false },
      );
      this.subscription = { connection, channel, consumerTag };
    } catch (error) {
      await channel.close().catch(() => undefined);
      throw error;
    }
    this.logger.info({ url: this.route.url }, 'egress consuming');
  }

  /**
   * The broker closed the channel (or cancelled the consumer) while the connection lives on: subscribe again on
   * the same connection. A lost connection is handled by the connection's hook instead.
   */
  private unsubscribed(connection: ChannelModel, channel: ConfirmChannel): void {
    if (this.subscription?.channel === channel) this.subscription = undefined;
    if (this.stopping) return;
    recoverChannel({
      lostOn: connection,
      connection: this.deps.connection,
      settled: () => this.stopping || this.subscription !== undefined,
      reopen: (live) => this.subscribe(live),
      logger: this.logger,
      what: 'the egress subscription',
    });
  }

  private received(channel: ConfirmChannel, message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (the queue was deleted, say): closing the channel re-subscribes,
      // which declares the queue again.
      this.logger.warn({}, 'the broker cancelled the egress consumer');
      void channel.close().catch(() => undefined);
      return;
    }
    const running = this.deliver(channel, message)
      .catch((error: unknown) => this.logger.error({ err: error }, 'unexpected egress failure'))
      .finally(() => this.inFlight.delete(running));
    this.inFlight.add(running);
  }

  private async deliver(channel: ConfirmChannel, message: ConsumeMessage): Promise<void> {
    const started = performance.now();
    const headers = message.properties.headers;
    const conversationId = text(headers, AmqpHeaders.conversation);
    let tokenId: string;
    try {
      tokenId = requireTokenId(text(headers, AmqpHeaders.token));
    } catch (error) {
      const code = error instanceof InvalidTokenError ? error.code : ErrorCodes.TOKEN_MALFORMED;
      await this.deadLetter(
        channel,
        message,
        undefined,
        conversationId,
        code,
        'the message carries no valid token',
      );
      return;
    }
    const log = this.logger.child(signalFields(this.endpoint, tokenId, conversationId));
    let payload: JsonValue;
    try {
      payload = JSON.parse(message.content.toString('utf8')) as JsonValue;
    } catch {
      await this.deadLetter(
        channel,
        message,
        tokenId,
        conversationId,
        ErrorCodes.INVALID_PAYLOAD,
        'the body is not JSON',
      );
      return;
    }
    try {
      const delivery = await this.sender.deliver(this.asToken(tokenId, conversationId, payload, headers));
      ack(channel, message);
      this.stats.delivered += 1;
      this.deps.observer.hopCompleted(this.endpoint, performance.now() - started);
      log.info(
        { outcome: delivery.outcome, status: delivery.statusCode, attempts: delivery.attempts },
        'egress delivered',
      );
    } catch (error) {
      if (error instanceof HttpDispatchError && !error.retriable) {
        const reason = `peer refused the signal with HTTP ${error.status ?? '?'}${error.problemType ? ` (${error.problemType})` : ''}`;
        await this.deadLetter(channel, message, tokenId, conversationId, ErrorCodes.DISPATCH_FAILED, reason);
        return;
      }
      log.warn({ err: error }, 'egress delivery failed for now; requeueing');
      this.requeue(channel, message);
    }
  }

  /** The HTTP transport's sender works on tokens; this describes the message as one (it is not stored). */
  private asToken(
    id: string,
    conversationId: string | undefined,
    payload: JsonValue,
    headers: MessagePropertyHeaders | undefined,
  ): TokenRecord {
    const token: TokenRecord = {
      id,
      conversationId: conversationId ?? '',
      mintedBy: this.endpoint,
      destination: { medium: 'http', method: this.route.method, url: this.route.url },
      payload,
      status: 'dispatched',
      mintedAt: Date.now(),
      attempts: 0,
    };
    const traceparent = text(headers, 'traceparent');
    if (traceparent !== undefined) token.headers = { traceparent };
    return token;
  }

  /** Parks a copy with the reason in the queue's dead-letter exchange, confirmed, then acks the original. */
  private async deadLetter(
    channel: ConfirmChannel,
    message: ConsumeMessage,
    tokenId: string | undefined,
    conversationId: string | undefined,
    code: ErrorCode,
    reason: string,
  ): Promise<void> {
    const exchange = deadLetterNames(this.route.queue).exchange;
    const headers: MessagePropertyHeaders = {
      ...message.properties.headers,
      [AmqpHeaders.reason]: reason.slice(0, 1000),
      [AmqpHeaders.errorCode]: code,
      [AmqpHeaders.endpoint]: this.endpoint,
      [AmqpHeaders.queue]: this.route.queue,
      [AmqpHeaders.deadLetteredAt]: new Date().toISOString(),
    };
    try {
      await new Promise<void>((resolve, reject) => {
        channel.publish(
          exchange,
          message.fields.routingKey,
          message.content,
          { persistent: true, headers },
          (error) => (error ? reject(error) : resolve()),
        );
      });
    } catch (error) {
      this.logger.error({ err: error, token: tokenId }, 'could not dead-letter; requeueing');
      this.requeue(channel, message);
      return;
    }
    ack(channel, message);
    this.stats.deadLettered += 1;
    this.deps.observer.deadLettered(this.endpoint, tokenId, code);
    this.logger.warn(
      { ...signalFields(this.endpoint, tokenId, conversationId), code, reason },
      'egress dead-lettered',
    );
  }

  private requeue(channel: ConfirmChannel, message: ConsumeMessage): void {
    try {
      channel.nack(message, false, true);
      this.stats.requeued += 1;
    } catch {
      // The channel is gone: the broker redelivers the message anyway.
    }
  }
}

/** A failed ack (channel gone) only means a redelivery, which the token makes harmless. */
function ack(channel: ConfirmChannel, message: ConsumeMessage): void {
  try {
    channel.ack(message);
  } catch {
    // redelivered later
  }
}

function text(headers: MessagePropertyHeaders | undefined, name: string): string | undefined {
  const value: unknown = headers?.[name];
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}
