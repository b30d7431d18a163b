import { TOKEN_STATUSES, type TokenStatus } from '../core/token.js';

/**
 * A store's per-status counts as `statusCounts()` answers them: every status present, 0 where the store found
 * none. `rows` are (status, count) pairs as a query groups them; a status the core does not know is left out.
 */
export function statusCountsOf(rows: Iterable<readonly [unknown, unknown]>): Record<TokenStatus, number> {
  const counts = Object.fromEntries(TOKEN_STATUSES.map((status) => [status, 0])) as Record<
    TokenStatus,
    number
  >;
  for (const [status, count] of rows) {
    if (Object.hasOwn(counts, status as string)) counts[status as TokenStatus] += Number(count);
  }
  return counts;
}
