import type { ConsumeMessage } from 'amqplib';
import type { ConfirmedChannel } from './confirmed-channel.js';

/** A message taken from a queue, with the channel it must be settled on. */
export interface Delivery {
  channel: ConfirmedChannel;
  message: ConsumeMessage;
}

/**
 * Acks the delivery. Returns the error when the channel is gone, which only means a redelivery: the broker takes
 * the message back, and the token turns its second run into a no-op.
 */
export function ack(delivery: Delivery): unknown {
  try {
    delivery.channel.channel.ack(delivery.message);
    return undefined;
  } catch (error) {
    return error;
  }
}

/** Gives the delivery back to the broker. Returns the error when the channel is gone (the broker has it back anyway). */
export function requeue(delivery: Delivery): unknown {
  try {
    delivery.channel.channel.nack(delivery.message, false, true);
    return undefined;
  } catch (error) {
    return error;
  }
}
