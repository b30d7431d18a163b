import type { ConsumeMessage } from 'amqplib';
import { crashPoint } from '../../core/crash.js';
import type { ConfirmedChannel } from './confirmed-channel.js';
import type { Delivery } from './delivery.js';

/** One channel's deliveries not yet acked or given back, oldest (lowest tag) first. */
interface Unsettled {
  tags: number[];
  messages: Map<number, ConsumeMessage>;
  /** Taken care of: to be acked as soon as the order allows. */
  done: Set<number>;
}

/**
 * Settles a consumer's deliveries on their channel with as few frames as the order allows. A basic.ack with
 * `multiple` settles every delivery of the channel up to its tag, so it is sent only for a run of finished
 * deliveries at the front of the channel's unsettled ones: one still being handled (a handler retrying, a
 * delivery held through a store outage, one not started when the consumer stopped) keeps every delivery behind
 * it out of that ack, and those are acked one by one instead.
 *
 * Each method returns the error of a channel that is gone, which only means a redelivery: the broker takes the
 * messages back, and their tokens turn the second runs into no-ops.
 */
export class Acks {
  private readonly channels = new WeakMap<ConfirmedChannel, Unsettled>();

  /** Called for every delivery as it arrives (in tag order on its channel). */
  track({ channel, message }: Delivery): void {
    let unsettled = this.channels.get(channel);
    if (!unsettled) {
      unsettled = { tags: [], messages: new Map(), done: new Set() };
      this.channels.set(channel, unsettled);
    }
    const tag = message.fields.deliveryTag;
    unsettled.tags.push(tag);
    unsettled.messages.set(tag, message);
  }

  /** Acks the deliveries (all of one batch, or one): with `multiple` where they lead their channel's unsettled. */
  ack(deliveries: readonly Delivery[]): unknown {
    let failure: unknown;
    for (const [channel, unsettled] of this.byChannel(deliveries)) {
      for (const delivery of deliveries) {
        if (delivery.channel === channel) unsettled.done.add(delivery.message.fields.deliveryTag);
      }
      failure ??= this.flush(channel, unsettled);
    }
    return failure;
  }

  /** Gives the delivery back to the broker (nack, requeue). */
  requeue(delivery: Delivery): unknown {
    this.forget(delivery);
    try {
      delivery.channel.channel.nack(delivery.message, false, true);
      return undefined;
    } catch (error) {
      return error;
    }
  }

  /** Stops tracking a delivery whose channel closed: the broker has it back already. */
  forget({ channel, message }: Delivery): void {
    const unsettled = this.channels.get(channel);
    if (!unsettled) return;
    const tag = message.fields.deliveryTag;
    const at = unsettled.tags.indexOf(tag);
    if (at >= 0) unsettled.tags.splice(at, 1);
    unsettled.messages.delete(tag);
    unsettled.done.delete(tag);
  }

  private byChannel(deliveries: readonly Delivery[]): Map<ConfirmedChannel, Unsettled> {
    const found = new Map<ConfirmedChannel, Unsettled>();
    for (const { channel } of deliveries) {
      const unsettled = this.channels.get(channel);
      if (unsettled) found.set(channel, unsettled);
    }
    return found;
  }

  private flush(channel: ConfirmedChannel, unsettled: Unsettled): unknown {
    const { tags, messages, done } = unsettled;
    const plan = planAcks(tags, done);
    const settled = new Set(plan.singles);
    if (plan.upTo !== undefined) for (const tag of tags.slice(0, plan.run)) settled.add(tag);
    const upTo = plan.upTo === undefined ? undefined : messages.get(plan.upTo);
    const singles = plan.singles.map((tag) => messages.get(tag) as ConsumeMessage);
    unsettled.tags = tags.filter((tag) => !settled.has(tag));
    for (const tag of settled) {
      messages.delete(tag);
      done.delete(tag);
    }
    try {
      if (upTo) {
        if (plan.run > 1) crashPoint('before-multiple-ack');
        channel.channel.ack(upTo, plan.run > 1);
      }
      for (const message of singles) channel.channel.ack(message);
      return undefined;
    } catch (error) {
      return error;
    }
  }
}

/** Which acks settle the finished deliveries of a channel. */
export interface AckPlan {
  /** The last tag of the finished run at the front: one ack up to it (`multiple` when `run` > 1). */
  upTo?: number;
  /** How many deliveries that ack settles. */
  run: number;
  /** Finished deliveries behind one still being handled: acked one by one. */
  singles: number[];
}

/**
 * `tags`: a channel's unsettled deliveries, oldest first; `done`: those of them finished. A basic.ack with
 * `multiple` settles every unsettled delivery up to its tag, so it may only cover the finished run at the front.
 */
export function planAcks(tags: readonly number[], done: ReadonlySet<number>): AckPlan {
  let run = 0;
  while (run < tags.length && done.has(tags[run] as number)) run++;
  const singles = tags.slice(run).filter((tag) => done.has(tag));
  return run > 0 ? { upTo: tags[run - 1] as number, run, singles } : { run, singles };
}
