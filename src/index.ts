// The root entry is the protocol core, as `tollgate/core`. Stores, transports and the gateway have their own
// entries (package.json "exports"), so an import loads only the drivers the user chose.
export * from './entries/core.js';
