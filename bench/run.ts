/**
 * npm run bench [-- core amqp http gateway]
 * Prints figures and ratios; never a pass/fail. Starts DynamoDB Local itself for the DynamoDB rows.
 */
import { startDynamoDbLocal } from '../test/support/dynamodb-local.js';
import { runCoreBench } from './core.js';

const wanted = new Set(process.argv.slice(2));
const all = wanted.size === 0;

const dynamo = await startDynamoDbLocal();
try {
  if (all || wanted.has('core')) await runCoreBench({ dynamoEndpoint: dynamo.endpoint });
} finally {
  await dynamo.stop();
}
