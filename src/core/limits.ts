import { LimitExceededError } from './errors.js';

/**
 * Portable limits of one commit, set by the strictest supported store (DynamoDB TransactWriteItems:
 * 100 items, 4 MB; 400 KB per item). Enforced in the core for every store, so a handler that works on the
 * embedded SQLite store does not start failing when the same code runs on DynamoDB in production.
 */
export const COMMIT_LIMITS = {
  /** consume + state writes + minted tokens */
  maxItems: 100,
  maxTransactionBytes: 4 * 1024 * 1024,
  /** headroom under 400 KB for attribute names and bookkeeping fields */
  maxItemBytes: 380 * 1024,
} as const;

export function checkCommitSize(itemSizes: number[]): void {
  const items = itemSizes.length;
  if (items > COMMIT_LIMITS.maxItems) {
    throw new LimitExceededError(
      `a commit may change at most ${COMMIT_LIMITS.maxItems} items, this one has ${items}`,
      {
        limit: COMMIT_LIMITS.maxItems,
        actual: items,
      },
    );
  }
  let total = 0;
  for (const size of itemSizes) {
    if (size > COMMIT_LIMITS.maxItemBytes) {
      throw new LimitExceededError(
        `an item of ${size} bytes exceeds the ${COMMIT_LIMITS.maxItemBytes}-byte limit`,
        {
          limit: COMMIT_LIMITS.maxItemBytes,
          actual: size,
        },
      );
    }
    total += size;
  }
  if (total > COMMIT_LIMITS.maxTransactionBytes) {
    throw new LimitExceededError(
      `a commit of ${total} bytes exceeds the ${COMMIT_LIMITS.maxTransactionBytes}-byte limit`,
      {
        limit: COMMIT_LIMITS.maxTransactionBytes,
        actual: total,
      },
    );
  }
}
