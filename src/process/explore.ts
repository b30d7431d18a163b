import type { Delivery, RunResult, World } from './simulation.js';
import { NondeterminismError } from './simulation.js';

/** One order of the inputs and where it led; `weight` orders when a whole subtree ended the same way early. */
export interface Leaf {
  order: number[];
  run: RunResult;
  weight: number;
}

/**
 * Plays every order of `n` inputs, depth first from `start` (the world after the given inputs). Orders that share
 * a prefix share its run: the world is copied at each branch, so 8 inputs cost about e·8! deliveries instead of
 * 8·8!. With `twice`, each input is delivered again right after the next one (as `twice` in orders.ts does).
 * A subtree that cannot happen (a timeout before its schedule) or whose step is not deterministic is one leaf.
 */
export async function everyOrder(
  start: World,
  n: number,
  twice: boolean,
  deliver: (world: World, delivery: Delivery) => Promise<boolean>,
  visit: (leaf: Leaf) => void,
): Promise<void> {
  const walk = async (world: World, prefix: number[], left: number[]): Promise<void> => {
    for (const next of left) {
      const order = [...prefix, next];
      const rest = left.filter((input) => input !== next);
      const branch = world.clone();
      const end = (run: RunResult) =>
        visit({ order: [...order, ...rest], run, weight: factorial(rest.length) });
      try {
        const deliveries: Delivery[] = [{ input: next, again: false }];
        if (twice && prefix.length > 0) deliveries.push({ input: prefix.at(-1) as number, again: true });
        if (twice && rest.length === 0) deliveries.push({ input: next, again: true });
        let feasible = true;
        for (const delivery of deliveries) if (feasible) feasible = await deliver(branch, delivery);
        if (!feasible) {
          end({ kind: 'infeasible' });
          continue;
        }
      } catch (error) {
        if (!(error instanceof NondeterminismError)) throw error;
        end({ kind: 'nondeterministic', input: error.input });
        continue;
      }
      if (rest.length === 0) visit({ order, run: { kind: 'ran', outcome: branch.outcome() }, weight: 1 });
      else await walk(branch, order, rest);
    }
  };
  await walk(
    start,
    [],
    Array.from({ length: n }, (_, i) => i),
  );
}

export function factorial(n: number): number {
  let product = 1;
  for (let i = 2; i <= n; i++) product *= i;
  return product;
}
