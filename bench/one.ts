/**
 * Runs one bench in this process and writes what it recorded (tables, notes, target rows) as JSON: bench/run.ts
 * starts one such process per bench. Not meant to be run by hand; `npm run bench -- <bench>` does it.
 *
 *   node --import tsx bench/one.ts <bench> <results.json> [--messages=N] [--requests=N] [--duration=S] [--signals=N]
 *
 * The DynamoDB Local endpoint comes in BENCH_DYNAMO_ENDPOINT; the raw transaction floors of the core bench, which the
 * AMQP bench's DynamoDB row is judged against, in BENCH_RAW_FLOORS (JSON).
 */
import { pathToFileURL } from 'node:url';
import { collected, sourceCommit, writeResults } from './results.js';

// Quiet the AWS SDK's once-per-process notice that its 2027 releases need Node 22 (the lock file pins one that does not).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/** In run order: the benches with DynamoDB rows first, so that DynamoDB Local stops before the others run. */
export const BENCHES = ['core', 'amqp', 'peer', 'http', 'gateway', 'postgres', 'scheduling'] as const;
export type BenchName = (typeof BENCHES)[number];
/** The benches with rows on DynamoDB Local: it is started for the first of them. */
export const ON_DYNAMODB: ReadonlySet<BenchName> = new Set(['core', 'amqp', 'peer']);

/** What a bench process writes: the run's results, and the floors the core bench measured. */
export interface OneBenchResults extends ReturnType<typeof collected> {
  rawFloors?: Record<string, number>;
}

async function runOne(name: BenchName, argv: readonly string[]): Promise<OneBenchResults['rawFloors']> {
  const flag = (flagName: string): number | undefined => {
    const arg = argv.find((a) => a.startsWith(`--${flagName}=`));
    return arg ? Number(arg.slice(flagName.length + 3)) : undefined;
  };
  const dynamoEndpoint = process.env.BENCH_DYNAMO_ENDPOINT;
  const rawFloors = process.env.BENCH_RAW_FLOORS
    ? (JSON.parse(process.env.BENCH_RAW_FLOORS) as Record<string, number>)
    : undefined;
  switch (name) {
    case 'core': {
      const { runCoreBench } = await import('./core.js');
      return runCoreBench(dynamoEndpoint ? { dynamoEndpoint } : {});
    }
    case 'amqp': {
      const { runAmqpBench } = await import('./amqp.js');
      const messages = flag('messages');
      await runAmqpBench({
        ...(dynamoEndpoint ? { dynamoEndpoint } : {}),
        ...(rawFloors ? { rawFloors } : {}),
        ...(messages ? { messages } : {}),
      });
      return undefined;
    }
    case 'http': {
      const { runHttpBench } = await import('./http.js');
      const requests = flag('requests');
      await runHttpBench(requests ? { requests } : {});
      return undefined;
    }
    case 'gateway': {
      const { runGatewayBench } = await import('./gateway.js');
      const durationS = flag('duration');
      await runGatewayBench(durationS ? { durationS } : {});
      return undefined;
    }
    case 'peer': {
      if (!dynamoEndpoint) throw new Error('the peer bench needs BENCH_DYNAMO_ENDPOINT');
      const { runPowertoolsPeerBench } = await import('./powertools.js');
      const signals = flag('signals');
      await runPowertoolsPeerBench({ dynamoEndpoint, ...(signals ? { signals } : {}) });
      return undefined;
    }
    case 'postgres': {
      const { runPostgresBench } = await import('./postgres.js');
      await runPostgresBench();
      return undefined;
    }
    case 'scheduling': {
      const { runSchedulingBench } = await import('./scheduling.js');
      await runSchedulingBench();
      return undefined;
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [name, out, ...flags] = process.argv.slice(2);
  if (!name || !out || !(BENCHES as readonly string[]).includes(name)) {
    throw new Error(`usage: bench/one.ts <${BENCHES.join('|')}> <results.json> [size flags]`);
  }
  const startedAt = new Date();
  const rawFloors = await runOne(name as BenchName, flags);
  console.log(
    `peak RSS of the ${name} bench process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
  );
  const results: OneBenchResults = collected({ commit: sourceCommit(), startedAt, benches: [name] });
  if (rawFloors) results.rawFloors = rawFloors;
  writeResults(out, results);
}
