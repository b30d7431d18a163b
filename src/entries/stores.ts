/**
 * `tollgate/stores`: a store opened from a serialisable description (configuration files, child processes). It
 * loads the chosen store's driver when it opens it, so only that store's peer dependency must be installed.
 */
export { openStore, type StoreConfig } from '../stores/open.js';
