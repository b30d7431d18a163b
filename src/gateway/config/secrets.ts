import type { StoreConfig } from '../../stores/open.js';
import type { GatewayConfig } from './resolve.js';

/** Query options that carry a password (node-postgres reads every option of the URL). */
const PASSWORD_OPTIONS = ['password', 'sslpassword'] as const;

/** A URL (AMQP, PostgreSQL) with its password masked, for logs: in the user info and in password options. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    for (const option of PASSWORD_OPTIONS)
      if (parsed.searchParams.has(option)) parsed.searchParams.set(option, '***');
    return parsed.toString();
  } catch {
    return '(unparseable url)';
  }
}

/** What the start-up log says about the store: everything but credentials. */
export function describeStore(store: StoreConfig): Record<string, unknown> {
  switch (store.kind) {
    case 'sqlite':
      return { kind: store.kind, filename: store.filename };
    case 'postgres':
      return {
        kind: store.kind,
        url: redactUrl(store.url),
        schema: store.schema,
        poolSize: store.poolSize,
        createTables: store.createTables,
      };
    case 'dynamodb':
      return {
        kind: store.kind,
        ...(store.endpoint !== undefined ? { endpoint: store.endpoint } : {}),
        region: store.region,
        tokensTable: store.tokensTable,
        stateTable: store.stateTable,
      };
  }
}

/**
 * The passwords in the configuration (PostgreSQL and AMQP URLs), as they could appear in a log line: encoded
 * and decoded. The logger masks them wherever they appear, whatever logged them (a driver's error included).
 */
export function configSecrets(config: Pick<GatewayConfig, 'store' | 'amqpUrl'>): string[] {
  const urls = [config.store.kind === 'postgres' ? config.store.url : null, config.amqpUrl];
  const secrets = new Set<string>();
  const add = (value: string) => {
    if (value !== '') secrets.add(value);
  };
  for (const url of urls) {
    if (url === null) continue;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      continue; // an unparseable URL never passed validation
    }
    // User info is kept percent-encoded by URL; an option's value comes back decoded.
    add(parsed.password);
    try {
      add(decodeURIComponent(parsed.password));
    } catch {
      // Validation refuses a malformed one.
    }
    for (const option of PASSWORD_OPTIONS) {
      const value = parsed.searchParams.get(option) ?? '';
      add(value);
      add(encodeURIComponent(value));
      add(new URLSearchParams({ v: value }).toString().slice(2));
    }
  }
  return [...secrets];
}
