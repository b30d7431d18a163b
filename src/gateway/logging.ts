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

/**
 * `secrets` (the passwords in the configured URLs) are masked as `***` in every line, whoever logged them: a
 * driver's error that quotes its connection string cannot leak one. Secrets shorter than 4 characters are left
 * alone: masking them would mangle ordinary words in every line.
 */
export function createLogger(
  level: string,
  destination?: DestinationStream,
  secrets: readonly string[] = [],
): GatewayLogger {
  const masked = maskingHook(secrets);
  const options = {
    level,
    base: { service: 'tollgate-gateway' },
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    ...(masked ? { hooks: { streamWrite: masked } } : {}),
  };
  return destination ? pino(options, destination) : pino(options);
}

function maskingHook(secrets: readonly string[]): ((line: string) => string) | undefined {
  // A secret appears in a JSON line as JSON escapes it (quotes, backslashes, control characters).
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < 4) continue;
    forms.add(secret);
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  if (forms.size === 0) return undefined;
  // Longest first, so a secret that contains another is masked whole.
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  return (line) => {
    let out = line;
    for (const form of ordered) if (out.includes(form)) out = out.replaceAll(form, '***');
    return out;
  };
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
