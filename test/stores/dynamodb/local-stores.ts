import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll } from 'vitest';
import { newTokenId } from '../../../src/core/ids.js';
import {
  type DynamoDbStoreOptions,
  DynamoDbTokenStore,
} from '../../../src/stores/dynamodb/dynamodb-store.js';
import {
  type DynamoDbLocal,
  LOCAL_CREDENTIALS,
  LOCAL_REGION,
  startDynamoDbLocal,
} from '../../support/dynamodb-local.js';

/**
 * One DynamoDB Local for the test file that calls this (started before its tests, stopped after), and stores
 * on fresh tables in it, closed at the end.
 */
export function useDynamoDbLocal() {
  let local: DynamoDbLocal | undefined;
  let client: DynamoDBClient | undefined;
  const stores: DynamoDbTokenStore[] = [];

  beforeAll(async () => {
    local = await startDynamoDbLocal();
    client = new DynamoDBClient({
      endpoint: local.endpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
  }, 120_000);

  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
    client?.destroy();
    await local?.stop();
  });

  const uniqueNames = () => {
    const unique = newTokenId()
      .replace(/[^A-Za-z0-9]/g, '')
      .slice(0, 12);
    return { tokensTable: `d_${unique}_tokens`, stateTable: `d_${unique}_state` };
  };

  /** Closes the store with the others at the end of the file. */
  const track = (store: DynamoDbTokenStore) => {
    stores.push(store);
    return store;
  };

  return {
    /** A client of the running DynamoDB Local. */
    client: () => client!,
    endpoint: () => local!.endpoint,
    uniqueNames,
    track,
    /** A store on fresh tables, created for it. */
    openStore: async (options: Partial<DynamoDbStoreOptions> = {}) =>
      track(
        await DynamoDbTokenStore.open({
          clientConfig: { endpoint: local!.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS },
          ...uniqueNames(),
          createTables: true,
          ...options,
        }),
      ),
  };
}
