import type { Delivery } from './simulation.js';

/*
 * The orders a convergence check tries, as pure functions of the number of inputs. An order is a permutation of
 * input indexes; how far it is from the given order is its count of inversions (pairs delivered the other way
 * round), so "the shortest diverging order" is the one with the fewest swaps from what the user wrote.
 */

/** Pairs of inputs delivered in the other order than given. */
export function inversions(order: readonly number[]): number {
  let count = 0;
  for (let i = 0; i < order.length; i++)
    for (let j = i + 1; j < order.length; j++) if ((order[i] as number) > (order[j] as number)) count += 1;
  return count;
}

/** The order delivered once each. */
export function once(order: readonly number[]): Delivery[] {
  return order.map((input) => ({ input, again: false }));
}

/**
 * The order with every input delivered a second time (a redelivery, with the same token), interleaved: each
 * copy arrives right after the input that follows its original, the last one at the end.
 */
export function twice(order: readonly number[]): Delivery[] {
  const deliveries: Delivery[] = [];
  order.forEach((input, i) => {
    deliveries.push({ input, again: false });
    if (i > 0) deliveries.push({ input: order[i - 1] as number, again: true });
  });
  const last = order.at(-1);
  if (last !== undefined) deliveries.push({ input: last, again: true });
  return deliveries;
}

/**
 * Moves a diverging order towards the given one while it still diverges: each move swaps two inputs delivered the
 * wrong way round, which removes at least one inversion. A sampled counterexample becomes one that is easier to
 * read, usually a single swap away from the given order.
 */
export async function closer(
  order: readonly number[],
  diverges: (order: number[]) => Promise<boolean>,
): Promise<number[]> {
  let current = [...order];
  for (let moved = true; moved; ) {
    moved = false;
    search: for (let i = 0; i < current.length; i++) {
      for (let j = i + 1; j < current.length; j++) {
        if ((current[i] as number) < (current[j] as number)) continue;
        const swapped = [...current];
        [swapped[i], swapped[j]] = [swapped[j] as number, swapped[i] as number];
        if (await diverges(swapped)) {
          current = swapped;
          moved = true;
          break search;
        }
      }
    }
  }
  return current;
}
