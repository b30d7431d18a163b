import type { PoolClient } from 'pg';
import { InvalidArgumentError, StoreFailureError } from '../../core/errors.js';
import type { CommitFailure, ConsumeRequest, StateWrite } from '../../core/store.js';
import { LIVE_STATUSES, type StoredResponse, type TokenRecord, type TokenStatus } from '../../core/token.js';
import { firstDuplicate } from '../first-duplicate.js';
import { tokenValues } from '../token-tuple.js';
import { exec } from './connection.js';
import { codeOf } from './hop-transaction.js';
import { compareText, tokenColumns } from './rows.js';
import type { Statements } from './statements.js';

/* The statements of a commit around its consume, on the commit's connection and inside its transaction. */

/** SQLSTATE 23505. */
const UNIQUE_VIOLATION = '23505';

/**
 * Why the conditional consume matched no row; read only on that failure path, in the same transaction (the
 * same order of checks as the other stores).
 */
export async function classifyUnconsumable(
  client: PoolClient,
  sql: Statements,
  consume: ConsumeRequest,
  now: number,
): Promise<CommitFailure> {
  const { rows } = await exec(client, sql.checkToken, [consume.tokenId]);
  const row = rows[0] as [TokenStatus, string | null, number | null] | undefined;
  if (!row) return { kind: 'token-missing' };
  const [status, fingerprint, expiresAt] = row;
  const expired = expiresAt !== null && expiresAt <= now;
  if (!LIVE_STATUSES.includes(status) || expired) return { kind: 'token-not-live', status, expired };
  if (fingerprint !== null && fingerprint !== consume.fingerprint) return { kind: 'fingerprint-mismatch' };
  // Consumable now, not when the UPDATE ran (minted in between, read committed): the caller tries again.
  return {
    kind: 'transient',
    cause: new StoreFailureError(`token ${consume.tokenId} became consumable during the commit`),
  };
}

/**
 * What the handler staged, in one statement with only the parts it needs: the state writes (optimistic
 * versions), the mints, and the answer kept on the consumed token. Returns the first version conflict, if any;
 * the caller then rolls back, so it does not matter that the statement's other parts ran. A taken token id
 * fails the statement instead (see isTakenId).
 */
export async function stage(
  client: PoolClient,
  sql: Statements,
  writes: readonly StateWrite[],
  mints: readonly TokenRecord[],
  response?: { tokenId: string; value: StoredResponse },
): Promise<CommitFailure | undefined> {
  if (writes.length === 0 && mints.length === 0 && response === undefined) return undefined;
  // In key order: two hops writing the same keys lock them in the same order.
  const ordered = writes.length > 1 ? [...writes].sort((a, b) => compareText(a.key, b.key)) : writes;
  const mintShape = mints.length === 0 ? 'none' : mints.length === 1 ? 'one' : 'many';
  const statement = sql.stage({
    writes: ordered.length > 0,
    mints: mintShape,
    answer: response !== undefined,
  });
  const values: unknown[] = [];
  if (ordered.length > 0) {
    values.push(
      ordered.map((w) => w.key),
      ordered.map((w) => (w.value === undefined ? null : JSON.stringify(w.value))),
      ordered.map((w) => w.expectedVersion ?? null),
    );
  }
  // A hop emitting one signal, the usual case, sends one row of scalars: cheaper to encode, parse and plan.
  if (mintShape === 'one') values.push(...tokenValues(mints[0] as TokenRecord));
  else if (mintShape === 'many') values.push(...tokenColumns(mints));
  if (response) values.push(response.tokenId, JSON.stringify(response.value));
  const { rows } = await exec(client, statement, values);
  const [held, present] = (rows[0] ?? [[], []]) as [string[], string[]];
  for (const { key, value, expectedVersion } of ordered) {
    if (expectedVersion === undefined) continue;
    // A delete at version 0 holds if there is nothing to delete; every other conditional write if it wrote.
    const holds = value === undefined && expectedVersion === 0 ? !present.includes(key) : held.includes(key);
    if (!holds) return { kind: 'version-conflict', key };
  }
  return undefined;
}

/**
 * Whether what was staged can be refused by `stage`'s answer rather than by an error: only a conditional state
 * write can. A stage that cannot is safe to send with the COMMIT right behind it, since any failure of the
 * statement turns that COMMIT into a rollback.
 */
export function refusable(writes: readonly StateWrite[]): boolean {
  return writes.some((write) => write.expectedVersion !== undefined);
}

/** Whether a statement failed because an emitted token's id is taken: the tokens table's primary key. */
export function isTakenId(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    codeOf(error) === UNIQUE_VIOLATION &&
    'table' in error &&
    error.table === 'tokens'
  );
}

/**
 * The mint collision a failed stage meant, asked once its transaction has rolled back: the first emitted token
 * whose id an earlier one of the same commit has, or that is taken in the table. If even that cannot be asked,
 * a transient failure: the hop runs again.
 */
export async function takenIdFailure(
  client: PoolClient,
  sql: Statements,
  mints: readonly TokenRecord[],
): Promise<CommitFailure> {
  const ids = mints.map((token) => token.id);
  const repeated = firstDuplicate(ids);
  let taken: Set<string>;
  try {
    taken = await takenIds(client, sql, ids);
  } catch (error) {
    // Nothing of the hop was written: running it again asks again.
    return { kind: 'transient', cause: error };
  }
  const first = ids.find((id) => id === repeated || taken.has(id)) ?? repeated ?? (ids[0] as string);
  return { kind: 'mint-collision', tokenId: first };
}

/** Which of `ids` are token ids in the table. */
export async function takenIds(
  client: PoolClient,
  sql: Statements,
  ids: readonly string[],
): Promise<Set<string>> {
  const { rows } = await exec(client, sql.existingIds, [ids]);
  return new Set(rows.map((row) => row[0] as string));
}

export function assertDistinctKeys(writes: StateWrite[]): void {
  if (writes.length < 2) return;
  if (new Set(writes.map((w) => w.key)).size !== writes.length) {
    throw new InvalidArgumentError('a commit may write each state key once');
  }
}
