import type { Context, Span } from '@opentelemetry/api';
import { crashPoint } from './crash.js';
import {
  type FingerprintMismatchError,
  HandlerFailedError,
  OwnConditionFailedError,
  StoreFailureError,
  StoreUnavailableError,
  type TokenConsumedError,
  type TokenExpiredError,
  type TokenRevokedError,
  TollgateError,
  type UnknownTokenError,
  VersionConflictError,
} from './errors.js';
import { fingerprint as fingerprintOf } from './fingerprint.js';
import { newTokenId } from './ids.js';
import { checkCommitSize } from './limits.js';
import { dropReason, fanOut, type Observer } from './observer.js';
import { type BackoffPolicy, backoffDelay, sleep } from './retry.js';
import { checkHorizon, DEFAULT_SCHEDULE_HORIZON_MS } from './scheduling.js';
import { requireTokenId, screen } from './screen.js';
import type {
  CommitFailure,
  CommitRequest,
  CommitResult,
  ConsumeRequest,
  HopWrites,
  InteractiveOwnData,
  RevokeRequest,
  StagedAction,
  StateWrite,
  TokenStore,
} from './store.js';
import type { StoredResponse, TokenRecord } from './token.js';
import { hopTrace, stampEmitted, traceCommit, traceHandler, withOutcome } from './tracing.js';
import { type HandlerContext, type SchedulingAccess, UnitOfWork } from './unit-of-work.js';

/** `Tx` is the store's handle on the application's own tables, as `ctx.tx`. */
export type Handler<P, R, Tx = unknown> = (ctx: HandlerContext<P, Tx>) => Promise<R> | R;

export interface RetryPolicy {
  /** Re-runs of the handler on fresh state after a version conflict. */
  versionConflict: BackoffPolicy;
  /** Retries of a commit the store could not take (unavailable, throttled, transaction conflict). */
  transient: BackoffPolicy;
}

export const DEFAULT_RETRY: RetryPolicy = {
  versionConflict: { attempts: 8, baseDelayMs: 5, maxDelayMs: 200 },
  transient: { attempts: 6, baseDelayMs: 25, maxDelayMs: 2_000 },
};

export interface ProcessRequest<P, R, Tx = unknown> {
  store: TokenStore<Tx>;
  /** Name of the receiving endpoint, recorded as `consumedBy` and as `mintedBy` of emitted tokens. */
  endpoint: string;
  tokenId: string | undefined;
  payload: P;
  handler: Handler<P, R, Tx>;
  /** HTTP: the answer to store on the consumed token for replay. */
  respond?: (result: R) => StoredResponse | undefined;
  retry?: RetryPolicy;
  clock?: () => number;
  /** How far ahead `ctx.schedule` may set a due time (ms). Default 366 days (DEFAULT_SCHEDULE_HORIZON_MS). */
  scheduleHorizonMs?: number;
  /** Called on each retry, for metrics and logs. */
  onRetry?: (reason: 'version-conflict' | 'transient', attempt: number) => void;
  /** Told of every outcome (processed, dropped, rejected, retries). */
  observer?: Observer;
  /**
   * Runs whose commit may have landed although the store's answer did not, by commit id. A caller that runs the
   * same delivery again after a throw (the AMQP consumer holding it through an outage) passes the same map each
   * time, so a commit of an earlier call is recognised as this delivery's own and not taken for a duplicate.
   */
  maybeCommitted?: Map<string, Processed<R>>;
  /**
   * The duplicate check's read, made by the caller for a whole batch (`processBatch`): the token as the store
   * held it, undefined if absent. The processor then reads it only again to classify a refused commit.
   */
  checked?: { token: TokenRecord | undefined };
  /**
   * The transport's receive span (see `receiving`): the handler and commit spans are its children, the outcome is
   * recorded on it, and emitted signals carry its context. Without one, the caller's active span serves.
   */
  span?: Span;
}

/** The signal changed state: its token is consumed and the emitted tokens are minted (still to be dispatched). */
export interface Processed<R> {
  kind: 'processed';
  result: R;
  /** The incoming token as it was before the commit consumed it. */
  token: TokenRecord;
  emitted: TokenRecord[];
  response?: StoredResponse;
  attempts: number;
}

/** No token, no effect: the signal is dropped. `token` is the record when it still exists (e.g. for replay). */
export interface Dropped {
  kind: 'dropped';
  error: UnknownTokenError | TokenConsumedError | TokenRevokedError | TokenExpiredError;
  token?: TokenRecord;
}

/** The token exists but is bound to another payload: the signal is refused and must be looked at. */
export interface Rejected {
  kind: 'rejected';
  error: FingerprintMismatchError;
  token: TokenRecord;
}

export type ProcessOutcome<R> = Processed<R> | Dropped | Rejected;

// Transports parse the token header with it before they process.
export { requireTokenId };

/**
 * The receiving steps of the protocol, free of any transport:
 * cheap duplicate check → handler on a unit of work → one commit → classification of a failed commit.
 *
 * Throws (the token is then untouched, so the signal may safely come again):
 * InvalidTokenError, HandlerFailedError, VersionConflictError, StoreUnavailableError, StoreFailureError,
 * and argument errors (InvalidPayloadError, LimitExceededError).
 */
export function processSignal<P, R, Tx = unknown>(
  request: ProcessRequest<P, R, Tx>,
): Promise<ProcessOutcome<R>> {
  const running = observed(request);
  // Not async: untraced, no extra promise is chained per signal.
  return request.span?.isRecording() ? withOutcome(request.span, running) : running;
}

async function observed<P, R, Tx>(request: ProcessRequest<P, R, Tx>): Promise<ProcessOutcome<R>> {
  const observer = request.observer;
  if (!observer) return runProtocol(request);
  const started = performance.now();
  const observe = guarded(observer);
  // The request is passed on as it is, not spread into a copy with another onRetry: a second object shape for
  // the same request made every property read in the protocol polymorphic (some 15 µs of CPU an HTTP hop).
  const outcome = await runProtocol(request, (reason, attempt) => {
    observe.commitRetried(request.endpoint, reason);
    request.onRetry?.(reason, attempt);
  });
  switch (outcome.kind) {
    case 'processed':
      observe.processed(request.endpoint, outcome.token, performance.now() - started, outcome.attempts);
      if (outcome.emitted.length > 0) observe.minted(outcome.emitted, request.endpoint);
      break;
    case 'dropped':
      observe.dropped(
        request.endpoint,
        outcome.error.details.tokenId as string,
        dropReason(outcome.error.code),
      );
      break;
    case 'rejected':
      observe.rejected(request.endpoint, outcome.token.id, 'fingerprint-mismatch');
      break;
  }
  return outcome;
}

/** Each observer wrapped once (its errors swallowed), not once per signal: a hop costs no nine new closures. */
const guardedObservers = new WeakMap<Observer, Required<Observer>>();
function guarded(observer: Observer): Required<Observer> {
  let wrapped = guardedObservers.get(observer);
  if (!wrapped) {
    wrapped = fanOut([observer]);
    guardedObservers.set(observer, wrapped);
  }
  return wrapped;
}

async function runProtocol<P, R, Tx>(
  request: ProcessRequest<P, R, Tx>,
  onRetry: ProcessRequest<P, R, Tx>['onRetry'] = request.onRetry,
): Promise<ProcessOutcome<R>> {
  const { store } = request;
  const clock = request.clock ?? Date.now;
  const retry = request.retry ?? DEFAULT_RETRY;
  const tokenId = requireTokenId(request.tokenId);
  const payloadFingerprint = fingerprintOf(request.payload);
  const trace = hopTrace(request.span);
  const horizonMs = checkHorizon(request.scheduleHorizonMs ?? DEFAULT_SCHEDULE_HORIZON_MS);
  const scheduling: SchedulingAccess = { getToken: (id) => store.getToken(id), horizonMs };

  const read = () => withTransientRetry(() => store.getToken(tokenId), retry.transient, onRetry);
  // Runs whose commit may have landed although the store's answer did not, by commit id: if the token turns
  // out consumed by one of them, that run is the one that happened.
  const maybeCommitted = request.maybeCommitted ?? new Map<string, Processed<R>>();
  // The cheap check keeps duplicates from running the handler. An interactive store consumes before the handler
  // runs and hands it the token it consumed, so there the check would only read the same row twice.
  const interactive = store.ownData?.mode === 'interactive';
  let token = interactive ? undefined : request.checked ? request.checked.token : await read();
  if (!interactive) {
    const earlier =
      token?.status === 'consumed' && token.commitId ? maybeCommitted.get(token.commitId) : undefined;
    if (earlier) return earlier;
    const early = screen(tokenId, token, payloadFingerprint, clock());
    if (early) return early;
  }
  let conflicts = 0;
  let lastConflictKey = '';
  for (let attempt = 1; ; attempt++) {
    const hop: Hop<P, R, Tx> = {
      request,
      token,
      tokenId,
      fingerprint: payloadFingerprint,
      attempt,
      commitId: newTokenId(),
      now: clock(),
      retry,
      onRetry,
      trace,
      scheduling,
    };
    const own = store.ownData;
    const { outcome, processed } =
      own?.mode === 'interactive' ? await interactiveAttempt(hop, own) : await stagedAttempt(hop);
    if (outcome.ok) {
      crashPoint('after-commit');
      return processed as Processed<R>;
    }

    const failure: CommitFailure = outcome.failure;
    if (failure.kind === 'transient' && processed) maybeCommitted.set(hop.commitId, processed);
    switch (failure.kind) {
      case 'token-missing':
      case 'token-not-live': {
        // A concurrent copy won (or the token ended meanwhile): re-read to report precisely.
        token = await read();
        // ...unless it was one of our own commits, whose answer from the store was lost.
        const consumedBy = token?.status === 'consumed' ? token.commitId : undefined;
        const ours =
          consumedBy === undefined
            ? undefined
            : consumedBy === hop.commitId
              ? processed
              : maybeCommitted.get(consumedBy);
        if (ours) {
          crashPoint('after-commit');
          return ours;
        }
        const late = screen(tokenId, token, payloadFingerprint, clock());
        if (late) return late;
        throw new StoreFailureError(`store refused to consume live token ${tokenId}`, {
          tokenId,
          failure: failure.kind,
        });
      }
      case 'fingerprint-mismatch': {
        token ??= await read();
        const rejected = screen(tokenId, token, payloadFingerprint, clock());
        if (rejected) return rejected;
        throw new StoreFailureError(`store refused token ${tokenId} for a payload it matches`, { tokenId });
      }
      case 'version-conflict':
      case 'own-condition-failed': {
        const key = failure.kind === 'version-conflict' ? failure.key : failure.item;
        if (failure.kind === 'own-condition-failed' && !failure.retry)
          throw new OwnConditionFailedError(failure.item, attempt);
        conflicts += 1;
        lastConflictKey = key;
        if (conflicts >= retry.versionConflict.attempts) {
          if (failure.kind === 'own-condition-failed') throw new OwnConditionFailedError(key, attempt);
          throw new VersionConflictError(lastConflictKey, attempt);
        }
        onRetry?.('version-conflict', attempt);
        await sleep(backoffDelay(retry.versionConflict, conflicts));
        continue;
      }
      case 'transient':
        if (store.ownData?.mode === 'interactive' && attempt < retry.transient.attempts) {
          // The whole transaction rolled back (or its fate is unknown): run the hop again, handler included.
          onRetry?.('transient', attempt);
          await sleep(backoffDelay(retry.transient, attempt));
          continue;
        }
        // commitWithRetry only returns transient failures once its budget is spent.
        throw new StoreUnavailableError(
          `store unavailable after ${retry.transient.attempts} attempts`,
          { tokenId },
          { cause: failure.cause },
        );
      case 'mint-collision':
        throw new StoreFailureError(`emitted token id ${failure.tokenId} already exists`, {
          tokenId: failure.tokenId,
        });
      case 'permanent':
        throw new StoreFailureError(
          `store refused the commit for token ${tokenId}`,
          { tokenId },
          { cause: failure.cause },
        );
    }
  }
}

/** One run of the handler and its commit, as both paths see it. */
interface Hop<P, R, Tx> {
  request: ProcessRequest<P, R, Tx>;
  /** The token as the cheap check read it; undefined on an interactive store, which reads it as it consumes. */
  token: TokenRecord | undefined;
  tokenId: string;
  fingerprint: string;
  attempt: number;
  /** Unique to this run; kept on the tombstone. */
  commitId: string;
  now: number;
  retry: RetryPolicy;
  onRetry: ProcessRequest<P, R, Tx>['onRetry'];
  /** The traced hop's context, undefined when nobody records. */
  trace: Context | undefined;
  /** For ctx.schedule and ctx.cancel. */
  scheduling: SchedulingAccess;
}

interface AttemptResult<R> {
  outcome: CommitResult;
  /** What the run produced, once the handler has returned. */
  processed?: Processed<R>;
}

/**
 * Staged stores (SQLite, DynamoDB): the handler runs first, reading from the store and staging its writes;
 * then one commit carries the consume, the writes, the handler's own staged actions and the mints.
 */
async function stagedAttempt<P, R, Tx>(hop: Hop<P, R, Tx>): Promise<AttemptResult<R>> {
  const { request, tokenId, attempt, now } = hop;
  const token = hop.token as TokenRecord;
  const session = request.store.ownData?.mode === 'staged' ? request.store.ownData.open() : undefined;
  const work = new UnitOfWork<P, Tx>(
    request.store,
    token,
    request.payload,
    attempt,
    request.endpoint,
    now,
    session?.handle,
    hop.scheduling,
  );
  const result = await traceHandler(hop, token.conversationId, () =>
    runHandler(request.handler, work, tokenId),
  );
  stampEmitted(work.stagedTokens, hop.trace);
  const response = request.respond?.(result);
  const own = session?.staged() ?? [];
  const revokes = work.stagedRevokes;
  checkCommitSize(commitItemSizes(work.stagedWrites, work.stagedTokens, response, own, revokes));
  const processed = processedOf(token, result, work.stagedTokens, response, attempt);
  crashPoint('before-commit');
  const commit: CommitRequest = {
    consume: consumeOf(hop, response),
    writes: work.stagedWrites,
    mints: work.stagedTokens,
    now,
  };
  if (own.length > 0) commit.own = own;
  if (revokes.length > 0) commit.revokes = revokes;
  const outcome = await traceCommit(hop, token.conversationId, () =>
    commitWithRetry(request.store, commit, hop.retry.transient, (n) => hop.onRetry?.('transient', n)),
  );
  return { outcome, processed };
}

/**
 * Interactive stores (PostgreSQL): the store opens the transaction and consumes the token first, the handler
 * runs inside it with the open transaction, and what it staged is written before the commit.
 */
async function interactiveAttempt<P, R, Tx>(
  hop: Hop<P, R, Tx>,
  own: InteractiveOwnData<Tx>,
): Promise<AttemptResult<R>> {
  const { request, tokenId, attempt, now } = hop;
  let processed: Processed<R> | undefined;
  try {
    // The handler runs inside the store's transaction here, so its span is a child of the commit span.
    const transact = (inside: Context | undefined) =>
      own.transact(consumeOf(hop, undefined), now, async (open) => {
        const token = open.token;
        const work = new UnitOfWork<P, Tx>(
          open,
          token,
          request.payload,
          attempt,
          request.endpoint,
          now,
          open.handle,
          hop.scheduling,
        );
        // Unwrapped, so the store sees its own driver's errors (a deadlock in the handler's SQL is a re-run).
        const result = await traceHandler(
          hop,
          token.conversationId,
          async () => request.handler(work),
          inside,
        );
        stampEmitted(work.stagedTokens, hop.trace);
        const response = request.respond?.(result);
        const revokes = work.stagedRevokes;
        checkCommitSize(commitItemSizes(work.stagedWrites, work.stagedTokens, response, [], revokes));
        processed = processedOf(token, result, work.stagedTokens, response, attempt);
        crashPoint('before-commit');
        const writes: HopWrites<R> = { value: result, writes: work.stagedWrites, mints: work.stagedTokens };
        if (response) writes.response = response;
        if (revokes.length > 0) writes.revokes = revokes;
        return writes;
      });
    const outcome = await traceCommit(hop, undefined, transact);
    return processed ? { outcome, processed } : { outcome };
  } catch (error) {
    // The store could not even open the transaction: the same as a transient commit failure.
    if (error instanceof StoreUnavailableError) {
      return { outcome: { ok: false, failure: { kind: 'transient', cause: error } } };
    }
    if (error instanceof TollgateError) throw error;
    throw new HandlerFailedError(tokenId, error);
  }
}

async function runHandler<P, R, Tx>(
  handler: Handler<P, R, Tx>,
  work: UnitOfWork<P, Tx>,
  tokenId: string,
): Promise<R> {
  try {
    return await handler(work);
  } catch (cause) {
    if (cause instanceof TollgateError) throw cause;
    throw new HandlerFailedError(tokenId, cause);
  }
}

function consumeOf<P, R, Tx>(hop: Hop<P, R, Tx>, response: StoredResponse | undefined): ConsumeRequest {
  const consume: ConsumeRequest = {
    tokenId: hop.tokenId,
    fingerprint: hop.fingerprint,
    consumedBy: hop.request.endpoint,
    commitId: hop.commitId,
  };
  if (response) consume.response = response;
  return consume;
}

function processedOf<R>(
  token: TokenRecord,
  result: R,
  emitted: TokenRecord[],
  response: StoredResponse | undefined,
  attempts: number,
): Processed<R> {
  const done: Processed<R> = { kind: 'processed', result, token, emitted, attempts };
  if (response) done.response = response;
  return done;
}

/**
 * Sends the same commit again while the store answers "transient" (unreachable, throttled, conflicting).
 * The same request, not a re-run of the handler: if an earlier try did commit and only its answer was lost,
 * the retry fails on the consumed token and the caller recognises its own commit id.
 */
async function commitWithRetry(
  store: TokenStore,
  commit: CommitRequest,
  policy: BackoffPolicy,
  onRetry: (attempt: number) => void,
): Promise<CommitResult> {
  for (let attempt = 1; ; attempt++) {
    const outcome = await store.commit(commit);
    if (outcome.ok || outcome.failure.kind !== 'transient' || attempt >= policy.attempts) return outcome;
    onRetry(attempt);
    await sleep(backoffDelay(policy, attempt));
  }
}

/** Reads are retried like commits: a blip in the store must not turn into a lost or dead-lettered signal. */
export async function withTransientRetry<T>(
  read: () => Promise<T>,
  policy: BackoffPolicy,
  onRetry: ProcessRequest<unknown, unknown, unknown>['onRetry'],
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (cause) {
      const retriable = cause instanceof StoreUnavailableError;
      if (!retriable || attempt >= policy.attempts) throw cause;
      onRetry?.('transient', attempt);
      await sleep(backoffDelay(policy, attempt));
    }
  }
}

function commitItemSizes(
  writes: StateWrite[],
  mints: TokenRecord[],
  response: StoredResponse | undefined,
  own: readonly StagedAction[],
  revokes: readonly RevokeRequest[],
): number[] {
  // One array, filled in place: this runs on every hop.
  const sizes = [512 + (response ? Buffer.byteLength(JSON.stringify(response)) : 0)];
  for (const w of writes)
    sizes.push(Buffer.byteLength(w.key) + Buffer.byteLength(JSON.stringify(w.value ?? null)) + 32);
  for (const token of mints) sizes.push(Buffer.byteLength(JSON.stringify(token)));
  for (const action of own) sizes.push(action.bytes);
  // A revoke rewrites the token's status and drops its payload: a small item each.
  for (const revoke of revokes) sizes.push(64 + Buffer.byteLength(revoke.tokenId));
  return sizes;
}
