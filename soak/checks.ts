import type { TokenStore } from '../src/core/store.js';
import { deadLetterNames } from '../src/transports/amqp/topology.js';
import {
  applicationCounts,
  drainIds,
  forEachLimited,
  isPoisonedHop2,
  liveTokens,
  type Probe,
  tokenRows,
} from './inspect.js';
import { log, QUIESCE_TIMEOUT_MS, queues, SIGNALS } from './options.js';
import type { SignalPlan } from './plan.js';
import { ROLES, type Role, TOTAL_SHARDS, totalKey } from './shared.js';
import { state } from './state.js';

/* After quiescence: every logical signal must have changed each hop's state exactly once. */

export interface CheckInput {
  edgeStore: TokenStore;
  ownSchema: string | undefined;
  signalPlans: readonly SignalPlan[];
  poisonIds: ReadonlySet<string>;
  probe: Probe;
  /** Whether the run settled, and how it looked when it last checked. */
  quiet: boolean;
  lastState: string;
}

/** Counts what each hop applied and what was left behind, and names every violation. */
export async function checkRun({
  edgeStore,
  ownSchema,
  signalPlans,
  poisonIds,
  probe,
  quiet,
  lastState,
}: CheckInput) {
  const violations: string[] = [];
  const applied: Record<Role, number> = { ingress: 0, hop2: 0, hop3: 0, 'system-b': 0 };
  const totals: Record<Role, number> = { ingress: 0, hop2: 0, hop3: 0, 'system-b': 0 };
  let lost = 0;
  let doubles = 0;
  const examples: string[] = [];
  const appliedCount = await applicationCounts(edgeStore, ownSchema);
  await forEachLimited(signalPlans, 16, async (plan) => {
    let missing = false;
    for (const role of ROLES) {
      const value = await appliedCount(role, plan.id);
      const expected = plan.poison && role !== 'ingress' ? 0 : 1;
      applied[role] += value;
      if (value > 1) {
        doubles += value - 1;
        if (examples.length < 10) examples.push(`${plan.id} applied ${value}x at ${role}`);
      }
      if (value < expected) missing = true;
      if (value > expected && expected === 0 && examples.length < 10)
        examples.push(`poison ${plan.id} applied at ${role}`);
      if (value > expected && expected === 0) doubles += value;
    }
    if (missing) {
      lost += 1;
      if (examples.length < 10) examples.push(`${plan.id} missing at some hop`);
    }
  });
  for (const role of ROLES) {
    for (let shard = 0; shard < TOTAL_SHARDS; shard++) {
      totals[role] += Number((await edgeStore.readState(totalKey(role, shard)))?.value ?? 0);
    }
  }
  const expectedPerHop: Record<Role, number> = {
    ingress: SIGNALS,
    hop2: SIGNALS - poisonIds.size,
    hop3: SIGNALS - poisonIds.size,
    'system-b': SIGNALS - poisonIds.size,
  };
  for (const role of ROLES) {
    if (applied[role] !== expectedPerHop[role])
      violations.push(`${role}: ${applied[role]} state changes applied, expected ${expectedPerHop[role]}`);
    if (totals[role] !== applied[role])
      violations.push(
        `${role}: per-hop total ${totals[role]} differs from per-signal count ${applied[role]}`,
      );
  }
  if (lost > 0) violations.push(`${lost} signals lost`);
  if (doubles > 0) violations.push(`${doubles} double applications`);

  const inFlight = await liveTokens(edgeStore);
  const leftInFlight = inFlight.filter((token) => !isPoisonedHop2(token, poisonIds));
  if (leftInFlight.length > 0) {
    violations.push(`${leftInFlight.length} tokens left in flight`);
    for (const token of leftInFlight.slice(0, 5))
      examples.push(
        `in flight: ${token.id} ${token.status} ${token.mintedBy} ${JSON.stringify(token.payload)}`,
      );
  }

  const deadHop2 = await drainIds(await probe.channel(), deadLetterNames(queues.hop2).queue);
  const deadHop3 = await drainIds(await probe.channel(), deadLetterNames(queues.hop3).queue);
  const deadIds = new Set([...deadHop2.ids, ...deadHop3.ids]);
  const notPoison = [...deadIds].filter((id) => !poisonIds.has(id));
  const poisonNotDead = [...poisonIds].filter((id) => !deadIds.has(id));
  if (notPoison.length > 0)
    violations.push(`${notPoison.length} non-poison signals dead-lettered: ${notPoison.slice(0, 5)}`);
  if (poisonNotDead.length > 0)
    violations.push(`${poisonNotDead.length} poison signals not dead-lettered: ${poisonNotDead.slice(0, 5)}`);

  const rows = await tokenRows(edgeStore);
  const expectedRows = 4 * SIGNALS - 2 * poisonIds.size;
  if (rows.total !== expectedRows) violations.push(`token rows ${rows.total}, expected ${expectedRows}`);
  if (!quiet) violations.push(`no quiescence within ${QUIESCE_TIMEOUT_MS / 1000}s (${lastState})`);
  if (state.unexpectedExits.length > 0)
    log(`workers that exited on their own: ${state.unexpectedExits.join(', ')}`);
  if (state.startupFailures.length > 0)
    log(`workers that failed to start (restarted): ${state.startupFailures.join(', ')}`);

  return {
    violations,
    applied,
    expectedPerHop,
    totals,
    lost,
    doubles,
    examples,
    inFlight,
    leftInFlight,
    deadIds,
    deadHop2,
    deadHop3,
    rows,
    expectedRows,
  };
}
