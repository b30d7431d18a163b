import type { SignalSender } from '../../core/dispatcher.js';
import type { JsonValue } from '../../core/fingerprint.js';
import type { Logger, Observer } from '../../core/observer.js';
import type { Handler } from '../../core/processor.js';
import { Relay, type RelayOptions } from '../../core/relay.js';
import type { TokenStore } from '../../core/store.js';
import { AmqpConnection, type ReconnectPolicy } from './connection.js';
import { AmqpConsumer, type ConsumeOptions } from './consumer.js';
import { AmqpPublisher, type AmqpPublisherOptions } from './publisher.js';
import type { ExchangeSpec } from './topology.js';

export type AmqpRelayOptions = Omit<RelayOptions, 'store' | 'dispatcher' | 'logger'>;

export interface AmqpTollgateOptions<Tx = unknown> {
  url: string;
  /** The caller's store; `close` leaves it open. Its `Tx` is what handlers get as `ctx.tx`. */
  store: TokenStore<Tx>;
  /** Connection name shown by RabbitMQ. Default 'tollgate'. */
  name?: string;
  logger?: Logger;
  observers?: readonly Observer[];
  /** Exchanges declared on every connection. */
  exchanges?: readonly ExchangeSpec[];
  /** Senders for other media (e.g. HTTP); tokens emitted to those media are then dispatched and relayed too. */
  senders?: readonly SignalSender[];
  publisher?: Pick<AmqpPublisherOptions, 'mintedBy' | 'confirmTimeoutMs' | 'outageTimeoutMs'>;
  /** The relay re-dispatching tokens left pending; `false` to run none in this process. */
  relay?: AmqpRelayOptions | false;
  reconnect?: ReconnectPolicy;
  /** How long `open` tries to reach RabbitMQ. Default 30 s. */
  initialConnectTimeoutMs?: number;
}

export interface AmqpTollgate<Tx = unknown> {
  readonly connection: AmqpConnection;
  readonly publisher: AmqpPublisher;
  readonly relay: Relay | undefined;
  consume<P = JsonValue, R = unknown>(
    queue: string,
    handler: Handler<P, R, Tx>,
    options?: ConsumeOptions,
  ): Promise<AmqpConsumer<P, R, Tx>>;
  /** Stops the relay and the consumers (letting handlers finish), flushes confirms, closes the connection. */
  close(): Promise<void>;
}

/** Everything a process needs for AMQP hops: one self-healing connection, a publisher, consumers and the relay. */
export async function createAmqpTollgate<Tx = unknown>(
  options: AmqpTollgateOptions<Tx>,
): Promise<AmqpTollgate<Tx>> {
  const connection = await AmqpConnection.open({
    url: options.url,
    ...(options.name ? { name: options.name } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.reconnect ? { reconnect: options.reconnect } : {}),
    ...(options.initialConnectTimeoutMs ? { initialConnectTimeoutMs: options.initialConnectTimeoutMs } : {}),
  });
  const shared = {
    store: options.store,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.observers ? { observers: options.observers } : {}),
  };
  let publisher: AmqpPublisher;
  try {
    publisher = await AmqpPublisher.create({
      ...shared,
      ...options.publisher,
      connection,
      ...(options.exchanges ? { exchanges: options.exchanges } : {}),
      ...(options.senders ? { senders: options.senders } : {}),
    });
  } catch (error) {
    await connection.close();
    throw error;
  }
  const relay =
    options.relay === false
      ? undefined
      : new Relay({
          // Without other senders this process can only relay AMQP tokens; leave the rest to processes that can.
          ...(options.senders?.length ? {} : { medium: 'amqp' as const }),
          ...options.relay,
          ...shared,
          dispatcher: publisher.dispatcher,
        });
  relay?.start();
  const consumers = new Set<{ stop(): Promise<void> }>();
  let closed = false;

  return {
    connection,
    publisher,
    relay,
    async consume<P = JsonValue, R = unknown>(
      queue: string,
      handler: Handler<P, R, Tx>,
      consumeOptions: ConsumeOptions = {},
    ) {
      const consumer = await AmqpConsumer.start<P, R, Tx>(
        { ...shared, connection, publisher },
        queue,
        handler,
        consumeOptions,
      );
      consumers.add(consumer);
      return consumer;
    },
    async close() {
      if (closed) return;
      closed = true;
      await relay?.stop();
      await Promise.all([...consumers].map((consumer) => consumer.stop()));
      await publisher.close();
      await connection.close();
    },
  };
}
