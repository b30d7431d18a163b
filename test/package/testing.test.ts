import { describe, expect, it } from 'vitest';
import { processSignal } from '../../src/entries/core.js';
import { mintTestToken, testStore } from '../../src/entries/testing.js';

describe('tollgate/testing', () => {
  it('runs a handler once against a fresh store and drops the same signal the second time', async () => {
    const store = testStore();
    const payload = { orderId: 'o-1', amount: 30 };
    const token = await mintTestToken(store, payload);
    const receive = () =>
      processSignal({
        store,
        endpoint: 'billing',
        tokenId: token.id,
        payload,
        handler: async (ctx) => {
          ctx.put('revenue', ((await ctx.get<number>('revenue')) ?? 0) + payload.amount);
        },
      });
    expect((await receive()).kind).toBe('processed');
    expect((await receive()).kind).toBe('dropped');
    expect((await store.readState('revenue'))?.value).toBe(30);
    await store.close();
  });

  it('gives each test its own store, in memory or in a temp file of its own', async () => {
    const stores = [testStore(), testStore({ file: true }), testStore({ file: true })];
    const token = await mintTestToken(stores[0]!, { n: 1 });
    const tokens = await Promise.all(stores.map((store) => mintTestToken(store, { n: 2 })));
    for (const [i, store] of stores.entries()) {
      const held = await Promise.all(
        [token, ...tokens].map(async (t) => (await store.getToken(t.id)) != null),
      );
      expect(held, `store ${i}`).toEqual([i === 0, ...tokens.map((_, j) => j === i)]);
      await store.close();
    }
  });
});
