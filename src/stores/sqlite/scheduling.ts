import type Database from 'better-sqlite3';
import type { CommitFailure, DueClaimOptions, ListOptions, Page, RevokeRequest } from '../../core/store.js';
import { revokeConflictKey } from '../../core/store.js';
import type { TokenRecord } from '../../core/token.js';
import { decodeCursor, encodeDueCursor } from '../paging.js';
import { fromTuple, TOKEN_COLUMNS, type TokenTuple } from '../token-tuple.js';

/*
 * Scheduled tokens on SQLite: the relay's claim of due tokens, the `scheduled` listing in due order, and the
 * revokes a handler's `ctx.cancel` stages into its commit. All three read the partial index tokens_due
 * (due_at, id) WHERE status = 'scheduled' (schema version 2). The reads name it (INDEXED BY): without
 * statistics SQLite prefers tokens_by_status, which finds the same rows but in minting order, so it would read
 * and sort every scheduled token to return the first few due.
 */
export class SqliteScheduling {
  private readonly sql;
  private readonly claimTx;

  constructor(
    db: Database.Database,
    private readonly retentionMs: number,
  ) {
    const sql = {
      due: db
        .prepare(`SELECT ${TOKEN_COLUMNS} FROM tokens INDEXED BY tokens_due WHERE status = 'scheduled' AND due_at <= ?
          AND (? IS NULL OR medium = ?) ORDER BY due_at, id LIMIT ?`)
        .raw(true),
      claim: db.prepare(`UPDATE tokens SET status = 'pending', lease_until = ?, attempts = attempts + 1
        WHERE id = ? AND status = 'scheduled'`),
      page: db
        .prepare(`SELECT ${TOKEN_COLUMNS} FROM tokens INDEXED BY tokens_due WHERE status = 'scheduled' AND due_at < @dueBefore
          AND minted_at < @before AND (due_at, id) > (@afterAt, @afterId) ORDER BY due_at, id LIMIT @limit`)
        .raw(true),
      revokeAt: db.prepare(`UPDATE tokens SET status = 'revoked', retain_until = ?, payload = NULL,
        headers = NULL, lease_until = NULL WHERE id = ? AND status = ?`),
    };
    this.sql = sql;
    // Under the write lock (IMMEDIATE): two processes claiming at once take turns, the second finds the first's
    // tokens pending already.
    this.claimTx = db.transaction((options: DueClaimOptions): TokenRecord[] => {
      const { now, leaseMs, limit, medium } = options;
      const rows = sql.due.all(now, medium ?? null, medium ?? null, limit) as TokenTuple[];
      const leaseUntil = now + leaseMs;
      return rows.map((row) => {
        const token = fromTuple(row);
        sql.claim.run(leaseUntil, token.id);
        return { ...token, status: 'pending', leaseUntil, attempts: token.attempts + 1 };
      });
    });
  }

  claimDue(options: DueClaimOptions): TokenRecord[] {
    return this.claimTx.immediate(options);
  }

  /** `scheduled` tokens, earliest due first; `limit` already checked. */
  list(options: ListOptions, limit: number): Page<TokenRecord> {
    const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
    const rows = this.sql.page.all({
      dueBefore: options.dueBefore ?? Number.MAX_SAFE_INTEGER,
      before: options.mintedBefore ?? Number.MAX_SAFE_INTEGER,
      afterAt: after?.mintedAt ?? -1,
      afterId: after?.id ?? '',
      limit: limit + 1,
    }) as TokenTuple[];
    const items = rows.slice(0, limit).map(fromTuple);
    const last = items[items.length - 1];
    return rows.length > limit && last ? { items, cursor: encodeDueCursor(last) } : { items };
  }

  /**
   * Inside a commit's transaction: each token moves to `revoked` only from the status the handler read. The
   * first that moved on meanwhile fails the commit as a version conflict (the handler re-runs on fresh data).
   */
  revoke(revokes: readonly RevokeRequest[] | undefined, now: number): CommitFailure | undefined {
    if (!revokes) return undefined;
    for (const { tokenId, expectedStatus } of revokes) {
      if (this.sql.revokeAt.run(now + this.retentionMs, tokenId, expectedStatus).changes === 0) {
        return { kind: 'version-conflict', key: revokeConflictKey(tokenId) };
      }
    }
    return undefined;
  }
}
