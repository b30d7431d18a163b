/**
 * `tollgate/testing`: what a user needs to test handlers against the real protocol. A fresh SQLite store (better-sqlite3
 * is a peer dependency) and a minted token; drive the handler with `processSignal` from `tollgate/core`. And
 * `checkConvergence`, which runs a process over every order of its inputs (fast-check, an optional peer dependency
 * loaded only then, samples the orders of long lists).
 */
export {
  type ConvergenceInput,
  type ConvergenceOptions,
  type ConvergenceOutcome,
  type ConvergenceReport,
  type ConvergenceRun,
  checkConvergence,
  type DivergenceReason,
  type TimeoutInput,
} from '../process/convergence.js';
export {
  mintTestToken,
  type TestStoreOptions,
  type TestTokenOptions,
  testStore,
} from '../testing/sqlite.js';
