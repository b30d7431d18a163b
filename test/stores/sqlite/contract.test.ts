import { tokenStoreContract } from '../../contract/token-store.contract.js';
import { freshStore } from '../../support/stores.js';

tokenStoreContract('SQLite', (options) => freshStore('sqlite', options));
