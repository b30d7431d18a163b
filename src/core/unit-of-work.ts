import { InvalidArgumentError } from './errors.js';
import type { JsonValue } from './fingerprint.js';
import { isTokenId } from './ids.js';
import { type MintContext, pendingToken, type SignalSpec } from './mint.js';
import {
  CANCELLABLE,
  DEFAULT_SCHEDULE_HORIZON_MS,
  dueAtOf,
  type ScheduleWhen,
  scheduledToken,
} from './scheduling.js';
import type { RevokeRequest, StateItem, StateWrite } from './store.js';
import type { Destination, TokenRecord } from './token.js';

/**
 * What a handler gets: reads go to the store, writes and emitted signals are only staged until the commit.
 * `Tx` is the store's handle on the application's own tables (`tx`).
 */
export interface HandlerContext<P = JsonValue, Tx = unknown> {
  /** The incoming token, as read by the duplicate check. */
  readonly token: TokenRecord;
  readonly payload: P;
  readonly conversationId: string;
  /** 1 on the first run; higher when the handler is re-run on fresh state after a version conflict. */
  readonly attempt: number;
  /** Reads a state value; a later `put` of the same key is then conditional on the version read. */
  get<T extends JsonValue = JsonValue>(key: string): Promise<T | undefined>;
  /** Like get, with the version. */
  getItem(key: string): Promise<StateItem | undefined>;
  /** Stages a write. Conditional on the version read if the key was read in this run, blind otherwise. */
  put(key: string, value: JsonValue): void;
  /** Stages a delete (conditional on the version read, as for put). */
  delete(key: string): void;
  /** Stages an outgoing signal; its `pending` token is minted in the same commit. Returns the new token id. */
  emit(destination: Destination, payload: JsonValue, options?: { headers?: Record<string, string> }): string;
  /**
   * Stages a signal sent when it is due (`at` an instant, or `afterMs` from now; exactly one): its `scheduled`
   * token is minted in the same commit, and a relay sends it once it is due, exactly once. A time in the past is
   * due at once; one beyond the horizon (ProcessRequest.scheduleHorizonMs) throws ScheduleBeyondHorizonError.
   * Returns the token (keep its id to cancel it).
   */
  schedule(
    destination: Destination,
    payload: JsonValue,
    when: ScheduleWhen,
    options?: { headers?: Record<string, string> },
  ): TokenRecord;
  /**
   * Stages the revoke of a token not yet consumed (a scheduled timeout, or a signal still in flight), in the same
   * commit as the state change. True if it was staged; false if the token is consumed, ended or unknown (a no-op).
   * If the token moves on before the commit, the handler runs again on fresh data, so a cancel and the signal's
   * own consumption never both happen.
   */
  cancel(tokenId: string): Promise<boolean>;
  /**
   * The application's own tables, in the hop's transaction: the open PostgreSQL transaction, or the staging
   * handle of SQLite and DynamoDB. What it changes commits with the token's consumption, or not at all.
   */
  readonly tx: Tx;
}

/** Where a unit of work reads key-value state: the store, or the transaction an interactive store lends. */
export interface StateReader {
  readState(key: string): Promise<StateItem | undefined>;
}

/** What `schedule` and `cancel` need beyond the state reader. */
export interface SchedulingAccess {
  /** Reads a token for `cancel` (a strongly consistent read of the store). */
  getToken(id: string): Promise<TokenRecord | undefined>;
  /** How far ahead `schedule` may set a due time. */
  horizonMs: number;
}

/** One run of a handler: the reads it made, the writes and signals it staged. Thrown away on retry. */
export class UnitOfWork<P = JsonValue, Tx = unknown> implements HandlerContext<P, Tx> {
  readonly conversationId: string;
  private readonly versions = new Map<string, number>();
  private readonly writes = new Map<string, StateWrite>();
  private readonly emitted: TokenRecord[] = [];
  private readonly revokes = new Map<string, RevokeRequest>();

  constructor(
    private readonly store: StateReader,
    readonly token: TokenRecord,
    readonly payload: P,
    readonly attempt: number,
    private readonly endpoint: string,
    private readonly now: number,
    private readonly ownTables?: Tx,
    private readonly scheduling?: SchedulingAccess,
  ) {
    this.conversationId = token.conversationId;
  }

  get tx(): Tx {
    if (this.ownTables === undefined) {
      throw new InvalidArgumentError('this store gives handlers no access to their own tables');
    }
    return this.ownTables;
  }

  async getItem(key: string): Promise<StateItem | undefined> {
    checkKey(key);
    const staged = this.writes.get(key);
    if (staged) {
      // Read-your-writes inside one run.
      return staged.value === undefined ? undefined : { key, value: staged.value, version: -1 };
    }
    const item = await this.store.readState(key);
    if (!this.versions.has(key)) this.versions.set(key, item?.version ?? 0);
    return item;
  }

  async get<T extends JsonValue = JsonValue>(key: string): Promise<T | undefined> {
    const item = await this.getItem(key);
    return item?.value as T | undefined;
  }

  put(key: string, value: JsonValue): void {
    checkKey(key);
    if (value === undefined) throw new InvalidArgumentError(`put("${key}") needs a value; use delete()`);
    this.writes.set(key, this.stage(key, value));
  }

  delete(key: string): void {
    checkKey(key);
    this.writes.set(key, this.stage(key, undefined));
  }

  emit(
    destination: Destination,
    payload: JsonValue,
    options: { headers?: Record<string, string> } = {},
  ): string {
    const token = pendingToken(signalOf(destination, payload, options), this.mintContext());
    this.emitted.push(token);
    return token.id;
  }

  schedule(
    destination: Destination,
    payload: JsonValue,
    when: ScheduleWhen,
    options: { headers?: Record<string, string> } = {},
  ): TokenRecord {
    const horizonMs = this.scheduling?.horizonMs ?? DEFAULT_SCHEDULE_HORIZON_MS;
    const dueAt = dueAtOf(when, this.now, horizonMs);
    const token = scheduledToken(signalOf(destination, payload, options), this.mintContext(), dueAt);
    this.emitted.push(token);
    return { ...token };
  }

  async cancel(tokenId: string): Promise<boolean> {
    if (typeof tokenId !== 'string' || !isTokenId(tokenId)) return false;
    if (tokenId === this.token.id) {
      throw new InvalidArgumentError('a handler cannot cancel the token it consumes', { tokenId });
    }
    if (this.revokes.has(tokenId)) return true;
    // Scheduled in this very run: not minted at all.
    const own = this.emitted.findIndex((token) => token.id === tokenId);
    if (own >= 0) {
      this.emitted.splice(own, 1);
      return true;
    }
    if (!this.scheduling) throw new InvalidArgumentError('this handler context cannot read tokens to cancel');
    const token = await this.scheduling.getToken(tokenId);
    if (!token || !CANCELLABLE.includes(token.status)) return false;
    this.revokes.set(tokenId, { tokenId, expectedStatus: token.status });
    return true;
  }

  get stagedWrites(): StateWrite[] {
    return [...this.writes.values()];
  }

  get stagedTokens(): TokenRecord[] {
    return [...this.emitted];
  }

  get stagedRevokes(): RevokeRequest[] {
    return [...this.revokes.values()];
  }

  private mintContext(): MintContext {
    return {
      mintedBy: this.endpoint,
      conversationId: this.conversationId,
      parentId: this.token.id,
      now: this.now,
    };
  }

  private stage(key: string, value: JsonValue | undefined): StateWrite {
    const write: StateWrite = { key };
    if (value !== undefined) write.value = value;
    const version = this.versions.get(key);
    if (version !== undefined) write.expectedVersion = version;
    return write;
  }
}

function signalOf(
  destination: Destination,
  payload: JsonValue,
  options: { headers?: Record<string, string> },
): SignalSpec {
  const signal: SignalSpec = { destination, payload };
  if (options.headers) signal.headers = options.headers;
  return signal;
}

function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1024) {
    throw new InvalidArgumentError('state keys are non-empty strings of at most 1024 characters', { key });
  }
}
