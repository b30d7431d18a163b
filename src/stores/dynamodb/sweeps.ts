import { DeleteItemCommand, QueryCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { ClaimOptions, InFlightStats, TokenClaimOptions } from '../../core/store.js';
import { IN_FLIGHT_STATUSES, TOKEN_STATUSES, type TokenRecord, type TokenStatus } from '../../core/token.js';
import { statusCountsOf } from '../status-counts.js';
import { assertTime, isStorableId, type TokensTableAccess } from './access.js';
import { isAccessDenied, markInBatches } from './batch-marks.js';
import { mapBounded } from './bounded.js';
import { endExpression } from './commit-actions.js';
import { Expr } from './expression.js';
import { isConditionFailure } from './failures.js';
import { indexRange, statusPages } from './index-reads.js';
import {
  type Item,
  itemToToken,
  n,
  s,
  sortUpperBoundAtOrBefore,
  statusPartition,
  statusPartitions,
  TOKEN_ATTR,
} from './marshal.js';
import { INDEX } from './tables.js';

/*
 * The relay's and the sweeps' work on many tokens: dispatch marks, leases, expiry, purge, the in-flight
 * count and the count per status. Candidates come from the (eventually consistent) indexes; every write is conditional on the item.
 */

const ENDED_STATUSES: readonly TokenStatus[] = ['consumed', 'expired', 'revoked'];

/** Stores whose credentials refused PartiQL: they mark one token per request from then on. */
const NO_PARTIQL = new WeakSet<TokensTableAccess>();

export async function markDispatched(at: TokensTableAccess, ids: string[], now: number): Promise<number> {
  assertTime('now', now);
  const unique = [...new Set(ids)].filter(isStorableId);
  if (unique.length > 1 && !NO_PARTIQL.has(at)) {
    try {
      const batched = await markInBatches(at, unique, now);
      return batched.moved + (batched.again.length > 0 ? await markEach(at, batched.again, now) : 0);
    } catch (error) {
      if (!isAccessDenied(error)) throw error;
      NO_PARTIQL.add(at);
    }
  }
  return markEach(at, unique, now);
}

async function markEach(at: TokensTableAccess, unique: readonly string[], now: number): Promise<number> {
  const moved = await mapBounded(unique, at.concurrency, (id) =>
    at.run('UpdateItem', async () => {
      const e = new Expr();
      const status = e.name(TOKEN_ATTR.status);
      const dispatched = e.value(s('dispatched'));
      try {
        await at.client.send(
          new UpdateItemCommand({
            TableName: at.tokensTable,
            Key: { [TOKEN_ATTR.id]: s(id) },
            ConditionExpression: `${status} = ${e.value(s('pending'))}`,
            UpdateExpression:
              `SET ${status} = ${dispatched}, ` +
              `${e.name(TOKEN_ATTR.gsiStatus)} = ${e.value(s(statusPartition('dispatched', id, at.statusShards)))}, ` +
              `${e.name(TOKEN_ATTR.dispatchedAt)} = ${e.value(n(now))} REMOVE ${e.name(TOKEN_ATTR.leaseUntil)}`,
            ...e.params(),
          }),
        );
        return true;
      } catch (error) {
        // Not pending (any more, or never): already dispatched, consumed, revoked or unknown.
        if (isConditionFailure(error)) return false;
        throw error;
      }
    }),
  );
  return moved.filter(Boolean).length;
}

export async function expireIssued(at: TokensTableAccess, now: number, limit = 1000): Promise<number> {
  assertTime('now', now);
  if (limit < 1) return 0;
  const candidates = statusPages(
    at,
    'issued',
    (e, partition) => ({
      KeyConditionExpression: indexRange(e, TOKEN_ATTR.gsiStatus, partition, undefined),
      FilterExpression: `${e.name(TOKEN_ATTR.expiresAt)} <= ${e.value(n(now))}`,
    }),
    limit,
  );
  const expired = await claimEach(at, candidates, limit, (item) =>
    conditionalUpdate(at, item, (u) => ({
      ConditionExpression:
        `${u.name(TOKEN_ATTR.status)} = ${u.value(s('issued'))} AND ` +
        `${u.name(TOKEN_ATTR.expiresAt)} <= ${u.value(n(now))}`,
      UpdateExpression: endExpression(at, u, item[TOKEN_ATTR.id]!.S!, 'expired', now),
    })),
  );
  return expired.length;
}

export async function claimPending(at: TokensTableAccess, options: ClaimOptions): Promise<TokenRecord[]> {
  const { mintedBefore, now, leaseMs, limit, medium } = options;
  assertTime('mintedBefore', mintedBefore);
  assertTime('now', now);
  assertTime('leaseMs', leaseMs);
  if (limit < 1) return [];
  const upper = sortUpperBoundAtOrBefore(mintedBefore);
  if (upper === null) return [];

  const candidates = statusPages(
    at,
    'pending',
    (e, partition) => {
      const leaseUntil = e.name(TOKEN_ATTR.leaseUntil);
      const filters = [`(attribute_not_exists(${leaseUntil}) OR ${leaseUntil} < ${e.value(n(now))})`];
      if (medium !== undefined) filters.push(`${e.name(TOKEN_ATTR.medium)} = ${e.value(s(medium))}`);
      return {
        KeyConditionExpression: indexRange(e, TOKEN_ATTR.gsiStatus, partition, upper),
        FilterExpression: filters.join(' AND '),
      };
    },
    limit,
  );
  // The index may be stale: the lease is taken only if the token is still pending and unleased.
  return claimEach(at, candidates, limit, (item) =>
    conditionalUpdate(at, item, (u) => {
      const lease = u.name(TOKEN_ATTR.leaseUntil);
      return {
        ConditionExpression:
          `${u.name(TOKEN_ATTR.status)} = ${u.value(s('pending'))} AND ` +
          `(attribute_not_exists(${lease}) OR ${lease} < ${u.value(n(now))})`,
        UpdateExpression: leaseUpdate(u, now + leaseMs),
      };
    }),
  );
}

/** One pending token by id, whatever its age or lease (an operator's redispatch): one conditional UpdateItem. */
export async function claimToken(
  at: TokensTableAccess,
  id: string,
  options: TokenClaimOptions,
): Promise<TokenRecord | undefined> {
  const { now, leaseMs, medium } = options;
  assertTime('now', now);
  assertTime('leaseMs', leaseMs);
  if (!isStorableId(id)) return undefined;
  return conditionalUpdate(at, { [TOKEN_ATTR.id]: s(id) }, (u) => {
    const conditions = [`${u.name(TOKEN_ATTR.status)} = ${u.value(s('pending'))}`];
    if (medium !== undefined) conditions.push(`${u.name(TOKEN_ATTR.medium)} = ${u.value(s(medium))}`);
    return { ConditionExpression: conditions.join(' AND '), UpdateExpression: leaseUpdate(u, now + leaseMs) };
  });
}

/** Leases a token until `until` and counts the attempt. */
function leaseUpdate(u: Expr, until: number): string {
  const attempts = u.name(TOKEN_ATTR.attempts);
  return (
    `SET ${u.name(TOKEN_ATTR.leaseUntil)} = ${u.value(n(until))}, ` +
    `${attempts} = if_not_exists(${attempts}, ${u.value(n(0))}) + ${u.value(n(1))}`
  );
}

export async function inFlightStats(at: TokensTableAccess): Promise<InFlightStats> {
  const partitions = IN_FLIGHT_STATUSES.flatMap((status) =>
    statusPartitions(status, at.statusShards).map((partition) => ({
      partition,
      byDue: status === 'scheduled',
    })),
  );
  const perStatus = await Promise.all(
    partitions.map(({ partition, byDue }) => partitionStats(at, partition, byDue)),
  );
  const count = perStatus.reduce((sum, p) => sum + p.count, 0);
  // Scheduled tokens count but do not age the figure (see InFlightStats.oldestMintedAt).
  const oldest = perStatus
    .filter((_, i) => !partitions[i]?.byDue)
    .map((p) => p.oldest)
    .filter((m): m is number => m !== undefined);
  return oldest.length === 0 ? { count } : { count, oldestMintedAt: Math.min(...oldest) };
}

/**
 * Count and oldest mintedAt of one byStatus partition. In mintedAt order the oldest is the first item; a
 * scheduled partition is in due order, so its mintedAt values are read with the count (a COUNT query reads,
 * and is charged for, the same items).
 */
async function partitionStats(
  at: TokensTableAccess,
  partition: string,
  byDue: boolean,
): Promise<{ count: number; oldest: number | undefined }> {
  const e = new Expr();
  const query = {
    TableName: at.tokensTable,
    IndexName: INDEX.byStatus,
    KeyConditionExpression: indexRange(e, TOKEN_ATTR.gsiStatus, partition, undefined),
    ...(byDue ? { ProjectionExpression: e.name(TOKEN_ATTR.mintedAt) } : {}),
    ...e.params(),
  };
  let oldest: number | undefined;
  const count = await at.run('Query', async () => {
    let total = 0;
    let start: Item | undefined;
    do {
      const out = await at.client.send(
        new QueryCommand({ ...query, ...(byDue ? {} : { Select: 'COUNT' }), ExclusiveStartKey: start }),
      );
      total += out.Count ?? 0;
      for (const item of out.Items ?? []) {
        const mintedAt = Number(item[TOKEN_ATTR.mintedAt]?.N);
        if (Number.isFinite(mintedAt) && (oldest === undefined || mintedAt < oldest)) oldest = mintedAt;
      }
      start = out.LastEvaluatedKey;
    } while (start);
    return total;
  });
  if (byDue || count === 0) return { count, oldest };
  return at.run('Query', async () => {
    const out = await at.client.send(new QueryCommand({ ...query, Limit: 1, ScanIndexForward: true }));
    const item = out.Items?.[0];
    return { count, oldest: item ? itemToToken(item).mintedAt : undefined };
  });
}

/**
 * Tokens per status, counted on the byStatus index: eventually consistent, and a COUNT query reads (and is
 * charged for) every index entry it counts, the tombstones kept for the retention included.
 */
export async function statusCounts(at: TokensTableAccess): Promise<Record<TokenStatus, number>> {
  const partitions = TOKEN_STATUSES.flatMap((status) =>
    statusPartitions(status, at.statusShards).map((partition) => ({ status, partition })),
  );
  const counts = await mapBounded(partitions, at.concurrency, ({ partition }) =>
    countPartition(at, partition),
  );
  return statusCountsOf(partitions.map(({ status }, i) => [status, counts[i]]));
}

async function countPartition(at: TokensTableAccess, partition: string): Promise<number> {
  const e = new Expr();
  const query = {
    TableName: at.tokensTable,
    IndexName: INDEX.byStatus,
    KeyConditionExpression: indexRange(e, TOKEN_ATTR.gsiStatus, partition, undefined),
    Select: 'COUNT' as const,
    ...e.params(),
  };
  return at.run('Query', async () => {
    let total = 0;
    let start: Item | undefined;
    do {
      const out = await at.client.send(new QueryCommand({ ...query, ExclusiveStartKey: start }));
      total += out.Count ?? 0;
      start = out.LastEvaluatedKey;
    } while (start);
    return total;
  });
}

/**
 * Deletes ended tokens past their retention. DynamoDB's TTL deletes them too, but lazily (often days later)
 * and without guarantees, so the sweep remains the reference.
 *
 * A tombstone is kept until its end plus the retention, and a token ends after it is minted, so only tokens
 * minted at least one retention ago can be due. The index range stops there: a sweep reads the tombstones
 * that may be due, not every tombstone kept (which grows with traffic, and every relay sweeps). A tombstone
 * written by a process with a shorter retention is swept once this bound reaches it (TTL may come first).
 */
export async function purge(at: TokensTableAccess, now: number, limit = 1000): Promise<number> {
  assertTime('now', now);
  const upper = sortUpperBoundAtOrBefore(now - at.retentionMs);
  if (upper === null) return 0;
  let purged = 0;
  for (const status of ENDED_STATUSES) {
    if (purged >= limit) break;
    const candidates = statusPages(
      at,
      status,
      (e, partition) => ({
        KeyConditionExpression: indexRange(e, TOKEN_ATTR.gsiStatus, partition, upper),
        FilterExpression: `${e.name(TOKEN_ATTR.retainUntil)} <= ${e.value(n(now))}`,
      }),
      limit - purged,
    );
    const deleted = await claimEach(at, candidates, limit - purged, (item) =>
      at.run('DeleteItem', async () => {
        const d = new Expr();
        try {
          await at.client.send(
            new DeleteItemCommand({
              TableName: at.tokensTable,
              Key: { [TOKEN_ATTR.id]: item[TOKEN_ATTR.id]! },
              ConditionExpression:
                `${d.name(TOKEN_ATTR.status)} = ${d.value(s(status))} AND ` +
                `${d.name(TOKEN_ATTR.retainUntil)} <= ${d.value(n(now))}`,
              ...d.params(),
            }),
          );
          return true;
        } catch (error) {
          if (isConditionFailure(error)) return undefined;
          throw error;
        }
      }),
    );
    purged += deleted.length;
  }
  return purged;
}

/**
 * Tries `attempt` on candidates in order until `limit` succeeded. Runs them in parallel, but never more
 * than are still needed, so no item is changed beyond the limit (a claimed lease nobody returns would
 * delay that token for a whole lease).
 */
export async function claimEach<T>(
  at: TokensTableAccess,
  pages: AsyncGenerator<Item[]>,
  limit: number,
  attempt: (item: Item) => Promise<T | undefined>,
): Promise<T[]> {
  const results: T[] = [];
  for await (const page of pages) {
    let next = 0;
    while (next < page.length && results.length < limit) {
      const chunk = page.slice(next, next + Math.min(limit - results.length, at.concurrency));
      next += chunk.length;
      for (const outcome of await mapBounded(chunk, chunk.length, attempt)) {
        if (outcome !== undefined) results.push(outcome);
      }
    }
    if (results.length >= limit) break;
  }
  return results;
}

/** A conditional UpdateItem returning the new token, or undefined if the condition no longer holds. */
export function conditionalUpdate(
  at: TokensTableAccess,
  item: Item,
  build: (e: Expr) => { ConditionExpression: string; UpdateExpression: string },
): Promise<TokenRecord | undefined> {
  return at.run('UpdateItem', async () => {
    const e = new Expr();
    const expressions = build(e);
    try {
      const out = await at.client.send(
        new UpdateItemCommand({
          TableName: at.tokensTable,
          Key: { [TOKEN_ATTR.id]: item[TOKEN_ATTR.id]! },
          ...expressions,
          ReturnValues: 'ALL_NEW',
          ...e.params(),
        }),
      );
      return itemToToken(out.Attributes!);
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  });
}
