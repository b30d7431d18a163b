/**
 * The checks a JSON Schema keyword cannot express, as pure functions the schema's refinements call. Each returns
 * the problem, or undefined when the value is fine. No problem repeats the value: a URL may hold a password.
 */

/** Writing "off" (or "none", or nothing in the file) as the AMQP URL runs the gateway without a broker. */
const AMQP_OFF = new Set(['off', 'none', '']);

export function isAmqpOff(value: string): boolean {
  return AMQP_OFF.has(value.toLowerCase());
}

/** An absolute URL with one of the protocols (`http:`), else the problem. */
export function urlProblem(value: string, protocols: readonly string[]): string | undefined {
  const protocol = URL.canParse(value) ? new URL(value).protocol : undefined;
  if (protocol !== undefined && protocols.includes(protocol)) return undefined;
  return `must be an absolute ${protocols.join(' or ')} URL`;
}

/**
 * postgres://user:password@host[:port]/database[?options]. Checked at start so a typo fails it with the
 * setting's name rather than later as a connection error.
 */
export function postgresUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'is not a URL; expected postgres://user:password@host[:port]/database';
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    return 'must be a postgres: or postgresql: URL';
  }
  // A Unix socket has no host in the URL but a `host` option: postgres:///db?host=/run/postgresql
  if (url.hostname === '' && !url.searchParams.get('host')) return 'has no host';
  if (decoded(url.username) === undefined || decoded(url.password) === undefined) {
    return 'has a malformed user or password (percent-encode % : @ / ?)';
  }
  const database = decoded(url.pathname.replace(/^\//, ''));
  if (database === undefined) return 'has a malformed database name';
  if (database === '') return 'has no database name (postgres://…/database)';
  return undefined;
}

/** The first ingress route name that appears twice: `POST /v1/signals/:route` must name one route. */
export function repeatedRoute(routes: ReadonlyArray<{ route: string }>): string | undefined {
  const names = routes.map((r) => r.route);
  return names.find((name, i) => names.indexOf(name) !== i);
}

function decoded(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}
