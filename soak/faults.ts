import type { FaultProxy, ProxyMode } from './fault-proxy.js';
import { ctl, log, pgWorkerApplication, vhost } from './options.js';
import type { FaultPlan } from './plan.js';
import { postgresAdmin } from './postgres-admin.js';
import { type Slot, sleep } from './processes.js';
import type { Prng, Role } from './shared.js';
import { count, state } from './state.js';

/* Injecting the planned faults: killing and crashing workers, cutting connections, proxies, broker restarts. */

export interface FaultTargets {
  byRole: Record<Role, Slot[]>;
  amqpProxy: FaultProxy;
  /** The proxy between the workers and the store (DynamoDB, PostgreSQL); none for SQLite. */
  storeProxy: FaultProxy | undefined;
  /** Draws how long a crashed worker stays down. */
  restartPrng: Prng;
}

/** Injects one planned fault at a time (several may run at once); each one counted in state.faults. */
export function faultInjector({ byRole, amqpProxy, storeProxy, restartPrng }: FaultTargets) {
  const proxyGeneration = new Map<FaultProxy, number>();
  const injectProxy = async (proxy: FaultProxy, kind: string, mode: ProxyMode, forMs: number) => {
    const generation = (proxyGeneration.get(proxy) ?? 0) + 1;
    proxyGeneration.set(proxy, generation);
    count(`${kind}:${mode.kind}`);
    proxy.setMode(mode);
    await sleep(forMs);
    if (proxyGeneration.get(proxy) === generation) proxy.setMode({ kind: 'pass' });
  };
  return async (fault: FaultPlan): Promise<void> => {
    switch (fault.kind) {
      case 'kill': {
        const slot = byRole[fault.role][fault.index]!;
        if (!slot.alive) return;
        count('kill');
        await slot.kill(fault.restartMs);
        return;
      }
      case 'crash-point': {
        const slot = byRole[fault.role][fault.index]!;
        count('crash-armed');
        await slot.kill(restartPrng.int(100, 1_000), { point: fault.point, after: fault.after });
        return;
      }
      case 'close-connections':
        if (state.brokerStopped) return;
        await ctl(['close_all_connections', '-p', vhost, 'tollgate soak fault']).then(
          () => count('close-connections'),
          (error) => log(`close_all_connections failed: ${String(error).split('\n')[0]}`),
        );
        return;
      case 'amqp-proxy':
        return injectProxy(amqpProxy, fault.kind, fault.mode, fault.forMs);
      case 'dynamodb-proxy':
      case 'postgres-proxy':
        if (storeProxy) return injectProxy(storeProxy, fault.kind, fault.mode, fault.forMs);
        return;
      case 'terminate-backends':
        // Like close-connections for the broker: the server ends the workers' sessions (SQLSTATE 57P01).
        await postgresAdmin((client) =>
          client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
            pgWorkerApplication,
          ]),
        ).then(
          (result) => {
            count('terminate-backends');
            state.backendsTerminated += result.rowCount ?? 0;
          },
          (error) => log(`terminate-backends failed: ${String(error).split('\n')[0]}`),
        );
        return;
      case 'broker-restart':
        if (state.brokerStopped) return;
        count('broker-restart');
        state.brokerStopped = true;
        try {
          await ctl(['stop_app'], 120_000);
          await sleep(fault.downMs);
        } finally {
          await ctl(['start_app'], 120_000);
          state.brokerStopped = false;
        }
        return;
    }
  };
}
