import type { MessagePropertyHeaders } from 'amqplib';
import { type ErrorCode, ErrorCodes, InvalidTokenError } from '../../core/errors.js';
import type { JsonValue } from '../../core/fingerprint.js';
import type { Observer } from '../../core/observer.js';
import { requireTokenId } from '../../core/processor.js';
import type { TokenRecord } from '../../core/token.js';
import { publishDeadLetter } from '../../transports/amqp/dead-letter.js';
import { ack, type Delivery, requeue } from '../../transports/amqp/delivery.js';
import { headerText } from '../../transports/amqp/headers.js';
import {
  type AmqpConnection,
  AmqpHeaders,
  deadLetterNames,
  declareConsumerQueue,
} from '../../transports/amqp/index.js';
import { ManagedChannel } from '../../transports/amqp/managed-channel.js';
import { HttpDispatchError, HttpSignalSender } from '../../transports/http/index.js';
import type { EgressRoute } from '../config/index.js';
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

/** Why a message is parked, and after how many HTTP attempts (0 when it was never sent). */
interface Refusal {
  code: ErrorCode;
  reason: string;
  attempts: number;
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
  private readonly channel: ManagedChannel;

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
    this.channel = new ManagedChannel({
      connection: deps.connection,
      owner: 'egress bridge',
      logger: this.logger,
      confirmTimeoutMs: 10_000,
      declare: (raw) =>
        declareConsumerQueue(raw, route.queue, {
          bindings: route.bindings.map((b) => ({ exchange: b.exchange, routingKey: b.routingKey })),
        }),
      subscription: {
        queue: route.queue,
        prefetch: deps.prefetch,
        deliver: (delivery) => this.received(delivery),
      },
      opened: () => this.logger.info({ url: route.url }, 'egress consuming'),
    });
  }

  /** Declares the queue (with its dead-letter queue and bindings) and consumes it, again after every reconnection. */
  static async start(deps: EgressDeps, route: EgressRoute): Promise<EgressBridge> {
    const bridge = new EgressBridge(deps, route);
    await bridge.channel.start();
    return bridge;
  }

  /** Stops taking messages and waits for those in flight; unfinished retries are requeued. */
  async stop(timeoutMs = 10_000): Promise<void> {
    await this.channel.stop(async () => {
      const settled = Promise.allSettled([...this.inFlight]);
      const timer = new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
      // Give deliveries in progress a moment, then cut their retries short: they requeue and nothing is lost.
      await Promise.race([settled, timer]);
      this.sender.close();
      await Promise.race([
        Promise.allSettled([...this.inFlight]),
        new Promise((r) => setTimeout(r, 1_000).unref()),
      ]);
    });
  }

  private received(delivery: Delivery): void {
    const running = this.deliver(delivery)
      .catch((error: unknown) => this.logger.error({ err: error }, 'unexpected egress failure'))
      .finally(() => this.inFlight.delete(running));
    this.inFlight.add(running);
  }

  private async deliver(delivery: Delivery): Promise<void> {
    const started = performance.now();
    const headers = delivery.message.properties.headers;
    const conversationId = headerText(headers, AmqpHeaders.conversation);
    let tokenId: string;
    try {
      tokenId = requireTokenId(headerText(headers, AmqpHeaders.token));
    } catch (error) {
      const code = error instanceof InvalidTokenError ? error.code : ErrorCodes.TOKEN_MALFORMED;
      const why = { code, reason: 'the message carries no valid token', attempts: 0 };
      await this.deadLetter(delivery, undefined, conversationId, why);
      return;
    }
    const log = this.logger.child(signalFields(this.endpoint, tokenId, conversationId));
    let payload: JsonValue;
    try {
      payload = JSON.parse(delivery.message.content.toString('utf8')) as JsonValue;
    } catch {
      const why = { code: ErrorCodes.INVALID_PAYLOAD, reason: 'the body is not JSON', attempts: 0 };
      await this.deadLetter(delivery, tokenId, conversationId, why);
      return;
    }
    try {
      const answer = await this.sender.deliver(this.asToken(tokenId, conversationId, payload, headers));
      ack(delivery);
      this.stats.delivered += 1;
      this.deps.observer.hopCompleted(this.endpoint, performance.now() - started);
      log.info(
        { outcome: answer.outcome, status: answer.statusCode, attempts: answer.attempts },
        'egress delivered',
      );
    } catch (error) {
      if (error instanceof HttpDispatchError && !error.retriable) {
        await this.deadLetter(delivery, tokenId, conversationId, refusalOf(error));
        return;
      }
      log.warn({ err: error }, 'egress delivery failed for now; requeueing');
      this.requeue(delivery);
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
    const traceparent = headerText(headers, 'traceparent');
    if (traceparent !== undefined) token.headers = { traceparent };
    return token;
  }

  /** Parks a copy with the reason in the queue's dead-letter exchange, confirmed, then acks the original. */
  private async deadLetter(
    delivery: Delivery,
    tokenId: string | undefined,
    conversationId: string | undefined,
    why: Refusal,
  ): Promise<void> {
    const exchange = deadLetterNames(this.route.queue).exchange;
    try {
      await publishDeadLetter(delivery.channel, exchange, delivery.message, {
        ...why,
        endpoint: this.endpoint,
        queue: this.route.queue,
      });
    } catch (error) {
      this.logger.error({ err: error, token: tokenId }, 'could not dead-letter; requeueing');
      this.requeue(delivery);
      return;
    }
    ack(delivery);
    this.stats.deadLettered += 1;
    this.deps.observer.deadLettered(this.endpoint, tokenId, why.code);
    this.logger.warn(
      { ...signalFields(this.endpoint, tokenId, conversationId), code: why.code, reason: why.reason },
      'egress dead-lettered',
    );
  }

  /** A failed nack means the channel is gone: the broker redelivers the message anyway. */
  private requeue(delivery: Delivery): void {
    if (requeue(delivery) === undefined) this.stats.requeued += 1;
  }
}

/** A permanent refusal by the peer, after the HTTP attempts its sender made. */
function refusalOf(error: HttpDispatchError): Refusal {
  const problem = error.problemType ? ` (${error.problemType})` : '';
  const attempts = error.details.attempts;
  return {
    code: ErrorCodes.DISPATCH_FAILED,
    reason: `peer refused the signal with HTTP ${error.status ?? '?'}${problem}`,
    attempts: typeof attempts === 'number' ? attempts : 1,
  };
}
