import type { Destination } from '../../core/token.js';

/** The destination of a signal emitted to an exchange, for `ctx.emit`. */
export function amqpDestination(exchange: string, routingKey: string): Destination {
  return { medium: 'amqp', exchange, routingKey };
}

/** The destination of a signal sent straight to a queue (through the default exchange). */
export function queueDestination(queue: string): Destination {
  return { medium: 'amqp', exchange: '', routingKey: queue };
}
