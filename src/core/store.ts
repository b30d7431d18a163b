import type { JsonValue } from './fingerprint.js';
import type { StoredResponse, TokenRecord, TokenStatus } from './token.js';

/** A state item owned by endpoints, read with its version for optimistic concurrency. */
export interface StateItem {
  key: string;
  value: JsonValue;
  version: number;
}

/**
 * A staged state change.
 * - `expectedVersion` set: the write only succeeds if the item is still at that version (0 = must not exist).
 * - `expectedVersion` absent: a blind write; it bumps the version whatever it was.
 * - `value` undefined: delete.
 */
export interface StateWrite {
  key: string;
  value?: JsonValue;
  expectedVersion?: number;
}

export interface ConsumeRequest {
  tokenId: string;
  /** Fingerprint of the payload the receiver got; checked against the token's, if the token has one. */
  fingerprint: string;
  consumedBy: string;
  /** Unique per handler run; kept on the tombstone (see TokenRecord.commitId). */
  commitId?: string;
  /** HTTP answer to keep for replay. */
  response?: StoredResponse;
}

/**
 * A staged revoke (`ctx.cancel`): the token moves to `revoked` only if it is still in the status the handler
 * read. Otherwise the store answers `{ kind: 'version-conflict', key: 'token:<id>' }` and the handler re-runs
 * on fresh data, so a cancel racing a relay's claim or a receiver's consume has exactly one winner.
 */
export interface RevokeRequest {
  tokenId: string;
  expectedStatus: TokenStatus;
}

/** The conflict key a failed revoke condition reports. */
export function revokeConflictKey(tokenId: string): string {
  return `token:${tokenId}`;
}

/** Everything one handler run changes, committed as one store transaction. */
export interface CommitRequest {
  consume: ConsumeRequest;
  writes: StateWrite[];
  mints: TokenRecord[];
  /** Tokens the handler cancelled, each conditioned on the status it read. */
  revokes?: RevokeRequest[];
  /** What the handler staged on the application's own tables (staged stores only), in the order staged. */
  own?: readonly StagedAction[];
  now: number;
}

/**
 * One change to the application's own data, staged by a handler on a staged store's handle. Opaque to the core,
 * which only counts it toward the commit limits; the store that made it applies it in the commit.
 */
export interface StagedAction {
  /** Bytes the action adds to the transaction, as the store measures it. */
  readonly bytes: number;
}

/**
 * Why a commit did not happen, read from the store's structured answer (never from error text).
 * Nothing was written in any of these cases.
 */
export type CommitFailure =
  | { kind: 'token-missing' }
  | { kind: 'token-not-live'; status: TokenStatus; expired: boolean }
  | { kind: 'fingerprint-mismatch' }
  | { kind: 'version-conflict'; key: string }
  /**
   * A condition the handler put on its own data failed (e.g. a DynamoDB ConditionExpression). `retry`: the
   * handler asked for a re-run on fresh state instead of an error.
   */
  | { kind: 'own-condition-failed'; item: string; retry: boolean }
  | { kind: 'mint-collision'; tokenId: string }
  | { kind: 'transient'; cause: unknown }
  | { kind: 'permanent'; cause: unknown };

export type CommitResult = { ok: true } | { ok: false; failure: CommitFailure };

export interface Page<T> {
  items: T[];
  /** Opaque; pass back to get the next page. Absent on the last page. */
  cursor?: string;
}

export interface ListOptions {
  limit?: number;
  cursor?: string;
  /** Only tokens minted strictly before this instant (ms since epoch). */
  mintedBefore?: number;
  /**
   * `scheduled` listings only (ignored for other statuses): only tokens due strictly before this instant. A
   * `scheduled` listing is ordered by due time (earliest first), every other by minting time.
   */
  dueBefore?: number;
}

export interface InFlightStats {
  /** Tokens in flight, scheduled ones included. */
  count: number;
  /**
   * mintedAt of the oldest in-flight token that is not waiting for its due time, if any: a timeout due next month
   * is not a stuck signal, so scheduled tokens do not age this figure (nor the gauge and alerts built on it).
   */
  oldestMintedAt?: number;
}

/** Result of an attempt to mint a token with a caller-chosen id. */
export type IssueResult = { created: true; token: TokenRecord } | { created: false; existing: TokenRecord };

export interface ClaimOptions {
  /** Only tokens minted at or before this instant. */
  mintedBefore: number;
  now: number;
  leaseMs: number;
  limit: number;
  medium?: 'amqp' | 'http';
}

export interface TokenClaimOptions {
  now: number;
  /** The token's lease: relay passes leave it alone until `now + leaseMs`. */
  leaseMs: number;
  /** Only a token for this medium (a relay without a sender for the other leaves it to relays that have one). */
  medium?: 'amqp' | 'http';
}

export interface DueClaimOptions {
  /** Tokens due at or before this instant are claimed. */
  now: number;
  /** The claimed token's lease: the pending relay leaves it alone until `now + leaseMs`. */
  leaseMs: number;
  limit: number;
  /** Only tokens for this medium (a relay without a sender for the other leaves those to relays that have one). */
  medium?: 'amqp' | 'http';
}

/**
 * How a handler reaches the application's own tables inside the hop's transaction. The core picks its path by
 * this capability, never by the store's kind.
 * - `staged` (SQLite, DynamoDB): the handler reads now and stages writes on a handle; the store applies them in
 *   the one commit, after the consume.
 * - `interactive` (PostgreSQL): the store opens the transaction before the handler runs, consumes the token
 *   first, and gives the handler the open transaction itself.
 */
export type OwnData<Tx> = StagedOwnData<Tx> | InteractiveOwnData<Tx>;

export interface StagedOwnData<Tx> {
  readonly mode: 'staged';
  /** A fresh handle for one handler run; `staged()` returns what the run staged, in order. */
  open(): { handle: Tx; staged(): readonly StagedAction[] };
}

export interface InteractiveOwnData<Tx> {
  readonly mode: 'interactive';
  /**
   * One hop as one transaction: the conditional consume first (a concurrent copy waits on the token's row lock,
   * then finds it consumed), then `body` with the open transaction, then what `body` returns (state writes,
   * mints, the stored answer), then commit. Expected refusals resolve as a CommitFailure with nothing written;
   * an error thrown by `body` rolls everything back and is rethrown as it was.
   */
  transact<T>(
    consume: ConsumeRequest,
    now: number,
    body: (open: OpenTransaction<Tx>) => Promise<HopWrites<T>>,
  ): Promise<{ ok: true; value: T } | { ok: false; failure: CommitFailure }>;
}

/** The transaction a hop runs in, as an interactive store lends it to the handler. */
export interface OpenTransaction<Tx> {
  /** The incoming token as it was before this transaction consumed it (read by the consume itself). */
  readonly token: TokenRecord;
  /** The application's handle on the open transaction (its own SQL). */
  readonly handle: Tx;
  /** Reads a key-value state item inside the transaction. */
  readState(key: string): Promise<StateItem | undefined>;
}

/** What the handler's run adds to an interactive hop before it commits. */
export interface HopWrites<T> {
  value: T;
  writes: StateWrite[];
  mints: TokenRecord[];
  /** Tokens the handler cancelled (as CommitRequest.revokes). */
  revokes?: RevokeRequest[];
  /** HTTP: the answer kept on the consumed token for replay. */
  response?: StoredResponse;
}

/**
 * The transactional key-value store that holds tokens and endpoint state.
 * Adapters (SQLite, DynamoDB, PostgreSQL) implement this; the protocol core speaks only to it.
 * `Tx` is the handle a handler gets on the application's own tables (`ctx.tx`).
 */
export interface TokenStore<Tx = unknown> {
  readonly kind: string;
  /** Access to the application's own tables in the hop's transaction; absent if the store offers none. */
  readonly ownData?: OwnData<Tx>;
  /** Strongly consistent read. */
  getToken(id: string): Promise<TokenRecord | undefined>;
  /**
   * Strongly consistent read of several tokens at once (a batch's duplicate check), by id; an id the store does
   * not hold is absent from the map. Optional: without it the core reads the tokens one by one.
   */
  getTokens?(ids: readonly string[]): Promise<Map<string, TokenRecord>>;
  readState(key: string): Promise<StateItem | undefined>;
  /** Puts new tokens (edge minting), all or none; fails with TokenExistsError if any id is taken. */
  mint(tokens: TokenRecord[]): Promise<void>;
  /** Puts one token unless the id exists; returns the existing record instead (idempotent issuing). */
  issue(token: TokenRecord): Promise<IssueResult>;
  /** The one transaction of a hop. Resolves with a structured failure instead of throwing for expected outcomes. */
  commit(request: CommitRequest): Promise<CommitResult>;
  /** pending → dispatched for each id still pending; returns how many moved. */
  markDispatched(ids: string[], now: number): Promise<number>;
  /** scheduled|issued|pending|dispatched → revoked. Throws InvalidTransitionError / UnknownTokenError otherwise. */
  revoke(id: string, now: number): Promise<TokenRecord>;
  /** issued tokens past their expiresAt → expired; returns how many moved. */
  expireIssued(now: number, limit?: number): Promise<number>;
  /** Leases pending tokens for re-dispatch (attempts + 1). A token leased by one caller is skipped by others. */
  claimPending(options: ClaimOptions): Promise<TokenRecord[]>;
  /**
   * Moves `scheduled` tokens due at or before `now` to `pending`, earliest `dueAt` first (then id), with
   * `leaseUntil = now + leaseMs` and `attempts + 1`, and returns them as they now are. Atomic per token: two
   * callers racing never get the same token. A claimed token whose sender dies is re-sent by the pending relay
   * after its lease.
   */
  claimDue(options: DueClaimOptions): Promise<TokenRecord[]>;
  /**
   * Leases one pending token to be sent now, whatever its age (an operator's redispatch), with
   * `leaseUntil = now + leaseMs` and `attempts + 1`, and returns it as it now is; undefined if it is unknown, not
   * pending or for another medium. Takes the lease even from a relay that holds it: the operator asks for a send
   * now, and a send that failed keeps its lease until it runs out (a copy of a send in progress is dropped by the
   * receiver).
   */
  claimToken(id: string, options: TokenClaimOptions): Promise<TokenRecord | undefined>;
  /** Makes a pending token due for the relay now (clears its lease): a redispatch that this process cannot send. */
  releaseLease(id: string): Promise<void>;
  listByStatus(status: TokenStatus, options?: ListOptions): Promise<Page<TokenRecord>>;
  listConversation(conversationId: string, options?: ListOptions): Promise<Page<TokenRecord>>;
  inFlightStats(): Promise<InFlightStats>;
  /**
   * How many tokens the store holds in each status, every status present (0 when none). Ended tokens count until
   * they are purged. Reads every token's status (an index scan), so it serves dashboards, not the hot path.
   */
  statusCounts(): Promise<Record<TokenStatus, number>>;
  /** Deletes ended tokens (consumed, expired, revoked) whose retention has passed. */
  purge(now: number, limit?: number): Promise<number>;
  /** Cheap reachability check for health probes. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
