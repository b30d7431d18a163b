import type { MessagePropertyHeaders } from 'amqplib';

/** Message headers Tollgate writes and reads. Lower-case, as AMQP header tables are case-sensitive. */
export const AmqpHeaders = {
  /** The id of the token the message consumes (docs/protocol.md: `exactly-once-token`). */
  token: 'exactly-once-token',
  conversation: 'conversation-id',
  /** Why a message was dead-lettered, for people. */
  reason: 'x-tollgate-reason',
  /** Why a message was dead-lettered, for programs: a Tollgate error code. */
  errorCode: 'x-tollgate-error-code',
  /** How many times the handler ran before the message was dead-lettered. */
  attempts: 'x-tollgate-attempts',
  /** The endpoint (consumer) that dead-lettered the message. */
  endpoint: 'x-tollgate-endpoint',
  /** The queue the message was taken from. */
  queue: 'x-tollgate-queue',
  deadLetteredAt: 'x-tollgate-dead-lettered-at',
} as const;

/**
 * Reads a header as text. Other clients may send strings as AMQP byte arrays, which amqplib hands over as Buffers.
 */
export function headerText(headers: MessagePropertyHeaders | undefined, name: string): string | undefined {
  const value: unknown = headers?.[name];
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return undefined;
}
