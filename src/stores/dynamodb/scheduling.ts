import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { InvalidArgumentError } from '../../core/errors.js';
import {
  type CommitFailure,
  type CommitRequest,
  type DueClaimOptions,
  type RevokeRequest,
  revokeConflictKey,
} from '../../core/store.js';
import { canTransition, type TokenRecord } from '../../core/token.js';
import { firstDuplicate } from '../first-duplicate.js';
import { assertTime, isStorableId, type TokensTableAccess } from './access.js';
import { endExpression, type SizedAction } from './commit-actions.js';
import { Expr } from './expression.js';
import { indexRange, statusPages } from './index-reads.js';
import { estimateWriteSize, TOMBSTONE_ALLOWANCE_BYTES } from './limits.js';
import { n, s, sortUpperBoundAtOrBefore, statusPartition, TOKEN_ATTR } from './marshal.js';
import { claimEach, conditionalUpdate } from './sweeps.js';

/*
 * Scheduled tokens on DynamoDB. A scheduled token sits in the byStatus index under `scheduled` (sharded like
 * every status) with gsiSort = padded dueAt # id (marshal's statusSortKey): the tokens due now are one range
 * query per shard, earliest first, reading nothing that is not due. A token leaving `scheduled` (claimed when
 * due, or revoked) gets back the mintedAt sort key it kept in `mintedSort`, so the pending relay, the purge
 * and the listings find it where they find every other token, without a read first.
 */

/** The SET and REMOVE clauses that put a token leaving `scheduled` back at its mintedAt place in the indexes. */
export function restoreMintedOrder(e: Expr): { set: string; remove: string } {
  const gsiSort = e.name(TOKEN_ATTR.gsiSort);
  const minted = e.name(TOKEN_ATTR.mintedSort);
  // A token that was never scheduled has no mintedSort and keeps the key it has.
  return { set: `${gsiSort} = if_not_exists(${minted}, ${gsiSort})`, remove: minted };
}

/**
 * scheduled → pending for the tokens due at `now`, earliest due first, each with a relay lease. Candidates come
 * from the (eventually consistent) index; each move is a conditional UpdateItem on `status = scheduled`, so of
 * several relays racing for a token exactly one moves it and the others skip it.
 */
export async function claimDue(at: TokensTableAccess, options: DueClaimOptions): Promise<TokenRecord[]> {
  const { now, leaseMs, limit, medium } = options;
  assertTime('now', now);
  assertTime('leaseMs', leaseMs);
  if (limit < 1) return [];
  const upper = sortUpperBoundAtOrBefore(now);
  if (upper === null) return [];
  // Without a medium filter every item of a page is due, so the first merged page holds the earliest `limit`.
  const candidates = statusPages(
    at,
    'scheduled',
    (e, partition) => ({
      KeyConditionExpression: indexRange(e, TOKEN_ATTR.gsiStatus, partition, upper),
      ...(medium === undefined
        ? {}
        : { FilterExpression: `${e.name(TOKEN_ATTR.medium)} = ${e.value(s(medium))}` }),
    }),
    limit,
  );
  return claimEach(at, candidates, limit, (item) =>
    conditionalUpdate(at, item, (u) => {
      const status = u.name(TOKEN_ATTR.status);
      const attempts = u.name(TOKEN_ATTR.attempts);
      const pending = statusPartition('pending', item[TOKEN_ATTR.id]!.S!, at.statusShards);
      const restore = restoreMintedOrder(u);
      return {
        ConditionExpression:
          `${status} = ${u.value(s('scheduled'))} AND ` + `${u.name(TOKEN_ATTR.dueAt)} <= ${u.value(n(now))}`,
        UpdateExpression:
          `SET ${status} = ${u.value(s('pending'))}, ` +
          `${u.name(TOKEN_ATTR.gsiStatus)} = ${u.value(s(pending))}, ${restore.set}, ` +
          `${u.name(TOKEN_ATTR.leaseUntil)} = ${u.value(n(now + leaseMs))}, ` +
          `${attempts} = if_not_exists(${attempts}, ${u.value(n(0))}) + ${u.value(n(1))} ` +
          `REMOVE ${restore.remove}`,
      };
    }),
  );
}

/**
 * What a commit's revokes make of it before anything is sent: a revoke of a token the commit also consumes,
 * mints or revokes is refused (DynamoDB takes one action per item; the handler context never stages one), and
 * an id no token can have is a conflict, as its status cannot be the one the handler read.
 */
export function checkRevokes(request: CommitRequest): CommitFailure | undefined {
  const revokes = request.revokes ?? [];
  if (revokes.length === 0) return undefined;
  const taken = [request.consume.tokenId, ...request.mints.map((t) => t.id)];
  const twice = firstDuplicate([...taken, ...revokes.map((r) => r.tokenId)]);
  if (twice !== undefined) {
    throw new InvalidArgumentError('a commit may revoke a token once, and not one it consumes or mints', {
      tokenId: twice,
    });
  }
  const unknown = revokes.find((r) => !isStorableId(r.tokenId));
  return unknown === undefined
    ? undefined
    : { kind: 'version-conflict', key: revokeConflictKey(unknown.tokenId) };
}

/**
 * The revokes of a commit (`ctx.cancel`): each moves its token to `revoked` only if it is still in the status
 * the handler read, so a token that moved meanwhile cancels the whole commit (a version conflict: the handler
 * runs again on fresh data).
 */
export function revokeActions(
  at: TokensTableAccess,
  revokes: readonly RevokeRequest[],
  now: number,
): SizedAction[] {
  return revokes.map(({ tokenId, expectedStatus }) => {
    if (!canTransition(expectedStatus, 'revoked')) {
      throw new InvalidArgumentError(`a ${expectedStatus} token cannot be revoked`, { tokenId });
    }
    const e = new Expr();
    const restore = expectedStatus === 'scheduled' ? restoreMintedOrder(e) : undefined;
    const write: TransactWriteItem = {
      Update: {
        TableName: at.tokensTable,
        Key: { [TOKEN_ATTR.id]: s(tokenId) },
        ConditionExpression: `${e.name(TOKEN_ATTR.status)} = ${e.value(s(expectedStatus))}`,
        UpdateExpression: endExpression(
          at,
          e,
          tokenId,
          'revoked',
          now,
          restore ? [restore.set] : [],
          restore ? [restore.remove] : [],
        ),
        ...e.params(),
      },
    };
    // Like the consume, the tombstone keeps attributes the update cannot see: reserve room for them.
    return { write, label: `token ${tokenId}`, bytes: estimateWriteSize(write) + TOMBSTONE_ALLOWANCE_BYTES };
  });
}
