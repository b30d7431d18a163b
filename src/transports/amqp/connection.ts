import { type ChannelModel, connect, type RecoveringChannelModel } from 'amqplib';
import { ClosedError, DispatchFailedError } from '../../core/errors.js';
import { type Logger, silentLogger } from '../../core/observer.js';
import { backoffDelay, type DelayPolicy, sleep } from '../../core/retry.js';
import { coalesceWrites } from './coalesced-writes.js';
import { Readiness } from './readiness.js';

/** Reconnection pauses: doubling from `baseDelayMs` up to `maxDelayMs`, each drawn from the upper half (equal jitter). */
export interface ReconnectPolicy {
  /** First pause after a failed attempt or a lost connection. Default 200 ms. */
  baseDelayMs?: number;
  /** Longest pause between attempts. Default 10 s. */
  maxDelayMs?: number;
}

export interface AmqpConnectionOptions {
  /** amqp://user:pass@host:port/vhost, as amqplib takes it. */
  url: string;
  /** Shown by `rabbitmqctl list_connections` and the management UI. Default "tollgate". */
  name?: string;
  logger?: Logger;
  reconnect?: ReconnectPolicy;
  /** How long `open` keeps trying before the first connection counts as failed. Default 30 s. */
  initialConnectTimeoutMs?: number;
  /** TCP connect timeout of one attempt. Default 10 s. */
  socketTimeoutMs?: number;
}

/**
 * Runs after every (re)connection, before `whenConnected` waiters are released: this is where publishers
 * re-create their confirm channels and consumers re-declare topology and re-subscribe.
 */
export type ConnectHook = (connection: ChannelModel) => Promise<void>;

/**
 * One AMQP connection that heals itself, on amqplib's built-in recovery: a lost connection is re-opened with
 * backoff and equal jitter (so many processes do not stampede a recovering broker), and every registered hook runs
 * again on the new one (amqplib's `setup`) before `whenConnected` waiters are released. amqplib re-creates no
 * channel or consumer; the hooks do (see ManagedChannel).
 */
export class AmqpConnection {
  private readonly ready = new Readiness<ChannelModel>();
  private readonly hooks = new Set<ConnectHook>();
  private readonly logger: Logger;
  private readonly delays: DelayPolicy;
  private recovering: RecoveringChannelModel | undefined;
  private live: ChannelModel | undefined;
  private settingUp: Promise<void> | undefined;
  private closing = false;
  private established = 0;

  private constructor(private readonly options: AmqpConnectionOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'amqp-connection', name: this.name });
    this.delays = {
      baseDelayMs: options.reconnect?.baseDelayMs ?? 200,
      maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000,
      jitter: 'equal',
    };
  }

  /** Connects (retrying with backoff up to `initialConnectTimeoutMs`) and returns the managed connection. */
  static async open(options: AmqpConnectionOptions): Promise<AmqpConnection> {
    const connection = new AmqpConnection(options);
    try {
      await connection.start();
      await connection.whenConnected(options.initialConnectTimeoutMs ?? 30_000);
    } catch (error) {
      await connection.close();
      throw error;
    }
    return connection;
  }

  get name(): string {
    return this.options.name ?? 'tollgate';
  }

  /** Connections made so far: 1 + recoveries. */
  get connections(): number {
    return this.established;
  }

  /** The live connection, or undefined during an outage. */
  get current(): ChannelModel | undefined {
    return this.live;
  }

  /** Resolves with the live connection; waits up to `timeoutMs` during an outage, then rejects. */
  whenConnected(timeoutMs = 30_000): Promise<ChannelModel> {
    return this.ready.wait(
      timeoutMs,
      () =>
        new DispatchFailedError(`no connection to RabbitMQ within ${timeoutMs} ms`, {
          connection: this.name,
          timeoutMs,
        }),
    );
  }

  /**
   * Registers a hook for every future connection and, if connected now, runs it at once (its error then
   * reaches the caller, so a bad topology fails `consume` instead of being logged away). Returns an unregister
   * function. Hooks must tolerate running twice on one connection.
   */
  async onConnect(hook: ConnectHook): Promise<() => void> {
    if (this.closing) throw new ClosedError('AMQP connection');
    this.hooks.add(hook);
    const unregister = () => {
      this.hooks.delete(hook);
    };
    const live = this.ready.current;
    if (!live) return unregister;
    for (let attempt = 1; ; attempt++) {
      try {
        await hook(live);
        return unregister;
      } catch (error) {
        // The broker refusing (a queue declared with other arguments, no access) will refuse again: say so.
        if (isBrokerRefusal(error) || attempt >= 5) {
          unregister();
          throw error;
        }
        // Otherwise the connection or channel went away under the hook. Once the connection is replaced (or
        // while it is being replaced) the reconnection runs the hook, which stays registered; on the same,
        // still-live connection, it is tried again here.
        this.logger.warn({ err: error, attempt }, 'connect hook interrupted; it runs again once connected');
        await sleep(backoffDelay({ ...this.delays, jitter: 'none' }, attempt + 1));
        if (this.live !== live || this.closing) return unregister;
      }
    }
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.ready.fail(new ClosedError('AMQP connection'));
    // Cancels a pending reconnection and closes the adopted connection; one still being set up is closed below.
    await this.recovering?.close().catch(() => undefined);
    await this.settingUp?.catch(() => undefined);
    const live = this.live;
    this.live = undefined;
    if (live) await live.close().catch(() => undefined);
  }

  private async start(): Promise<void> {
    this.recovering = await connect(this.options.url, {
      clientProperties: { connection_name: this.name },
      timeout: this.options.socketTimeoutMs ?? 10_000,
      recovery: {
        // Resolve at once: `open` bounds the first connection by time (initialConnectTimeoutMs), not by count.
        waitForConnect: false,
        maxRetries: Number.POSITIVE_INFINITY,
        calculateDelay: (attempt) => backoffDelay(this.delays, attempt),
        setup: (model: ChannelModel) => this.setUp(model),
      },
    });
    // Errors are logged per connection (see adopt); without a listener here amqplib's re-emitted copy would crash.
    this.recovering.on('error', () => undefined);
    this.recovering.on('reconnect-scheduled', ({ attempt, delay, error }) =>
      this.logger.warn({ err: error, attempt, delayMs: delay }, 'no RabbitMQ connection; retrying'),
    );
  }

  /**
   * amqplib's `setup`, run on every new connection before amqplib adopts it. A throw makes amqplib close that
   * connection and connect again after a pause: what a connection lost while the hooks ran needs.
   */
  private async setUp(model: ChannelModel): Promise<void> {
    if (this.closing) throw new ClosedError('AMQP connection');
    this.adopt(model);
    this.settingUp = this.runHooks(model);
    await this.settingUp;
    if (this.closing) throw new ClosedError('AMQP connection');
    if (this.live !== model) {
      throw new DispatchFailedError('the RabbitMQ connection closed while it was being set up', {
        connection: this.name,
      });
    }
    this.ready.set(model);
  }

  private adopt(model: ChannelModel): void {
    coalesceWrites(model);
    this.live = model;
    this.established += 1;
    // Without an 'error' listener an EventEmitter error would crash the process.
    model.on('error', (error: unknown) => this.logger.warn({ err: error }, 'RabbitMQ connection error'));
    model.on('close', (error: unknown) => this.lost(model, error));
    model.on('blocked', (reason: unknown) => this.logger.warn({ reason }, 'RabbitMQ blocked the connection'));
    model.on('unblocked', () => this.logger.info({}, 'RabbitMQ unblocked the connection'));
    this.logger.info({ connections: this.established }, 'connected to RabbitMQ');
  }

  /** amqplib reconnects on its own; this only stops handing out the dead connection. */
  private lost(model: ChannelModel, error: unknown): void {
    if (this.live !== model) return;
    this.live = undefined;
    this.ready.clear();
    if (!this.closing) this.logger.warn({ err: error }, 'lost the RabbitMQ connection; reconnecting');
  }

  private async runHooks(model: ChannelModel): Promise<void> {
    for (const hook of [...this.hooks]) {
      if (this.live !== model) return;
      try {
        await hook(model);
      } catch (error) {
        // The hook's owner retries on its own (see ManagedChannel); one failing hook must not starve the others.
        this.logger.error({ err: error }, 'a reconnection hook failed');
      }
    }
  }
}

/** AMQP reply codes with which the broker refuses a request on its merits (not a lost connection). */
const REFUSAL_CODES = new Set([403, 404, 405, 406, 530, 540]);

function isBrokerRefusal(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    'code' in error &&
    typeof error.code === 'number' &&
    REFUSAL_CODES.has(error.code)
  );
}
