import { crashPoint } from './crash.js';
import { DispatchFailedError, isPermanentDispatchFailure } from './errors.js';
import { fanOut, type Logger, type Observer, silentLogger } from './observer.js';
import type { TokenStore } from './store.js';
import type { TokenRecord } from './token.js';
import { dispatching } from './tracing.js';

/**
 * A transport's way of sending the signal a pending token describes.
 * Resolves only once the signal is safely handed over: the broker confirmed it, or the peer answered
 * in a way that means "delivered" (processed, duplicate, unknown-or-consumed). Rejects otherwise.
 */
export interface SignalSender {
  readonly medium: 'amqp' | 'http';
  send(token: TokenRecord): Promise<void>;
}

export interface DispatchReport {
  dispatched: string[];
  failed: Array<{ tokenId: string; error: unknown }>;
}

export interface DispatcherOptions {
  store: TokenStore;
  senders: readonly SignalSender[];
  logger?: Logger;
  observers?: readonly Observer[];
  clock?: () => number;
}

/**
 * Sends committed tokens' signals and marks them `dispatched`. A failed send leaves the token `pending`,
 * so the relay will try again: a dispatch failure is logged and counted, never lost.
 */
export class Dispatcher {
  private readonly senders = new Map<string, SignalSender>();
  private readonly store: TokenStore;
  private readonly logger: Logger;
  private readonly observe: Required<Observer>;
  private readonly clock: () => number;

  constructor(options: DispatcherOptions) {
    this.store = options.store;
    for (const sender of options.senders) this.senders.set(sender.medium, sender);
    this.logger = options.logger ?? silentLogger;
    this.observe = fanOut(options.observers ?? []);
    this.clock = options.clock ?? Date.now;
  }

  addSender(sender: SignalSender): void {
    this.senders.set(sender.medium, sender);
  }

  async dispatch(tokens: readonly TokenRecord[], via: 'hop' | 'relay' | 'edge'): Promise<DispatchReport> {
    const report: DispatchReport = { dispatched: [], failed: [] };
    // A scheduled token leaves only through the relay, which claims it once due (making it pending): a hop
    // hands over everything it minted, timeouts included, and those must wait.
    const sendable = tokens.filter((token) => token.status !== 'scheduled');
    if (sendable.length === 0) return report;
    await Promise.all(
      sendable.map(async (token) => {
        try {
          await dispatching(token, via, (traced) => this.senderFor(token).send(traced));
          report.dispatched.push(token.id);
          this.observe.dispatched(token, via);
        } catch (error) {
          report.failed.push({ tokenId: token.id, error });
          this.observe.dispatchFailed(token, error);
          this.logger.warn(
            { token: token.id, conversation: token.conversationId, err: error, via },
            isPermanentDispatchFailure(error)
              ? 'signal refused for good; its token stays pending until the relay gives it up'
              : 'signal not dispatched; its token stays pending for the relay',
          );
        }
      }),
    );
    if (report.dispatched.length > 0) {
      crashPoint('after-dispatch');
      try {
        await this.store.markDispatched(report.dispatched, this.clock());
      } catch (error) {
        // The signals went out; an unmarked token only means the relay may send a copy, which the receiver drops.
        this.logger.warn(
          { err: error, tokens: report.dispatched.length },
          'could not mark tokens dispatched',
        );
      }
    }
    return report;
  }

  private senderFor(token: TokenRecord): SignalSender {
    const medium = token.destination?.medium;
    const sender = medium ? this.senders.get(medium) : undefined;
    if (!sender) {
      throw new DispatchFailedError(`no sender for medium ${medium ?? '(none)'}`, { tokenId: token.id });
    }
    return sender;
  }
}
