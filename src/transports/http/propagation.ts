import type { JsonValue } from '../../core/fingerprint.js';
import type { ScheduleWhen } from '../../core/scheduling.js';
import type { StateItem } from '../../core/store.js';
import type { Destination, TokenRecord } from '../../core/token.js';
import type { HandlerContext } from '../../core/unit-of-work.js';

/**
 * The handler's unit of work, with the incoming request's trace context added to every signal it emits
 * (unless the handler sets those headers itself), so a trace follows the conversation across systems.
 */
export class PropagatingContext<P = JsonValue, Tx = unknown> implements HandlerContext<P, Tx> {
  constructor(
    private readonly inner: HandlerContext<P, Tx>,
    private readonly inherited: Readonly<Record<string, string>>,
  ) {}

  get token(): TokenRecord {
    return this.inner.token;
  }
  get payload(): P {
    return this.inner.payload;
  }
  get conversationId(): string {
    return this.inner.conversationId;
  }
  get attempt(): number {
    return this.inner.attempt;
  }
  get tx(): Tx {
    return this.inner.tx;
  }
  get<T extends JsonValue = JsonValue>(key: string): Promise<T | undefined> {
    return this.inner.get<T>(key);
  }
  getItem(key: string): Promise<StateItem | undefined> {
    return this.inner.getItem(key);
  }
  put(key: string, value: JsonValue): void {
    this.inner.put(key, value);
  }
  delete(key: string): void {
    this.inner.delete(key);
  }
  emit(
    destination: Destination,
    payload: JsonValue,
    options: { headers?: Record<string, string> } = {},
  ): string {
    const headers = this.headersWith(options);
    return headers
      ? this.inner.emit(destination, payload, { headers })
      : this.inner.emit(destination, payload);
  }
  schedule(
    destination: Destination,
    payload: JsonValue,
    when: ScheduleWhen,
    options: { headers?: Record<string, string> } = {},
  ): TokenRecord {
    const headers = this.headersWith(options);
    return headers
      ? this.inner.schedule(destination, payload, when, { headers })
      : this.inner.schedule(destination, payload, when);
  }
  cancel(tokenId: string): Promise<boolean> {
    return this.inner.cancel(tokenId);
  }
  /** The signal's headers with the inherited trace context under them; undefined when there are none. */
  private headersWith(options: { headers?: Record<string, string> }): Record<string, string> | undefined {
    const headers = { ...this.inherited, ...options.headers };
    return Object.keys(headers).length === 0 ? undefined : headers;
  }
}
