import { InvalidArgumentError } from '../core/errors.js';
import { canonicalJson, type JsonValue } from '../core/fingerprint.js';
import type { Process, ProcessSignal } from './define.js';
import { everyOrder, factorial } from './explore.js';
import { processHandler } from './handler.js';
import { closer, inversions, once, twice } from './orders.js';
import {
  type ConvergenceInput,
  type ConvergenceOutcome,
  type Delivery,
  isTimeoutInput,
  NondeterminismError,
  type RunResult,
  World,
} from './simulation.js';

export type { ConvergenceInput, ConvergenceOutcome, TimeoutInput } from './simulation.js';

export interface ConvergenceOptions {
  /** Inputs delivered first, in this order, before every order of `inputs` (the signal that starts the process). */
  given?: readonly ConvergenceInput[];
  /** Up to this many inputs every order is tried; beyond, orders are sampled with fast-check. Default 8. */
  exhaustiveUpTo?: number;
  /** Orders sampled beyond `exhaustiveUpTo`. Default 1000. */
  samples?: number;
  /** fast-check seed of the sampling, to replay a report. */
  seed?: number;
  /** Also run every order with each input delivered twice, interleaved. Default true. */
  duplicates?: boolean;
}

/**
 * Why two orders did not converge. `nondeterministic-step`: a step decided differently when run twice on the same
 * state and signal, as the processor does after a version conflict.
 */
export type DivergenceReason = 'state' | 'emitted' | 'failed' | 'nondeterministic-step';

export interface ConvergenceRun {
  /** The inputs as delivered, by label: the signal type, `timeout:<name>`, `… (again)` for a second copy. */
  order: string[];
  outcome?: ConvergenceOutcome;
}

export interface ConvergenceReport {
  converged: boolean;
  /** Every order was tried (else they were sampled). */
  exhaustive: boolean;
  /** Orders of the inputs tried. */
  orders: number;
  /** Runs made: orders that can happen, once and with duplicates. */
  runs: number;
  /** Orders that cannot happen, skipped: a timeout firing before any step scheduled it. */
  skipped: number;
  /** The sampling seed, when orders were sampled. */
  seed?: number;
  /** The inputs in the order given, and where they led. */
  expected: ConvergenceRun;
  /** The diverging order with the fewest deliveries and, among those, the fewest swaps from the given order. */
  diverging?: ConvergenceRun & { reason: DivergenceReason; inversions: number };
  /** A readable account, for an assertion message. */
  message: string;
}

/**
 * Runs the process over every order of `inputs` (up to `exhaustiveUpTo`; sampled beyond), each also with every
 * input delivered twice, and checks that all end in the same instances (state and pending timeouts), the same
 * multiset of sent signals and the same failed inputs. A timeout input fires the pending timeout of that name;
 * it is dropped once cancelled or once its process is done. The process runs through `processHandler` on an
 * in-memory store, so what is checked is what runs.
 */
export async function checkConvergence<S extends JsonValue, Sig extends ProcessSignal>(
  process: Process<S, Sig>,
  inputs: readonly ConvergenceInput[],
  options: ConvergenceOptions = {},
): Promise<ConvergenceReport> {
  const given = options.given ?? [];
  const all = [...given, ...inputs];
  const labels = labelsOf(all);
  const handler = processHandler(process, { clock: () => 0 });
  const variants = options.duplicates === false ? [once] : [once, twice];
  const offset = (d: Delivery): Delivery => ({ input: d.input + given.length, again: d.again });
  const deliver = (world: World, delivery: Delivery) =>
    world.deliver(all, offset(delivery), labelOf(labels, offset(delivery)));

  // The world after the given inputs, from which every order starts.
  const start = new World(process.name, handler);
  for (const [input] of given.entries()) {
    if (!(await start.deliver(all, { input, again: false }, labels[input] as string))) {
      throw new InvalidArgumentError('a given timeout fires before any given input schedules it');
    }
  }
  const play = async (deliveries: readonly Delivery[]): Promise<RunResult> => {
    const world = start.clone();
    try {
      for (const delivery of deliveries) if (!(await deliver(world, delivery))) return { kind: 'infeasible' };
    } catch (error) {
      if (error instanceof NondeterminismError) return { kind: 'nondeterministic', input: error.input };
      throw error;
    }
    return { kind: 'ran', outcome: world.outcome() };
  };
  const orderOf = (deliveries: readonly Delivery[]) => deliveries.map((d) => labelOf(labels, offset(d)));

  const identity = inputs.map((_, i) => i);
  const baseline = await play(once(identity));
  if (baseline.kind === 'infeasible') {
    throw new InvalidArgumentError(
      'the inputs as given are an order that cannot happen: list each timeout after the input whose step schedules it (or in `given`)',
    );
  }
  const expected: ConvergenceRun = { order: orderOf(once(identity)) };
  if (baseline.kind === 'ran') expected.outcome = baseline.outcome;

  const tally = { orders: 0, runs: 0, skipped: 0 };
  let found: Found | undefined;
  /** Counts a run and keeps it if it diverges closer to the given order than what was found so far. */
  const judge = (order: number[], variant: Variant, run: RunResult, weight = 1) => {
    if (run.kind === 'infeasible') {
      if (variant === once) tally.skipped += weight;
      return false;
    }
    tally.runs += weight;
    const reason = reasonOf(baseline, run);
    if (reason === undefined) return false;
    const candidate: Found = { reason, run, deliveries: variant(order), inversions: inversions(order) };
    if (found === undefined || candidate.inversions < found.inversions) found = candidate;
    return true;
  };

  const exhaustive = inputs.length <= (options.exhaustiveUpTo ?? 8);
  let seed: number | undefined;
  if (exhaustive) {
    tally.orders = factorial(inputs.length);
    // Every order delivered once first: a divergence there is shorter than any with duplicates.
    for (const variant of variants) {
      await everyOrder(start, inputs.length, variant === twice, deliver, (leaf) => {
        judge(leaf.order, variant, leaf.run, leaf.weight);
      });
      if (found) break;
    }
  } else {
    // Loaded here only: fast-check is an optional peer dependency, needed for sampling alone.
    const fc = await import('fast-check');
    let failing: Variant | undefined;
    const property = fc.asyncProperty(
      fc.shuffledSubarray(identity, { minLength: inputs.length, maxLength: inputs.length }),
      async (order) => {
        tally.orders += 1;
        for (const variant of variants) {
          if (judge(order, variant, await play(variant(order)))) {
            failing = variant;
            return false;
          }
        }
        return true;
      },
    );
    const details = await fc.check(property, {
      numRuns: options.samples ?? 1000,
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
    });
    seed = details.seed;
    const variant = failing;
    const counterexample = details.counterexample?.[0];
    if (details.failed && variant && counterexample) {
      const diverges = async (order: number[]) => judge(order, variant, await play(variant(order)));
      found = undefined;
      const order = await closer(counterexample, diverges);
      judge(order, variant, await play(variant(order)));
    }
  }

  const report: ConvergenceReport = {
    converged: found === undefined,
    exhaustive,
    ...tally,
    expected,
    message: '',
  };
  if (seed !== undefined) report.seed = seed;
  if (found) {
    const diverging: NonNullable<ConvergenceReport['diverging']> = {
      order: orderOf(found.deliveries),
      reason: found.reason,
      inversions: found.inversions,
    };
    if (found.run.kind === 'ran') diverging.outcome = found.run.outcome;
    report.diverging = diverging;
  }
  report.message = describe(process.name, report, labels.slice(0, given.length));
  return report;
}

type Variant = (order: readonly number[]) => Delivery[];

interface Found {
  reason: DivergenceReason;
  run: RunResult;
  deliveries: Delivery[];
  inversions: number;
}

function reasonOf(baseline: RunResult, run: RunResult): DivergenceReason | undefined {
  if (baseline.kind !== 'ran' || run.kind !== 'ran') return 'nondeterministic-step';
  const [a, b] = [baseline.outcome, run.outcome];
  if (canonicalJson(a.instances) !== canonicalJson(b.instances)) return 'state';
  if (canonicalJson(a.emitted) !== canonicalJson(b.emitted)) return 'emitted';
  if (canonicalJson(a.failed) !== canonicalJson(b.failed)) return 'failed';
  return undefined;
}

/** A name per input: its type (numbered when several share one) or `timeout:<name>`. */
function labelsOf(inputs: readonly ConvergenceInput[]): string[] {
  const raw = inputs.map((input) =>
    isTimeoutInput(input)
      ? `timeout:${input.timeout}${input.instance !== undefined ? `@${input.instance}` : ''}`
      : String((input as ProcessSignal).type),
  );
  const seen = new Map<string, number>();
  return raw.map((label) => {
    const shared = raw.filter((other) => other === label).length > 1;
    const n = (seen.get(label) ?? 0) + 1;
    seen.set(label, n);
    return shared ? `${label}#${n}` : label;
  });
}

function labelOf(labels: readonly string[], delivery: Delivery): string {
  const label = labels[delivery.input] as string;
  return delivery.again ? `${label} (again)` : label;
}

function describe(name: string, report: ConvergenceReport, given: readonly string[]): string {
  const how = report.exhaustive ? 'every order' : `${report.orders} sampled orders (seed ${report.seed})`;
  const after = given.length > 0 ? ` after ${given.join(' → ')}` : '';
  const skipped = report.skipped > 0 ? `, ${report.skipped} that cannot happen skipped` : '';
  if (!report.diverging) {
    return `process ${name} converges over ${how} of ${report.expected.order.length} inputs${after} (${report.runs} runs${skipped})`;
  }
  const show = (run: ConvergenceRun) =>
    run.outcome === undefined ? '(a step was not deterministic)' : canonicalJson(run.outcome);
  return [
    `process ${name} does not converge (${report.diverging.reason})${after}:`,
    `  ${report.expected.order.join(' → ')}`,
    `    ends in ${show(report.expected)}`,
    `  ${report.diverging.order.join(' → ')}`,
    `    ends in ${show(report.diverging)}`,
  ].join('\n');
}
