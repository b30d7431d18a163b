/**
 * npm run bench [-- core amqp http gateway peer postgres scheduling] [--json <path>] [--messages=N] [--requests=N]
 *   [--duration=S] [--signals=N]
 * Prints figures and ratios, then every target row of issue 16 with its value, its target and met / not met; never
 * fails on a number. Writes the same results as JSON (default bench/results/<time>-<commit>.json, gitignored) for
 * bench/compare.ts. Starts DynamoDB Local itself for the DynamoDB rows; the postgres subset uses the local
 * PostgreSQL (and RabbitMQ for its AMQP row).
 *
 * The size flags shorten a smoke run: AMQP messages per contender on SQLite, HTTP requests per route, gateway
 * seconds per round, signals of the Powertools peer.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDynamoDbLocal } from '../test/support/dynamodb-local.js';

// Quiet the AWS SDK's once-per-process notice that its 2027 releases need Node 22 (the lock file pins one that does not).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

import { runAmqpBench } from './amqp.js';
import { runCoreBench } from './core.js';
import { runHttpBench } from './http.js';
import { collected, machine, printTargets, sourceCommit, writeResults } from './results.js';

const BENCHES = ['core', 'amqp', 'http', 'gateway', 'peer', 'postgres', 'scheduling'] as const;

const argv = process.argv.slice(2);
const flag = (name: string): number | undefined => {
  const arg = argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? Number(arg.slice(name.length + 3)) : undefined;
};
const jsonAt = argv.indexOf('--json');
const jsonArg = argv.find((a) => a.startsWith('--json='))?.slice('--json='.length);
const jsonPath = jsonArg ?? (jsonAt >= 0 ? argv[jsonAt + 1] : undefined);
const names = argv.filter((a, i) => !a.startsWith('--') && !(jsonAt >= 0 && i === jsonAt + 1));
const unknown = names.filter((name) => !(BENCHES as readonly string[]).includes(name));
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(', ')}; known: ${BENCHES.join(', ')}`);
  process.exit(2);
}
const wanted = new Set(names);
const want = (name: (typeof BENCHES)[number]) => wanted.size === 0 || wanted.has(name);

const startedAt = new Date();
const commit = sourceCommit();
const host = machine();
console.log(
  `bench at ${commit} on ${host.cpus} × ${host.model}, ${host.memoryGb} GB, Node ${host.node} (${host.platform})`,
);

// The core, amqp and peer benches have DynamoDB rows.
const dynamo = want('core') || want('amqp') || want('peer') ? await startDynamoDbLocal() : undefined;
try {
  const dynamoEndpoint = dynamo?.endpoint;
  const rawFloors = want('core') ? await runCoreBench(dynamoEndpoint ? { dynamoEndpoint } : {}) : undefined;
  if (want('amqp')) {
    const messages = flag('messages');
    await runAmqpBench({
      ...(dynamoEndpoint ? { dynamoEndpoint } : {}),
      ...(rawFloors ? { rawFloors } : {}),
      ...(messages ? { messages } : {}),
    });
  }
  if (want('http')) {
    const requests = flag('requests');
    await runHttpBench(requests ? { requests } : {});
  }
  if (want('gateway')) {
    const { runGatewayBench } = await import('./gateway.js');
    const durationS = flag('duration');
    await runGatewayBench(durationS ? { durationS } : {});
  }
  if (want('peer') && dynamoEndpoint) {
    const { runPowertoolsPeerBench } = await import('./powertools.js');
    const signals = flag('signals');
    await runPowertoolsPeerBench({ dynamoEndpoint, ...(signals ? { signals } : {}) });
  }
  if (want('postgres')) {
    const { runPostgresBench } = await import('./postgres.js');
    await runPostgresBench();
  }
  if (want('scheduling')) {
    const { runSchedulingBench } = await import('./scheduling.js');
    await runSchedulingBench();
  }
} finally {
  await dynamo?.stop();
}
console.log(`\npeak RSS of the bench process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);

const results = collected({ commit, startedAt, benches: BENCHES.filter(want) });
printTargets(results.targets);
const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
const path =
  jsonPath ?? join(fileURLToPath(new URL('.', import.meta.url)), 'results', `${stamp}-${commit}.json`);
writeResults(path, results);
console.log(`results written to ${path}`);
