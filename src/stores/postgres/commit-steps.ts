import type { PoolClient } from 'pg';
import { InvalidArgumentError, StoreFailureError } from '../../core/errors.js';
import type { CommitFailure, ConsumeRequest, StateWrite } from '../../core/store.js';
import { LIVE_STATUSES, type StoredResponse, type TokenRecord, type TokenStatus } from '../../core/token.js';
import { tokenValues } from '../token-tuple.js';
import { exec } from './connection.js';
import { compareText, tokenColumns } from './rows.js';
import type { Statements } from './statements.js';

/* The statements of a commit around its consume, on the commit's connection and inside its transaction. */

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
 * versions), the mints, and the answer kept on the consumed token. Returns the first refusal, if any; the caller then rolls back, so it does
 * not matter that the statement's other parts ran.
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
  const [held, present, minted] = (rows[0] ?? [[], [], []]) as [string[], string[], string[]];
  for (const { key, value, expectedVersion } of ordered) {
    if (expectedVersion === undefined) continue;
    // A delete at version 0 holds if there is nothing to delete; every other conditional write if it wrote.
    const holds = value === undefined && expectedVersion === 0 ? !present.includes(key) : held.includes(key);
    if (!holds) return { kind: 'version-conflict', key };
  }
  if (minted.length === mints.length) return undefined;
  // The first token not inserted: its id was taken, or an earlier token of this commit has the same id.
  const inserted = new Set(minted);
  const seen = new Set<string>();
  for (const token of mints) {
    if (!inserted.has(token.id) || seen.has(token.id)) return { kind: 'mint-collision', tokenId: token.id };
    seen.add(token.id);
  }
  return { kind: 'mint-collision', tokenId: (mints[0] as TokenRecord).id };
}

export function assertDistinctKeys(writes: StateWrite[]): void {
  if (writes.length < 2) return;
  if (new Set(writes.map((w) => w.key)).size !== writes.length) {
    throw new InvalidArgumentError('a commit may write each state key once');
  }
}
