import { InvalidArgumentError } from '../core/errors.js';

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

export function pageLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new InvalidArgumentError(`limit must be an integer from 1 to ${MAX_PAGE}`, { limit });
  }
  return limit;
}

interface Position {
  mintedAt: number;
  id: string;
}

/** Cursors are opaque to callers: base64url JSON of the last item's sort position. */
export function encodeCursor(position: Position): string {
  return Buffer.from(JSON.stringify([position.mintedAt, position.id])).toString('base64url');
}

/** A `scheduled` listing is ordered by due time: its cursor holds the due time where others hold the minting time. */
export function encodeDueCursor(token: { dueAt?: number; id: string }): string {
  return encodeCursor({ mintedAt: token.dueAt ?? 0, id: token.id });
}

export function decodeCursor(cursor: string): Position {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(value) && Number.isSafeInteger(value[0]) && typeof value[1] === 'string') {
      return { mintedAt: value[0], id: value[1] };
    }
  } catch {
    // fall through to the clear error below
  }
  throw new InvalidArgumentError('cursor is not one this store gave out', { cursor });
}
