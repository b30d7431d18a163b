import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { COMMIT_LIMITS } from '../../src/core/limits.js';
import { pendingToken } from '../../src/core/mint.js';
import { processSignal } from '../../src/core/processor.js';
import type { HandlerContext } from '../../src/core/unit-of-work.js';
import { SqliteTokenStore } from '../../src/stores/sqlite/sqlite-store.js';

const destination = { medium: 'amqp', exchange: 'x', routingKey: 'k' } as const;

/** One hop on a fresh in-memory store; resolves with its outcome or rejects with what it threw. */
async function hop(handler: (ctx: HandlerContext<{ n: number }>) => void) {
  const store = new SqliteTokenStore({ filename: ':memory:' });
  const root = pendingToken({ destination, payload: { n: 1 } }, { mintedBy: 'edge', now: Date.now() });
  await store.mint([root]);
  try {
    const outcome = await processSignal({
      store,
      endpoint: 'e',
      tokenId: root.id,
      payload: { n: 1 },
      handler,
    });
    return { outcome, status: (await store.getToken(root.id))?.status };
  } finally {
    await store.close();
  }
}

describe('the commit size check (every store, in the core)', () => {
  it('counts a state value in UTF-8 bytes: fewer characters than the limit can still be too large', async () => {
    // 200 Ki characters of two bytes each: 400 KiB, over the 380 KiB an item may have.
    const wide = 'é'.repeat(200 * 1024);
    expect(wide.length).toBeLessThan(COMMIT_LIMITS.maxItemBytes);
    const refused = hop((ctx) => ctx.put('wide', wide));
    await expect(refused).rejects.toMatchObject({ code: ErrorCodes.LIMIT_EXCEEDED });
  });

  it('lets a value just under the limit through, and commits it', async () => {
    const narrow = 'e'.repeat(COMMIT_LIMITS.maxItemBytes - 1024);
    const { outcome, status } = await hop((ctx) => ctx.put('narrow', narrow));
    expect(outcome.kind).toBe('processed');
    expect(status).toBe('consumed');
  });

  it('counts a minted token with its payload', async () => {
    const refused = hop((ctx) => ctx.emit(destination, { blob: '€'.repeat(130 * 1024) }));
    await expect(refused).rejects.toMatchObject({ code: ErrorCodes.LIMIT_EXCEEDED });
  });
});
