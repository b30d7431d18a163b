import type { PoolClient } from 'pg';
import {
  type CommitFailure,
  type DueClaimOptions,
  type RevokeRequest,
  revokeConflictKey,
} from '../../core/store.js';
import type { TokenRecord } from '../../core/token.js';
import { fromTuple, type TokenTuple } from '../token-tuple.js';
import { exec } from './connection.js';
import type { StoreConnections } from './pool.js';
import { compareText } from './rows.js';
import type { Statements } from './statements.js';

/*
 * Scheduled tokens on PostgreSQL: the relay's claim of due tokens (from the partial index tokens_due, schema
 * version 2) and the revokes a handler's `ctx.cancel` stages into its hop's transaction. The `scheduled` listing
 * is in listing.ts.
 */

/** One statement: due tokens, earliest first, moved to pending and leased; rows locked elsewhere are skipped. */
export async function claimDue(
  db: StoreConnections,
  sql: Statements,
  options: DueClaimOptions,
): Promise<TokenRecord[]> {
  const { now, leaseMs, limit, medium } = options;
  const { rows } = await db.run('claimDue', (client) =>
    exec(client, sql.claimDue, [now, now + leaseMs, limit, medium ?? null]),
  );
  // RETURNING follows no order: earliest due first, as the other stores answer.
  return rows.map((row) => fromTuple(row as TokenTuple)).sort(byDueAtThenId);
}

/**
 * Inside a hop's transaction: revokes the cancelled tokens, each only from the status the handler read, in id
 * order (two hops cancelling the same tokens lock them in the same order). The first that moved on meanwhile
 * fails the commit as a version conflict; the caller rolls back.
 */
export async function revokeStaged(
  client: PoolClient,
  sql: Statements,
  revokes: readonly RevokeRequest[] | undefined,
  retainUntil: number,
): Promise<CommitFailure | undefined> {
  if (!revokes || revokes.length === 0) return undefined;
  const ordered = [...revokes].sort((a, b) => compareText(a.tokenId, b.tokenId));
  const { rows } = await exec(client, sql.revokeStaged, [
    ordered.map((r) => r.tokenId),
    ordered.map((r) => r.expectedStatus),
    retainUntil,
  ]);
  const revoked = new Set(rows.map((row) => row[0] as string));
  const missed = revokes.find((r) => !revoked.has(r.tokenId));
  return missed ? { kind: 'version-conflict', key: revokeConflictKey(missed.tokenId) } : undefined;
}

function byDueAtThenId(a: TokenRecord, b: TokenRecord): number {
  const due = (a.dueAt ?? 0) - (b.dueAt ?? 0);
  return due !== 0 ? due : compareText(a.id, b.id);
}
