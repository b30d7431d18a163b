import { BatchExecuteStatementCommand, type BatchStatementResponse } from '@aws-sdk/client-dynamodb';
import type { TokensTableAccess } from './access.js';
import { mapBounded } from './bounded.js';
import { sdkError } from './failures.js';
import { n, s, statusPartition, TOKEN_ATTR } from './marshal.js';

/** Statements one BatchExecuteStatement may carry. */
const STATEMENTS_PER_BATCH = 25;

/** What a batch of marks left to the caller. */
export interface BatchMarks {
  moved: number;
  /** Ids whose statement failed for another reason than the condition: the caller marks them one by one. */
  again: string[];
}

/**
 * pending → dispatched for many tokens with one request per 25 (PartiQL's BatchExecuteStatement) instead of an
 * UpdateItem each. Each statement is conditional on its own token, as the UpdateItem is: a token no longer pending
 * (dispatched, consumed, revoked, unknown) fails its condition and is left alone, while its neighbours move. The
 * statements are independent: none is a transaction, so a failed one never holds the others back.
 *
 * It needs `dynamodb:PartiQLUpdate` on the tokens table besides `dynamodb:UpdateItem`; a request the credentials
 * may not make rejects with AccessDeniedException, and the store then marks one by one for good.
 */
export async function markInBatches(
  at: TokensTableAccess,
  ids: readonly string[],
  now: number,
): Promise<BatchMarks> {
  const table = at.tokensTable.replaceAll('"', '""');
  const statement =
    `UPDATE "${table}" SET "${TOKEN_ATTR.status}" = 'dispatched' SET "${TOKEN_ATTR.gsiStatus}" = ? ` +
    `SET "${TOKEN_ATTR.dispatchedAt}" = ? REMOVE "${TOKEN_ATTR.leaseUntil}" ` +
    `WHERE "${TOKEN_ATTR.id}" = ? AND "${TOKEN_ATTR.status}" = 'pending'`;
  const chunks: string[][] = [];
  for (let i = 0; i < ids.length; i += STATEMENTS_PER_BATCH)
    chunks.push(ids.slice(i, i + STATEMENTS_PER_BATCH));
  const result: BatchMarks = { moved: 0, again: [] };
  await mapBounded(chunks, at.concurrency, async (chunk) => {
    const out = await at.run('BatchExecuteStatement', () =>
      at.client.send(
        new BatchExecuteStatementCommand({
          Statements: chunk.map((id) => ({
            Statement: statement,
            Parameters: [s(statusPartition('dispatched', id, at.statusShards)), n(now), s(id)],
          })),
        }),
      ),
    );
    const responses: BatchStatementResponse[] = out.Responses ?? [];
    chunk.forEach((id, i) => {
      const code = responses[i]?.Error?.Code;
      if (code === undefined) result.moved += 1;
      else if (code !== 'ConditionalCheckFailed') result.again.push(id);
    });
  });
  return result;
}

/** The credentials may not use PartiQL: the request's error says so (the store's mapped error keeps it as cause). */
export function isAccessDenied(error: unknown): boolean {
  const cause = (error as { cause?: unknown } | undefined)?.cause;
  return [error, cause].some((e) => sdkError(e).name === 'AccessDeniedException');
}
