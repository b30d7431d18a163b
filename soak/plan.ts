import type { ProxyMode } from './fault-proxy.js';
import {
  BROKER_RESTARTS,
  DURATION_MS,
  FAULT_INTERVAL_MS,
  POISON_RATE,
  SIGNALS,
  storeKind,
  WORKER_COUNTS,
} from './options.js';
import { CRASH_POINTS, type Prng, ROLES, type Role } from './shared.js';

/* The seeded schedule: which signals are sent (copies, poison), and which faults are injected when. */

export interface SignalPlan {
  id: string;
  poison: boolean;
  /** Copies of the same token: which ingress slot, and after how long (0 = with the first). */
  copies: Array<{ ingress: number; afterMs: number }>;
}

export type FaultPlan =
  | { at: number; kind: 'kill'; role: Role; index: number; restartMs: number }
  | { at: number; kind: 'crash-point'; role: Role; index: number; point: string; after: number }
  | { at: number; kind: 'close-connections' }
  | { at: number; kind: 'amqp-proxy' | 'dynamodb-proxy' | 'postgres-proxy'; mode: ProxyMode; forMs: number }
  | { at: number; kind: 'terminate-backends' }
  | { at: number; kind: 'broker-restart'; downMs: number };

export function planSignals(prng: Prng): SignalPlan[] {
  const plans: SignalPlan[] = [];
  for (let i = 0; i < SIGNALS; i++) {
    const copies = [{ ingress: prng.int(0, WORKER_COUNTS.ingress - 1), afterMs: 0 }];
    const extra = prng.pick([0, 0, 1, 2]); // 1–3 copies, about half of them duplicated
    for (let c = 0; c < extra; c++) {
      copies.push({
        ingress: prng.int(0, WORKER_COUNTS.ingress - 1),
        afterMs: prng.chance(0.4) ? 0 : prng.int(20, 3_000),
      });
    }
    plans.push({ id: `s${i}`, poison: prng.chance(POISON_RATE), copies });
  }
  return plans;
}

export function planFaults(prng: Prng): FaultPlan[] {
  const weights: Array<[FaultPlan['kind'], number]> = [
    ['kill', 30],
    ['crash-point', 30],
    ['close-connections', 10],
    ['amqp-proxy', 12],
    ...(storeKind === 'dynamodb' ? ([['dynamodb-proxy', 18]] as Array<[FaultPlan['kind'], number]>) : []),
    ...(storeKind === 'postgres'
      ? ([
          ['postgres-proxy', 18],
          ['terminate-backends', 6],
        ] as Array<[FaultPlan['kind'], number]>)
      : []),
    ...(BROKER_RESTARTS ? ([['broker-restart', 4]] as Array<[FaultPlan['kind'], number]>) : []),
  ];
  const sum = weights.reduce((total, [, weight]) => total + weight, 0);
  const faults: FaultPlan[] = [];
  for (
    let at = prng.exponential(FAULT_INTERVAL_MS);
    at < DURATION_MS;
    at += prng.exponential(FAULT_INTERVAL_MS)
  ) {
    let roll = prng.next() * sum;
    let kind: FaultPlan['kind'] = 'kill';
    for (const [candidate, weight] of weights) {
      roll -= weight;
      if (roll < 0) {
        kind = candidate;
        break;
      }
    }
    const role = prng.pick(ROLES);
    const index = prng.int(0, WORKER_COUNTS[role] - 1);
    switch (kind) {
      case 'kill':
        faults.push({ at, kind, role, index, restartMs: prng.int(100, 2_000) });
        break;
      case 'crash-point':
        faults.push({ at, kind, role, index, point: prng.pick(CRASH_POINTS[role]), after: prng.int(1, 6) });
        break;
      case 'close-connections':
      case 'terminate-backends':
        faults.push({ at, kind });
        break;
      case 'amqp-proxy':
      case 'dynamodb-proxy':
      case 'postgres-proxy': {
        const which = prng.pick(['delay', 'reset', 'blackhole'] as const);
        const mode: ProxyMode =
          which === 'delay' ? { kind: 'delay', ms: prng.int(20, 300) } : { kind: which };
        const forMs = which === 'reset' ? prng.int(100, 1_500) : prng.int(500, 3_000);
        faults.push({ at, kind, mode, forMs });
        break;
      }
      case 'broker-restart':
        faults.push({ at, kind, downMs: prng.int(1_000, 4_000) });
        break;
    }
  }
  return faults;
}
