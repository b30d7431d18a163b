import type { CrashPoint } from '../../src/core/crash.js';
import type { StoreConfig } from '../../src/stores/open.js';
import type { ConsumerStats } from '../../src/transports/amqp/index.js';
import { type Child, runFixture } from '../http/support.js';

interface Common {
  store: StoreConfig;
  amqpUrl: string;
  /** The relay re-sends a token still pending this long after its mint. */
  relayDelayMs: number;
}

/** System A: consumes `queue`, sends to `receiver` (B's base URL) with `key` as the secret of credential 'b'. */
export interface SystemASpec extends Common {
  system: 'a';
  queue: string;
  receiver: string;
  key: string;
}

/** System B: listens on `port`, issues tokens to callers with `key`, books shipments from its `shipments` queue. */
export interface SystemBSpec extends Common {
  system: 'b';
  shipments: string;
  port: number;
  key: string;
}

export type SystemSpec = SystemASpec | SystemBSpec;

export interface RunningSystem extends Child {
  /** The consumer stats the process printed when it stopped on SIGTERM. */
  stats(): ConsumerStats | undefined;
}

/** Starts fixtures/system.ts in a process of its own; with `crash`, it SIGKILLs itself at that point. */
export async function startSystem(
  spec: SystemSpec,
  crash?: { at: CrashPoint; after: number },
): Promise<RunningSystem> {
  const child = runFixture('../../systems/fixtures/system.ts', {
    SYSTEM_SPEC: JSON.stringify(spec),
    TOLLGATE_CRASH_AT: crash?.at ?? '',
    TOLLGATE_CRASH_AFTER: String(crash?.after ?? 1),
  });
  await child.line(spec.system === 'a' ? /^ready$/m : /^listening \d+$/m, 30_000);
  return {
    ...child,
    stats() {
      const match = child.output().match(/^stats (.+)$/m);
      return match ? (JSON.parse(match[1]!) as ConsumerStats) : undefined;
    },
  };
}
