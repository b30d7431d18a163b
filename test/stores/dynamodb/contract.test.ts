import { openStore } from '../../../src/stores/open.js';
import { tokenStoreContract } from '../../contract/token-store.contract.js';
import { freshStore, freshStoreConfig } from '../../support/stores.js';

tokenStoreContract('DynamoDB Local', (options) => freshStore('dynamodb', options));

// The same contract with the status index spread over shards: relay claims, sweeps, stats and listings read
// every shard and must see exactly what one partition would show.
tokenStoreContract('DynamoDB Local, byStatus in 4 shards', (options) => {
  const config = freshStoreConfig('dynamodb', options);
  if (config.kind !== 'dynamodb') throw new Error('expected a DynamoDB config');
  return openStore({ ...config, statusShards: 4 });
});
