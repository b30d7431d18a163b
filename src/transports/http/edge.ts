import type { JsonValue } from '../../core/fingerprint.js';
import { pendingToken } from '../../core/mint.js';
import { fanOut, type Logger, type Observer, silentLogger } from '../../core/observer.js';
import type { TokenStore } from '../../core/store.js';
import type { TokenRecord } from '../../core/token.js';
import { dispatching } from '../../core/tracing.js';
import { type Delivery, HttpSignalSender } from './client.js';

export interface HttpDestination {
  method: string;
  url: string;
}

export interface EdgeSendOptions {
  /** Join an existing conversation; default a new one. */
  conversationId?: string;
  /** Forwarded with the request (e.g. W3C `traceparent`); kept on the token for re-sends by the relay. */
  headers?: Record<string, string>;
}

export interface HttpEdgeClientOptions {
  store: TokenStore;
  /** Recorded as the tokens' `mintedBy`. Default "http-edge". */
  mintedBy?: string;
  sender?: HttpSignalSender;
  observers?: readonly Observer[];
  logger?: Logger;
  clock?: () => number;
}

/**
 * The sending side at the edge of a system, where no incoming signal is being handled: every `send` mints a
 * root token (durably, first) and then sends the request. If the process dies in between, or the peer stays
 * unreachable, the token stays `pending` and an HTTP relay sends it later.
 */
export class HttpEdgeClient {
  private readonly store: TokenStore;
  private readonly mintedBy: string;
  private readonly logger: Logger;
  private readonly observe: Required<Observer>;
  private readonly clock: () => number;
  readonly sender: HttpSignalSender;

  constructor(options: HttpEdgeClientOptions) {
    this.store = options.store;
    this.mintedBy = options.mintedBy ?? 'http-edge';
    this.sender = options.sender ?? new HttpSignalSender();
    this.logger = options.logger ?? silentLogger;
    this.observe = fanOut(options.observers ?? []);
    this.clock = options.clock ?? Date.now;
  }

  /** Mints the request's pending token without sending it (to hand the id to another client, or send later). */
  async mint(
    destination: HttpDestination,
    payload: JsonValue,
    options: EdgeSendOptions = {},
  ): Promise<TokenRecord> {
    const token = pendingToken(
      {
        destination: { medium: 'http', method: destination.method, url: destination.url },
        payload,
        ...(options.headers ? { headers: options.headers } : {}),
      },
      {
        mintedBy: this.mintedBy,
        now: this.clock(),
        ...(options.conversationId ? { conversationId: options.conversationId } : {}),
      },
    );
    await this.store.mint([token]);
    this.observe.minted([token], this.mintedBy);
    return token;
  }

  /** Sends a minted token's request and marks it dispatched. Rejects with HttpDispatchError. */
  async deliver(token: TokenRecord): Promise<Delivery> {
    let delivery: Delivery;
    try {
      delivery = await dispatching(token, 'edge', (traced) => this.sender.deliver(traced));
    } catch (error) {
      this.observe.dispatchFailed(token, error);
      throw error;
    }
    this.observe.dispatched(token, 'edge');
    try {
      await this.store.markDispatched([token.id], this.clock());
    } catch (error) {
      // Delivered all the same; an unmarked token only means the relay may send a copy the peer drops.
      this.logger.warn({ err: error, token: token.id }, 'could not mark token dispatched');
    }
    return delivery;
  }

  /** Mint, then send. The answer is the peer's processed answer or its replay. */
  async send(
    destination: HttpDestination,
    payload: JsonValue,
    options: EdgeSendOptions = {},
  ): Promise<Delivery> {
    const token = await this.mint(destination, payload, options);
    return this.deliver(token);
  }

  close(): void {
    this.sender.close();
  }
}
