import type { ListOptions, Page } from '../../core/store.js';
import type { TokenRecord } from '../../core/token.js';
import { decodeCursor, encodeCursor, encodeDueCursor, pageLimit } from '../paging.js';
import { fromTuple, type TokenTuple } from '../token-tuple.js';
import { exec } from './connection.js';
import type { StoreConnections } from './pool.js';
import type { Statement, Statements } from './statements.js';

/* Token listings, one page at a time: by status or conversation in minting order, `scheduled` in due order. */

/** Tokens whose status or conversation (the statement's column) is `partition`, oldest first. */
export function listPage(
  db: StoreConnections,
  statement: Statement,
  partition: string,
  options: ListOptions,
): Promise<Page<TokenRecord>> {
  return page(db, statement, partition, options, encodeCursor);
}

/** `scheduled` tokens, earliest due first (from the partial index tokens_due). */
export function listScheduled(
  db: StoreConnections,
  sql: Statements,
  options: ListOptions,
): Promise<Page<TokenRecord>> {
  return page(db, sql.byDue, options.dueBefore ?? Number.MAX_SAFE_INTEGER, options, encodeDueCursor);
}

/** One page of a listing statement: $1 its filter, $2 minted before, $3-$4 the cursor's position, $5 the limit. */
async function page(
  db: StoreConnections,
  statement: Statement,
  filter: string | number,
  options: ListOptions,
  cursorOf: (last: TokenRecord) => string,
): Promise<Page<TokenRecord>> {
  const limit = pageLimit(options.limit);
  const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
  const { rows } = await db.run('list', (client) =>
    exec(client, statement, [
      filter,
      options.mintedBefore ?? Number.MAX_SAFE_INTEGER,
      after?.mintedAt ?? -1,
      after?.id ?? '',
      limit + 1,
    ]),
  );
  const items = rows.slice(0, limit).map((row) => fromTuple(row as TokenTuple));
  const last = items[items.length - 1];
  return rows.length > limit && last ? { items, cursor: cursorOf(last) } : { items };
}
