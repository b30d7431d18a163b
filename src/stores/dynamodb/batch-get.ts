import { BatchGetItemCommand, type BatchGetItemCommandOutput } from '@aws-sdk/client-dynamodb';
import { StoreUnavailableError } from '../../core/errors.js';
import type { TokenRecord } from '../../core/token.js';
import { PerTurn } from '../per-turn.js';
import { isStorableId, type TokensTableAccess } from './access.js';
import { mapBounded } from './bounded.js';
import { type Item, itemToToken, s, TOKEN_ATTR } from './marshal.js';

/** Keys one BatchGetItem may ask for. */
const BATCH_GET_LIMIT = 100;
/** Rounds for the keys DynamoDB leaves unprocessed (throttling, the 16 MB answer limit) before giving up. */
const UNPROCESSED_ROUNDS = 8;

/**
 * Several tokens by id, strongly consistent: one BatchGetItem per 100 ids instead of a GetItem each (a batch's
 * duplicate check). Keys DynamoDB leaves unprocessed are asked for again, after a short pause.
 */
export async function getTokens(
  at: TokensTableAccess,
  ids: readonly string[],
): Promise<Map<string, TokenRecord>> {
  const unique = [...new Set(ids)].filter(isStorableId);
  const chunks: string[][] = [];
  for (let i = 0; i < unique.length; i += BATCH_GET_LIMIT) chunks.push(unique.slice(i, i + BATCH_GET_LIMIT));
  const found = new Map<string, TokenRecord>();
  await mapBounded(chunks, at.concurrency, async (chunk) => {
    let keys: Item[] = chunk.map((id) => ({ [TOKEN_ATTR.id]: s(id) }));
    for (let round = 1; keys.length > 0; round++) {
      const out: BatchGetItemCommandOutput = await at.run('BatchGetItem', () =>
        at.client.send(
          new BatchGetItemCommand({
            RequestItems: { [at.tokensTable]: { Keys: keys, ConsistentRead: true } },
          }),
        ),
      );
      for (const item of out.Responses?.[at.tokensTable] ?? []) {
        const token = itemToToken(item);
        found.set(token.id, token);
      }
      keys = (out.UnprocessedKeys?.[at.tokensTable]?.Keys ?? []) as Item[];
      if (keys.length === 0) break;
      if (round >= UNPROCESSED_ROUNDS) {
        // As a throttled GetItem would: the caller retries the whole read later.
        throw new StoreUnavailableError('DynamoDB left keys of a BatchGetItem unprocessed; retry later', {
          operation: 'BatchGetItem',
          unprocessed: keys.length,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 10 * 2 ** round));
    }
  });
  return found;
}

interface Reader {
  id: string;
  resolve: (token: TokenRecord | undefined) => void;
  reject: (error: unknown) => void;
}

/**
 * The single-token reads asked for in one turn of the event loop (the duplicate checks of the requests that
 * arrived together) as one `getTokens`: a request to DynamoDB costs far more than a key in it, on both sides.
 * Each read still sees every commit that was answered before it was asked for, since the batch is sent after.
 * A read alone in its turn goes out as it is (`readOne`).
 */
export class TokenReads {
  private readonly queued = new PerTurn<Reader>((readers) => {
    const read = this.read(readers);
    this.reading.add(read);
    void read.finally(() => this.reading.delete(read));
  });
  private readonly reading = new Set<Promise<void>>();

  constructor(
    private readonly at: TokensTableAccess,
    private readonly readOne: (id: string) => Promise<TokenRecord | undefined>,
  ) {}

  get(id: string): Promise<TokenRecord | undefined> {
    return new Promise((resolve, reject) => this.queued.add({ id, resolve, reject }));
  }

  /** Sends the reads queued now and waits until every read asked for has its answer (the store's close). */
  async drain(): Promise<void> {
    this.queued.flush();
    while (this.reading.size > 0) await Promise.all([...this.reading]);
  }

  private async read(readers: readonly Reader[]): Promise<void> {
    // Two copies of one message in the same turn ask for the same id: one key in the request.
    const ids = [...new Set(readers.map((reader) => reader.id))];
    try {
      const found =
        ids.length === 1 ? new Map([[ids[0]!, await this.readOne(ids[0]!)]]) : await getTokens(this.at, ids);
      for (const reader of readers) reader.resolve(found.get(reader.id));
    } catch (error) {
      for (const reader of readers) reader.reject(error);
    }
  }
}
