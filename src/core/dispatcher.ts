import { crashPoint } from './crash.js';
import { DispatchFailedError, isPermanentDispatchFailure } from './errors.js';
import { fanOut, type Logger, type Observer, silentLogger } from './observer.js';
import type { TokenStore } from './store.js';
import type { TokenRecord } from './token.js';
import { dispatching, dispatchingMany } from './tracing.js';

/**
 * A transport's way of sending the signal a pending token describes.
 * Resolves only once the signal is safely handed over: the broker confirmed it, or the peer answered
 * in a way that means "delivered" (processed, duplicate, unknown-or-consumed). Rejects otherwise.
 */
export interface SignalSender {
  readonly medium: 'amqp' | 'http';
  send(token: TokenRecord): Promise<void>;
  /**
   * Sends several signals at once (a batch: one confirm wait for all). Settles by position with what `send`
   * would have thrown for each token, undefined for those sent. Optional: without it each is sent on its own.
   */
  sendMany?(tokens: readonly TokenRecord[]): Promise<unknown[]>;
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
  /** The marks of the current turn, written together when it ends. */
  private marking: { ids: string[]; done: Promise<void> } | undefined;

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

  /**
   * Sends the tokens' signals (a sender that takes several at once gets them in one call), then marks those
   * that went out `dispatched`. The marks of dispatches that finish in the same turn of the event loop go to the
   * store as one write. Never rejects: what failed is in the report, its token still pending for the relay.
   *
   * The sends start before this returns its promise: a caller that goes on without awaiting it (the AMQP
   * consumer acking its batch) has handed the signals to their senders already.
   */
  async dispatch(tokens: readonly TokenRecord[], via: 'hop' | 'relay' | 'edge'): Promise<DispatchReport> {
    const report: DispatchReport = { dispatched: [], failed: [] };
    // A scheduled token leaves only through the relay, which claims it once due (making it pending): a hop
    // hands over everything it minted, timeouts included, and those must wait.
    const sendable = tokens.filter((token) => token.status !== 'scheduled');
    if (sendable.length === 0) return report;
    const failures = await this.send(sendable, via);
    sendable.forEach((token, i) => {
      const error = failures[i];
      if (error === undefined) {
        report.dispatched.push(token.id);
        this.observe.dispatched(token, via);
        return;
      }
      report.failed.push({ tokenId: token.id, error });
      this.observe.dispatchFailed(token, error);
      this.logger.warn(
        { token: token.id, conversation: token.conversationId, err: error, via },
        isPermanentDispatchFailure(error)
          ? 'signal refused for good; its token stays pending until the relay gives it up'
          : 'signal not dispatched; its token stays pending for the relay',
      );
    });
    if (report.dispatched.length > 0) {
      crashPoint('after-dispatch');
      // An edge publish waits for its mark (the caller's answer does): it is written at once, not with the turn's.
      await (via === 'edge' ? this.markNow(report.dispatched) : this.mark(report.dispatched));
    }
    return report;
  }

  /** What stopped each token's send, by position; undefined for those sent. */
  private async send(tokens: readonly TokenRecord[], via: string): Promise<unknown[]> {
    const failures = new Array<unknown>(tokens.length);
    const bySender = new Map<SignalSender, number[]>();
    tokens.forEach((token, i) => {
      const sender = this.senders.get(token.destination?.medium ?? '');
      if (!sender) {
        const medium = token.destination?.medium ?? '(none)';
        failures[i] = new DispatchFailedError(`no sender for medium ${medium}`, { tokenId: token.id });
        return;
      }
      const positions = bySender.get(sender);
      if (positions) positions.push(i);
      else bySender.set(sender, [i]);
    });
    await Promise.all(
      [...bySender].map(async ([sender, positions]) => {
        if (sender.sendMany && positions.length > 1) {
          const sendMany = sender.sendMany.bind(sender);
          const group = positions.map((i) => tokens[i] as TokenRecord);
          let results: unknown[];
          try {
            results = await dispatchingMany(group, via, sendMany);
          } catch (error) {
            results = group.map(() => error);
          }
          positions.forEach((i, k) => {
            failures[i] = results[k];
          });
          return;
        }
        await Promise.all(
          positions.map(async (i) => {
            try {
              await dispatching(tokens[i] as TokenRecord, via, (traced) => sender.send(traced));
            } catch (error) {
              failures[i] = error;
            }
          }),
        );
      }),
    );
    return failures;
  }

  /**
   * Joins the ids to the marks of this turn, written together at the end of it. A mark that fails is only
   * logged (markNow): the signals went out, and an unmarked token only means the relay may send a copy, which the
   * receiver drops.
   */
  private mark(ids: readonly string[]): Promise<void> {
    if (this.marking) {
      this.marking.ids.push(...ids);
      return this.marking.done;
    }
    const marking = { ids: [...ids], done: Promise.resolve() };
    marking.done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.marking = undefined;
      return this.markNow(marking.ids);
    });
    this.marking = marking;
    return marking.done;
  }

  private async markNow(ids: string[]): Promise<void> {
    try {
      await this.store.markDispatched(ids, this.clock());
    } catch (error) {
      this.logger.warn({ err: error, tokens: ids.length }, 'could not mark tokens dispatched');
    }
  }
}
