import { describe, expect, it } from 'vitest';
import { closer, inversions, once, twice } from '../../src/process/orders.js';

describe('orders of a convergence check', () => {
  it('counts the pairs delivered the other way round', () => {
    expect(inversions([0, 1, 2, 3])).toBe(0);
    expect(inversions([1, 0, 2, 3])).toBe(1);
    expect(inversions([3, 2, 1, 0])).toBe(6);
  });

  it('delivers every input a second time, right after the input that follows it', () => {
    expect(once([2, 0, 1])).toEqual([
      { input: 2, again: false },
      { input: 0, again: false },
      { input: 1, again: false },
    ]);
    expect(twice([2, 0, 1])).toEqual([
      { input: 2, again: false },
      { input: 0, again: false },
      { input: 2, again: true },
      { input: 1, again: false },
      { input: 0, again: true },
      { input: 1, again: true },
    ]);
  });

  it('moves a diverging order to one swap from the given order when one swap is enough', async () => {
    // Diverges whenever the last input is not delivered last.
    const diverges = async (order: number[]) => order.at(-1) !== 5;
    const moved = await closer([1, 2, 3, 4, 5, 0], diverges);
    expect(inversions(moved)).toBe(1);
    expect(await diverges(moved)).toBe(true);
  });
});
