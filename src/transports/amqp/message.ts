import type { Options } from 'amqplib';
import type { TokenRecord } from '../../core/token.js';
import type { OutgoingMessage } from './confirmed-channel.js';
import { AmqpHeaders } from './headers.js';

/**
 * The message a token's signal becomes. The token's own headers go first so that nobody can overwrite the
 * token or conversation header through them.
 */
export function messageForToken(token: TokenRecord, exchange: string, routingKey: string): OutgoingMessage {
  const properties: Options.Publish & { messageId: string } = {
    persistent: true,
    mandatory: true,
    contentType: 'application/json',
    messageId: token.id,
    correlationId: token.conversationId,
    timestamp: Math.floor(token.mintedAt / 1000),
    headers: {
      ...token.headers,
      [AmqpHeaders.token]: token.id,
      [AmqpHeaders.conversation]: token.conversationId,
    },
  };
  return { exchange, routingKey, body: Buffer.from(JSON.stringify(token.payload ?? null)), properties };
}
