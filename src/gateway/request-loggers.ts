import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, Level, LevelWithSilentOrString } from 'pino';

/** A pino logger as the gateway builds it: fastify's logger type, plus the level check pino has. */
type ParentLogger = FastifyBaseLogger & { isLevelEnabled(level: string): boolean };

/**
 * Fastify's child logger factory for the gateway: a request's logger costs nothing until it writes a line.
 *
 * Fastify gives every request a pino child that carries the request id. Building one (its bindings serialised,
 * its redaction set up) was the gateway's largest allocation per request, and at level warn most requests never
 * write a line. The child is now built on the first line the level lets through, with the same bindings, so a
 * line that is written looks exactly as before. Children that ask for options (a route's own log level) are
 * built at once, as fastify would.
 */
export function lazyRequestLogger(
  parent: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  if (Object.keys(options).length > 0 || !hasLevelCheck(parent)) return parent.child(bindings, options);
  return new LazyChildLogger(parent, bindings);
}

function hasLevelCheck(logger: FastifyBaseLogger): logger is ParentLogger {
  return typeof (logger as Partial<ParentLogger>).isLevelEnabled === 'function';
}

class LazyChildLogger implements FastifyBaseLogger {
  #built: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: ParentLogger,
    private readonly bindings: Bindings,
  ) {}

  get level(): LevelWithSilentOrString {
    return this.#built?.level ?? this.parent.level;
  }

  set level(level: LevelWithSilentOrString) {
    this.built().level = level;
  }

  // Methods on the prototype, not arrow fields: a request that never logs must not allocate six closures.
  fatal(...args: unknown[]): void {
    this.write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.write('error', args);
  }
  warn(...args: unknown[]): void {
    this.write('warn', args);
  }
  info(...args: unknown[]): void {
    this.write('info', args);
  }
  debug(...args: unknown[]): void {
    this.write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.write('trace', args);
  }
  silent(): void {}

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.built().child(bindings, options);
  }

  private write(level: Level, args: unknown[]): void {
    // Once built, the child decides (its level may have been changed); before, the parent's level does.
    if (this.#built === undefined && !this.parent.isLevelEnabled(level)) return;
    const log = this.built()[level] as (...line: unknown[]) => void;
    log.apply(this.#built, args);
  }

  private built(): FastifyBaseLogger {
    this.#built ??= this.parent.child(this.bindings);
    return this.#built;
  }
}
