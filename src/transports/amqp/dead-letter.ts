import type { ConsumeMessage, MessagePropertyHeaders } from 'amqplib';
import type { ErrorCode } from '../../core/errors.js';
import type { ConfirmedChannel } from './confirmed-channel.js';
import { AmqpHeaders } from './headers.js';

export interface DeadLetterReason {
  code: ErrorCode;
  reason: string;
  /** Handler runs before giving up (0 when the handler never ran). */
  attempts: number;
  endpoint: string;
  queue: string;
}

/** Header values are kept short: a reason is for reading, and brokers cap frame sizes. */
const MAX_REASON_LENGTH = 1000;

/**
 * Publishes a copy of the message, with the reason in its headers, to the dead-letter exchange and waits for
 * the broker's confirm. The caller acks the original only after that, so a crash in between leaves at worst
 * two copies in the dead-letter queue, never none.
 */
export async function publishDeadLetter(
  channel: ConfirmedChannel,
  exchange: string,
  message: ConsumeMessage,
  why: DeadLetterReason,
): Promise<void> {
  const original = message.properties;
  const headers: MessagePropertyHeaders = {
    ...original.headers,
    [AmqpHeaders.reason]: why.reason.slice(0, MAX_REASON_LENGTH),
    [AmqpHeaders.errorCode]: why.code,
    [AmqpHeaders.attempts]: why.attempts,
    [AmqpHeaders.endpoint]: why.endpoint,
    [AmqpHeaders.queue]: why.queue,
    [AmqpHeaders.deadLetteredAt]: new Date().toISOString(),
  };
  await channel.publish({
    exchange,
    routingKey: message.fields.routingKey,
    body: message.content,
    properties: {
      persistent: true,
      headers,
      messageId:
        typeof original.messageId === 'string' ? original.messageId : `dead-${message.fields.deliveryTag}`,
      ...(original.contentType ? { contentType: original.contentType } : {}),
      ...(original.correlationId ? { correlationId: original.correlationId } : {}),
    },
  });
}
