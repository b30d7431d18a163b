import type { StoreConfig } from '../src/stores/open.js';
import type { FaultProxy } from './fault-proxy.js';
import type { Slot } from './processes.js';

/*
 * What the harness holds while it runs: what it started (to stop it at the end, even after a failure or a
 * signal) and what it counted. One object, shared by the run, the fault injection and the clean-up.
 */
export const state = {
  /** Faults injected, by kind. */
  faults: {} as Record<string, number>,
  /** Workers that exited on their own (not SIGKILL) after they were ready: a robustness bug worth a look. */
  unexpectedExits: [] as string[],
  /** Workers that exited before they were ready (e.g. the broker connection was closed while they started). */
  startupFailures: [] as string[],
  slots: [] as Slot[],
  proxies: [] as FaultProxy[],
  brokerStopped: false,
  stopping: false,
  vhostCreated: false,
  dynamo: undefined as { endpoint: string; stop(): Promise<void> } | undefined,
  /** DynamoDB Local started by this run (rather than given with --dynamodb-endpoint). */
  ownDynamo: false,
  /** PostgreSQL: the store's schema and the application's own, made for this run and dropped at its end. */
  pgSchemas: undefined as { store: string; app: string } | undefined,
  backendsTerminated: 0,
  storeConfig: undefined as StoreConfig | undefined,
};

export function count(kind: string): void {
  state.faults[kind] = (state.faults[kind] ?? 0) + 1;
}
