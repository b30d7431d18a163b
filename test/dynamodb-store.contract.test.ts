import { tokenStoreContract } from './contract/token-store.contract.js';
import { freshStore } from './support/stores.js';

tokenStoreContract('DynamoDB Local', (options) => freshStore('dynamodb', options));
