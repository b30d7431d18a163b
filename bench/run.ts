/**
 * npm run bench [-- core amqp http gateway]
 * Prints figures and ratios; never a pass/fail. Starts DynamoDB Local itself for the DynamoDB rows.
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

const dynamo = await startDynamoDbLocal();
try {
  const rawFloors = want('core') ? await runCoreBench({ dynamoEndpoint: dynamo.endpoint }) : undefined;
  if (want('amqp'))
    await runAmqpBench({ dynamoEndpoint: dynamo.endpoint, ...(rawFloors ? { rawFloors } : {}) });
  if (want('http')) await runHttpBench();
  if (want('gateway')) {
    const { runGatewayBench } = await import('./gateway.js');
    await runGatewayBench();
  }
} finally {
  await dynamo.stop();
}
console.log(`\npeak RSS of the bench process: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
