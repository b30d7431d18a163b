import { isTokenId } from './ids.js';
import { fanOut } from './observer.js';
import {
  DEFAULT_RETRY,
  type ProcessOutcome,
  type ProcessRequest,
  processSignal,
  withTransientRetry,
} from './processor.js';
import type { TokenStore } from './store.js';
import type { TokenRecord } from './token.js';

/** What differs between the signals of one batch; the rest of the request is shared. */
export type BatchSignal<P, R> = Pick<ProcessRequest<P, R>, 'tokenId' | 'payload' | 'span' | 'maybeCommitted'>;

/** What the batch shares: the endpoint, its handler, the store and the policies. */
export type BatchRequest<P, R, Tx> = Omit<
  ProcessRequest<P, R, Tx>,
  'tokenId' | 'payload' | 'span' | 'maybeCommitted' | 'checked'
>;

/** One signal's verdict, as `processSignal` would have resolved or thrown it alone. */
export type Settled<R> = { ok: true; outcome: ProcessOutcome<R> } | { ok: false; error: unknown };

/**
 * The signals that arrived together for one endpoint (an AMQP prefetch window), through the protocol of
 * `processSignal`:
 * - one read checks all their tokens (`store.getTokens`), instead of one read each;
 * - then each signal runs on its own: its handler, its commit, its re-runs after a version conflict. The commits
 *   of a batch reach the store in the same turn of the event loop, where a grouping store (SQLite's write batch)
 *   commits them as one transaction, each in its own savepoint.
 *
 * A signal's failure is its own: it settles as an error (what `processSignal` would have thrown, the token
 * untouched) while its neighbours commit. Two copies of one token in a batch both pass the check; the store lets
 * one consume it and the other is then reported as a duplicate, as two concurrent copies always are.
 */
export async function processBatch<P, R, Tx>(
  request: BatchRequest<P, R, Tx>,
  signals: ReadonlyArray<BatchSignal<P, R>>,
): Promise<Array<Settled<R>>> {
  const checked = await checkTogether(request, signals);
  return Promise.all(
    signals.map((signal, i) => {
      const read = checked[i];
      if (read instanceof Failed) return { ok: false, error: read.error } satisfies Settled<R>;
      const one: ProcessRequest<P, R, Tx> = { ...request, ...signal };
      if (read) one.checked = read;
      return processSignal(one).then(
        (outcome): Settled<R> => ({ ok: true, outcome }),
        (error: unknown): Settled<R> => ({ ok: false, error }),
      );
    }),
  );
}

/** The batch read failed (after its retries): every signal it was for fails with it. */
class Failed {
  constructor(readonly error: unknown) {}
}

/**
 * The duplicate check's read for the whole batch, by position: the token as read, a failure, or undefined where
 * the signal reads for itself (a malformed id, which `processSignal` refuses; a store without batch reads or
 * one that consumes before the handler runs; a batch of one).
 */
async function checkTogether<P, R, Tx>(
  request: BatchRequest<P, R, Tx>,
  signals: ReadonlyArray<BatchSignal<P, R>>,
): Promise<Array<{ token: TokenRecord | undefined } | Failed | undefined>> {
  const { store } = request;
  const readable = (id: string | undefined): id is string => id !== undefined && isTokenId(id);
  const ids = [...new Set(signals.map((signal) => signal.tokenId).filter(readable))];
  if (!store.getTokens || store.ownData?.mode === 'interactive' || signals.length < 2 || ids.length === 0) {
    return signals.map(() => undefined);
  }
  let tokens: Map<string, TokenRecord>;
  try {
    tokens = await readTokens(store, ids, request);
  } catch (error) {
    const failed = new Failed(error);
    return signals.map((signal) => (readable(signal.tokenId) ? failed : undefined));
  }
  return signals.map((signal) =>
    readable(signal.tokenId) ? { token: tokens.get(signal.tokenId) } : undefined,
  );
}

function readTokens<P, R, Tx>(
  store: TokenStore<Tx>,
  ids: string[],
  request: BatchRequest<P, R, Tx>,
): Promise<Map<string, TokenRecord>> {
  const getTokens = store.getTokens as NonNullable<TokenStore<Tx>['getTokens']>;
  const policy = (request.retry ?? DEFAULT_RETRY).transient;
  // Counted as processSignal counts the retries of its own read.
  const observe = request.observer ? fanOut([request.observer]) : undefined;
  const onRetry = (reason: 'version-conflict' | 'transient', attempt: number) => {
    observe?.commitRetried(request.endpoint, reason);
    request.onRetry?.(reason, attempt);
  };
  return withTransientRetry(() => getTokens.call(store, ids), policy, onRetry);
}
