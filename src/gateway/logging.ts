import type { FastifyBaseLogger } from 'fastify';
import { type DestinationStream, pino } from 'pino';

/**
 * Paths pino removes before a line is written. Payloads may hold personal data and keys are secrets; a signal's
 * log line identifies it by token, conversation and endpoint instead.
 */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers.cookie',
  'authorization',
  'apiKey',
  'apiKeys',
  'password',
  'secretAccessKey',
  'credentials',
  'payload',
  'body',
  'content',
  '*.payload',
  '*.body',
  '*.content',
  '*.apiKey',
  '*.password',
  '*.credentials',
];

/** pino's logger, as fastify and the core Logger interface both accept it. */
export type GatewayLogger = FastifyBaseLogger;

export function createLogger(level: string, destination?: DestinationStream): GatewayLogger {
  const options = {
    level,
    base: { service: 'tollgate-gateway' },
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}

/** The fields every log line about a signal carries. */
export function signalFields(
  endpoint: string,
  token: string | undefined,
  conversation: string | undefined,
): Record<string, string> {
  const fields: Record<string, string> = { endpoint };
  if (token !== undefined) fields.token = token;
  if (conversation !== undefined) fields.conversation = conversation;
  return fields;
}
