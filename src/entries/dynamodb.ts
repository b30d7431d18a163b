/** `tollgate/dynamodb`: the store on DynamoDB (`@aws-sdk/client-dynamodb` is a peer dependency). */
export { type DynamoDbStoreOptions, DynamoDbTokenStore } from '../stores/dynamodb/dynamodb-store.js';
export type {
  DynamoConditionCheckInput,
  DynamoDeleteInput,
  DynamoGetInput,
  DynamoItem,
  DynamoPutInput,
  DynamoTx,
  DynamoUpdateInput,
  OwnActionOptions,
} from '../stores/dynamodb/own-data.js';
export { ensureTables, stateTableDefinition, tokensTableDefinition } from '../stores/dynamodb/tables.js';
