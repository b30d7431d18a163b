import type { Duplex } from 'node:stream';
import type { PoolClient } from 'pg';
import { StoreFailureError } from '../../core/errors.js';
import type { CommitFailure } from '../../core/store.js';
import { commitFailure } from './failures.js';
import { TYPES } from './rows.js';
import type { Statement } from './statements.js';

/*
 * How the store talks over one pooled connection: its own statements, COMMIT and ROLLBACK, and the cut of a
 * statement left unanswered.
 */

interface Rows {
  rows: unknown[][];
  rowCount: number;
}

/**
 * Cuts a client's connection when a statement on it goes unanswered for `timeoutMs`: the pending statement then
 * fails as a lost connection (ETIMEDOUT, "unavailable"), and the client is destroyed instead of pooled.
 * node-postgres's own query_timeout only stops waiting, leaving the statement queued on a dead connection.
 */
export function cutWhenUnanswered(client: PoolClient, timeoutMs: number): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  const socket = (client as unknown as { connection?: { stream?: { destroy(error?: Error): void } } })
    .connection?.stream;
  if (!socket) return;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const pending = query(...args);
    if (!(pending instanceof Promise)) return pending;
    const timer = setTimeout(() => {
      socket.destroy(
        Object.assign(new Error(`no answer from PostgreSQL within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }),
      );
    }, timeoutMs);
    return pending.finally(() => clearTimeout(timer));
  };
}

export async function exec(client: PoolClient, statement: Statement, values: unknown[]): Promise<Rows> {
  const result = await client.query<unknown[]>({
    name: statement.name,
    text: statement.text,
    values,
    rowMode: 'array',
    types: TYPES,
  });
  return { rows: result.rows, rowCount: result.rowCount ?? 0 };
}

/**
 * Two statements sent without waiting for the first one's answer, in one write (the pool's connections
 * pipeline): one round trip instead of two. `first` and `second` must each hand their statement to the client
 * before their first await. Resolves with both answers once both have come, or rejects with the first failure.
 */
export async function pipelined<A, B>(
  client: PoolClient,
  first: () => Promise<A>,
  second: () => Promise<B>,
): Promise<[A, B]> {
  const stream = (client as PoolClient & { connection: { stream: Duplex } }).connection.stream;
  stream.cork();
  let sent: [Promise<A>, Promise<B>];
  try {
    sent = [first(), second()];
  } finally {
    stream.uncork();
  }
  const [a, b] = await Promise.allSettled(sent);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
  return [a.value, b.value];
}

/** COMMIT, checking it did: PostgreSQL answers COMMIT in an aborted transaction with a rollback, not an error. */
export async function commitOrFailure(
  client: PoolClient,
  handlerFailure?: unknown,
): Promise<{ ok: true } | { ok: false; failure: CommitFailure }> {
  const result = await client.query('COMMIT');
  if (result.command === 'COMMIT') return { ok: true };
  const cause =
    handlerFailure ??
    new StoreFailureError('PostgreSQL rolled the transaction back instead of committing it');
  return { ok: false, failure: commitFailure(cause) };
}

/** Rolls back; false if even that failed (the connection is then not reused). */
export async function rollback(client: PoolClient): Promise<boolean> {
  try {
    await client.query('ROLLBACK');
    return true;
  } catch {
    return false;
  }
}
