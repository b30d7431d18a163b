/**
 * npm run bench [-- core amqp http gateway postgres scheduling]
 * Prints figures and ratios; never a pass/fail. Starts DynamoDB Local itself for the DynamoDB rows; the postgres
 * subset uses the local PostgreSQL (and RabbitMQ for its AMQP row).
 */
import { startDynamoDbLocal } from '../test/support/dynamodb-local.js';

// Quiet the AWS SDK's once-per-process notice that its 2027 releases need Node 22 (the lock file pins one that does not).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

import { runAmqpBench } from './amqp.js';
import { runCoreBench } from './core.js';
import { runHttpBench } from './http.js';

const wanted = new Set(process.argv.slice(2));
const all = wanted.size === 0;
const want = (name: string) => all || wanted.has(name);

// Only the core and amqp benches have DynamoDB rows.
const dynamo = want('core') || want('amqp') ? await startDynamoDbLocal() : undefined;
try {
  const dynamoEndpoint = dynamo?.endpoint;
  const rawFloors = want('core') ? await runCoreBench(dynamoEndpoint ? { dynamoEndpoint } : {}) : undefined;
  if (want('amqp'))
    await runAmqpBench({
      ...(dynamoEndpoint ? { dynamoEndpoint } : {}),
      ...(rawFloors ? { rawFloors } : {}),
    });
  if (want('http')) await runHttpBench();
  if (want('gateway')) {
    const { runGatewayBench } = await import('./gateway.js');
    await runGatewayBench();
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
