import { tokenStoreContract } from '../../contract/token-store.contract.js';
import { freshStore } from '../../support/stores.js';

// Each store gets a schema of its own; support/postgres.ts drops them after this file.
tokenStoreContract('PostgreSQL', (options) => freshStore('postgres', options));
