import { QueryCommand, type QueryCommandInput } from '@aws-sdk/client-dynamodb';
import { InvalidArgumentError } from '../../core/errors.js';
import type { ListOptions, Page } from '../../core/store.js';
import type { TokenRecord, TokenStatus } from '../../core/token.js';
import { decodeCursor, encodeCursor, pageLimit } from '../paging.js';
import { assertTime, isStorableId, type TokensTableAccess } from './access.js';
import { Expr } from './expression.js';
import {
  type Item,
  itemToToken,
  MAX_SORT_INSTANT,
  n,
  s,
  sortKey,
  sortPosition,
  sortUpperBound,
  statusPartitions,
  TOKEN_ATTR,
} from './marshal.js';
import { INDEX } from './tables.js';

/* Reads of the secondary indexes: pages in the indexes' order, merged across status shards. */

/**
 * Pages of a byStatus/byConversation query, oldest first, from `start` (exclusive) when given. `pageSize`
 * is asked before each page.
 */
export async function* indexPages(
  at: TokensTableAccess,
  query: Omit<QueryCommandInput, 'TableName'>,
  pageSize: () => number,
  start?: Item,
): AsyncGenerator<Item[]> {
  do {
    const out = await at.run('Query', () =>
      at.client.send(
        new QueryCommand({
          ...query,
          TableName: at.tokensTable,
          ScanIndexForward: true,
          Limit: pageSize(),
          ExclusiveStartKey: start,
        }),
      ),
    );
    yield out.Items ?? [];
    start = out.LastEvaluatedKey;
  } while (start);
}

/**
 * `indexPages` over every byStatus partition of a status. The shards are read side by side, a page of each
 * per step, merged oldest first: no shard waits behind another's backlog.
 */
export async function* statusPages(
  at: TokensTableAccess,
  status: TokenStatus,
  query: (
    e: Expr,
    partition: string,
  ) => Pick<QueryCommandInput, 'KeyConditionExpression' | 'FilterExpression'>,
  wanted: number,
): AsyncGenerator<Item[]> {
  const pagesOf = (partition: string) => {
    const e = new Expr();
    // DynamoDB applies Limit before the filter: ask for more than wanted, as a filter may drop some.
    const pageSize = Math.min(1000, Math.max(50, wanted * 2));
    return indexPages(
      at,
      { IndexName: INDEX.byStatus, ...query(e, partition), ...e.params() },
      () => pageSize,
    );
  };
  let shards = statusPartitions(status, at.statusShards).map(pagesOf);
  try {
    while (shards.length > 0) {
      const steps = await Promise.all(shards.map((pages) => pages.next()));
      shards = shards.filter((_, i) => !steps[i]!.done);
      const page = steps.flatMap((step) => (step.done ? [] : step.value)).sort(bySortKey);
      if (page.length > 0) yield page;
    }
  } finally {
    await Promise.all(shards.map((pages) => pages.return(undefined)));
  }
}

/**
 * One page of an index, in gsiSort order (oldest first; scheduled tokens by due time). Reads one item past the
 * page to know whether a next page exists, so a cursor is given only when more items follow; and keeps reading
 * if DynamoDB stopped early at its 1 MB page size. Cursors carry the last item's (instant, id) in that order,
 * like the SQL stores' (mintedAt, or dueAt for a scheduled listing).
 *
 * `byDue`: the partitions hold scheduled tokens, sorted by due time. `dueBefore` then bounds the range and
 * `mintedBefore` becomes a filter; otherwise `mintedBefore` bounds the range and `dueBefore` is ignored.
 */
export async function listIndex(
  at: TokensTableAccess,
  indexName: string,
  partitionAttribute: string,
  partitions: readonly string[],
  options: ListOptions,
  byDue = false,
): Promise<Page<TokenRecord>> {
  const limit = pageLimit(options.limit);
  const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
  if (
    after !== undefined &&
    (after.mintedAt < 0 || after.mintedAt > MAX_SORT_INSTANT || !isStorableId(after.id))
  ) {
    throw new InvalidArgumentError('cursor is not one this store gave out', { cursor: options.cursor });
  }
  if (options.mintedBefore !== undefined) assertTime('mintedBefore', options.mintedBefore);
  if (options.dueBefore !== undefined) assertTime('dueBefore', options.dueBefore);
  const rangeBefore = byDue ? options.dueBefore : options.mintedBefore;
  const mintedFilter = byDue ? options.mintedBefore : undefined;
  const upper = rangeBefore === undefined ? undefined : sortUpperBound(rangeBefore);
  if (upper === null) return { items: [] };
  const afterSort = after === undefined ? undefined : sortKey(after.mintedAt, after.id);
  // A cursor at or past the bound (the bound changed between calls): nothing can follow it.
  if (afterSort !== undefined && upper !== undefined && afterSort >= upper) return { items: [] };

  // The page is the first limit + 1 items of the partitions merged; each holds at most that many of them.
  const perPartition = await Promise.all(
    partitions.map(async (partition) => {
      const e = new Expr();
      const query: Omit<QueryCommandInput, 'TableName'> = {
        IndexName: indexName,
        KeyConditionExpression: indexRange(e, partitionAttribute, partition, upper),
        ...(mintedFilter === undefined
          ? {}
          : { FilterExpression: `${e.name(TOKEN_ATTR.mintedAt)} < ${e.value(n(mintedFilter))}` }),
        ScanIndexForward: true,
        ...e.params(),
      };
      // A position in this partition's order; the cursor's token need not be in this partition.
      const start: Item | undefined =
        after === undefined
          ? undefined
          : {
              [TOKEN_ATTR.id]: s(after.id),
              [partitionAttribute]: s(partition),
              [TOKEN_ATTR.gsiSort]: s(afterSort!),
            };
      const found: Item[] = [];
      // Pages stop early at 1 MB: read on until one item past the page is known, or the partition ends.
      for await (const page of indexPages(at, query, () => limit + 1 - found.length, start)) {
        found.push(...page);
        if (found.length > limit) break;
      }
      return found;
    }),
  );
  const found = perPartition.length === 1 ? perPartition[0]! : perPartition.flat().sort(bySortKey);

  const page = found.slice(0, limit);
  const items = page.map(itemToToken);
  if (found.length <= limit || page.length === 0) return { items };
  const last = sortPosition(page[page.length - 1]!);
  return { items, cursor: encodeCursor({ mintedAt: last.instant, id: last.id }) };
}

/** Index items in the indexes' own order (gsiSort: padded instant, then id). */
export function bySortKey(a: Item, b: Item): number {
  const x = a[TOKEN_ATTR.gsiSort]?.S ?? '';
  const y = b[TOKEN_ATTR.gsiSort]?.S ?? '';
  return x < y ? -1 : x > y ? 1 : 0;
}

/** One partition of a GSI in sort order, cut off before `upper` (from `sortUpperBound`) when there is one. */
export function indexRange(
  e: Expr,
  partitionAttribute: string,
  partition: string,
  upper: string | undefined,
): string {
  const key = `${e.name(partitionAttribute)} = ${e.value(s(partition))}`;
  return upper === undefined ? key : `${key} AND ${e.name(TOKEN_ATTR.gsiSort)} < ${e.value(s(upper))}`;
}
