/**
 * The soak: a four-hop conversation (HTTP ingress → AMQP hop2 → AMQP hop3 → HTTP system B), each hop run as
 * real worker processes, fed with signals while a seeded schedule of faults runs; then, after quiescence, every
 * logical signal must have changed each hop's state exactly once.
 *
 *   node --import tsx soak/run.ts --store sqlite|dynamodb|postgres --signals N --duration S --seed X [--broker-restarts]
 *
 * Prints a report and one line `SOAK RESULT {json}`; exits 1 on any violation (the seed replays the schedule).
 * See soak/README.md for the options and what is checked.
 */

import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { JsonValue } from '../src/core/fingerprint.js';
import type { TokenStore } from '../src/core/store.js';
import type { TokenRecord } from '../src/core/token.js';
import { openStore } from '../src/stores/open.js';
import { deadLetterNames, declareConsumerQueue } from '../src/transports/amqp/topology.js';
import { HttpSignalSender } from '../src/transports/http/client.js';
import { HttpEdgeClient } from '../src/transports/http/edge.js';
import { createHttpRelay } from '../src/transports/http/relay.js';
import { checkRun } from './checks.js';
import { FaultProxy } from './fault-proxy.js';
import { faultInjector } from './faults.js';
import { isPoisonedHop2, liveTokens, Probe } from './inspect.js';
import {
  AMQP_BASE,
  amqpUrl,
  args,
  BROKER_RESTARTS,
  CONCURRENCY,
  ctl,
  DURATION_MS,
  log,
  MAX_BACKLOG,
  NODE_ARGS,
  QUIESCE_TIMEOUT_MS,
  queues,
  replayArgs,
  runDir,
  SEED,
  SIGNALS,
  STATUS_SHARDS,
  sourceCommit,
  storeKind,
  vhost,
  WORKER_COUNTS,
} from './options.js';
import { planFaults, planSignals, type SignalPlan } from './plan.js';
import { postgresAdmin } from './postgres-admin.js';
import { Slot, sleep, stablePort } from './processes.js';
import { printReport } from './report.js';
import { Prng, ROLES, type Role, type SoakPayload, type SoakReport, type WorkerSpec } from './shared.js';
import { count, state } from './state.js';
import { setUpStore } from './store-setup.js';

/** Last resort (synchronous): never leave workers running or the broker stopped. */
process.on('exit', () => {
  for (const slot of state.slots) slot.killNow();
  if (state.brokerStopped) {
    try {
      execFileSync('rabbitmqctl', [...NODE_ARGS, 'start_app'], { timeout: 120_000, stdio: 'ignore' });
    } catch {
      // nothing more we can do
    }
  }
  if (state.vhostCreated) {
    try {
      execFileSync('rabbitmqctl', [...NODE_ARGS, 'delete_vhost', vhost], {
        timeout: 60_000,
        stdio: 'ignore',
      });
    } catch {
      // left behind; its name says where it came from
    }
  }
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    state.stopping = true;
    const timer = setTimeout(() => process.exit(130), 30_000);
    void cleanUp(false).finally(() => {
      clearTimeout(timer);
      process.exit(130);
    });
  });
}

let store: TokenStore | undefined;
let probe: Probe | undefined;
let stopRelay: (() => Promise<void>) | undefined;
let closeSender: (() => void) | undefined;

async function cleanUp(success: boolean): Promise<void> {
  state.stopping = true;
  await Promise.allSettled(state.slots.map((slot) => slot.stop()));
  if (state.brokerStopped) {
    await ctl(['start_app'], 120_000).catch((error) => log(String(error)));
    state.brokerStopped = false;
  }
  await stopRelay?.().catch(() => undefined);
  closeSender?.();
  await store?.close().catch(() => undefined);
  await Promise.allSettled(state.proxies.map((proxy) => proxy.close()));
  await probe?.close();
  if (state.vhostCreated) {
    await ctl(['delete_vhost', vhost]).catch((error) => log(String(error)));
    state.vhostCreated = false;
  }
  if (state.storeConfig?.kind === 'dynamodb' && !state.ownDynamo && state.dynamo) {
    const client = new DynamoDBClient({
      endpoint: state.dynamo.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    for (const table of [state.storeConfig.tokensTable, state.storeConfig.stateTable]) {
      await client.send(new DeleteTableCommand({ TableName: table })).catch(() => undefined);
    }
    client.destroy();
  }
  if (state.pgSchemas) {
    const schemas = state.pgSchemas;
    await postgresAdmin(async (client) => {
      for (const schema of [schemas.app, schemas.store])
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    }).then(
      () => {
        state.pgSchemas = undefined;
      },
      (error) => log(`PostgreSQL schemas ${schemas.store}, ${schemas.app} not dropped: ${String(error)}`),
    );
  }
  if (state.ownDynamo) await state.dynamo?.stop().catch(() => undefined);
  if (success && !args['keep-logs']) rmSync(runDir, { recursive: true, force: true });
}

async function main(): Promise<number> {
  mkdirSync(runDir, { recursive: true });
  log(
    `store=${storeKind}${STATUS_SHARDS > 1 ? ` (status shards ${STATUS_SHARDS})` : ''} signals=${SIGNALS} duration=${DURATION_MS / 1000}s workers=${JSON.stringify(WORKER_COUNTS)} ` +
      `broker-restarts=${BROKER_RESTARTS} logs=${runDir}`,
  );
  const signalPlans = planSignals(new Prng(`${SEED}/signals`));
  const faultPlans = planFaults(new Prng(`${SEED}/faults`));
  const restartPrng = new Prng(`${SEED}/restarts`);
  const poisonIds = new Set(signalPlans.filter((plan) => plan.poison).map((plan) => plan.id));

  // The broker: a vhost of our own, reached by the workers through the AMQP fault proxy.
  await ctl(['add_vhost', vhost]);
  state.vhostCreated = true;
  await ctl(['set_permissions', '-p', vhost, AMQP_BASE.username || 'guest', '.*', '.*', '.*']);
  const amqpProxy = await FaultProxy.start({
    name: 'amqp',
    targetHost: AMQP_BASE.hostname,
    targetPort: Number(AMQP_BASE.port || 5672),
  });
  state.proxies.push(amqpProxy);
  const directAmqp = amqpUrl(AMQP_BASE.host);
  const proxiedAmqp = amqpUrl(`127.0.0.1:${amqpProxy.port}`);
  // The harness's own connection, straight to the broker; `close_all_connections` closes it too, so it reopens.
  probe = new Probe(directAmqp);
  for (const queue of [queues.hop2, queues.hop3])
    await declareConsumerQueue(await probe.channel(), queue, {});

  // The store: the harness talks to it directly, the workers through the fault proxy (DynamoDB, PostgreSQL).
  const { storeConfig, workerStoreConfig, storeProxy, ownSchema } = await setUpStore();
  store = await openStore(storeConfig);
  const edgeStore = store;

  // The workers.
  const ports: Record<'ingress' | 'system-b', number[]> = { ingress: [], 'system-b': [] };
  for (const role of ['ingress', 'system-b'] as const) {
    for (let i = 0; i < WORKER_COUNTS[role]; i++) ports[role].push(await stablePort());
  }
  const systemBUrls = ports['system-b'].map((port) => `http://127.0.0.1:${port}/signal`);
  const ingressUrls = ports.ingress.map((port) => `http://127.0.0.1:${port}/signal`);
  const byRole: Record<Role, Slot[]> = { ingress: [], hop2: [], hop3: [], 'system-b': [] };
  for (const role of ROLES) {
    for (let i = 0; i < WORKER_COUNTS[role]; i++) {
      const spec: WorkerSpec = {
        role,
        name: `${role}-${i + 1}`,
        storeConfig: workerStoreConfig,
        ...(ownSchema !== undefined ? { ownSchema } : {}),
        amqpUrl: proxiedAmqp,
        queues,
        systemBUrls,
        ...(args.bug === 'fresh-token' ? { bug: 'fresh-token' as const } : {}),
        ...(role === 'ingress' || role === 'system-b' ? { port: ports[role][i] as number } : {}),
      };
      const slot = new Slot(spec, runDir, {
        crashFired: (_slot, arming) => count(`crash-point:${slot.role}:${arming.point}`),
        unexpectedExit: (_slot, code, signal, wasReady) => {
          if (state.stopping) return;
          if (wasReady) state.unexpectedExits.push(`${slot.name} code=${code} signal=${signal}`);
          else state.startupFailures.push(`${slot.name} code=${code} signal=${signal}`);
        },
      });
      state.slots.push(slot);
      byRole[role].push(slot);
    }
  }
  const started = await Promise.all(state.slots.map((slot) => slot.start()));
  if (started.some((ready) => !ready)) throw new Error(`workers did not start; see the logs in ${runDir}`);
  log(`${state.slots.length} workers ready`);

  // The edge: mints each root token, then sends copies of it to ingress workers; its relay re-sends the rest.
  const sender = new HttpSignalSender({
    retry: { attempts: 8, baseDelayMs: 100, maxDelayMs: 2_000 },
    timeoutMs: 5_000,
  });
  const edge = new HttpEdgeClient({ store: edgeStore, mintedBy: 'soak-edge', sender });
  const relaySender = new HttpSignalSender({
    retry: { attempts: 2, baseDelayMs: 100, maxDelayMs: 500 },
    timeoutMs: 5_000,
  });
  const { relay } = createHttpRelay({
    store: edgeStore,
    sender: relaySender,
    delayMs: 3_000,
    intervalMs: 1_000,
    leaseMs: 5_000,
  });
  relay.start();
  stopRelay = () => relay.stop();
  closeSender = () => {
    sender.close();
    relaySender.close();
  };

  const copies = { sent: 0, processed: 0, duplicate: 0, alreadyConsumed: 0, failed: 0, retries: 0 };
  const sendOne = async (plan: SignalPlan): Promise<void> => {
    const payload: SoakPayload = plan.poison ? { id: plan.id, poison: true } : { id: plan.id };
    const first = plan.copies[0]!;
    const token = await mintWithRetry(edge, ingressUrls[first.ingress] as string, payload);
    await Promise.all(
      plan.copies.map(async (copy, index) => {
        if (copy.afterMs > 0) await sleep(copy.afterMs);
        copies.sent += 1;
        const url = ingressUrls[copy.ingress] as string;
        try {
          const delivery =
            index === 0
              ? await edge.deliver(token)
              : await sender.deliver({ ...token, destination: { medium: 'http', method: 'POST', url } });
          copies.retries += delivery.attempts - 1;
          if (delivery.outcome === 'processed') copies.processed += 1;
          else if (delivery.outcome === 'duplicate') copies.duplicate += 1;
          else copies.alreadyConsumed += 1;
        } catch {
          copies.failed += 1; // the token stays pending: a relay delivers it
        }
      }),
    );
  };

  const begin = Date.now();
  let sentSignals = 0;
  let backlogPauses = 0;
  const queueBacklog = async (): Promise<number> => {
    const counts = await Promise.all([queues.hop2, queues.hop3].map((queue) => probe?.messageCount(queue)));
    // -1 (broker not reachable right now) counts as no backlog: the faults must not stall the edge.
    return counts.reduce<number>((sum, n) => sum + Math.max(0, n ?? 0), 0);
  };
  const sending = (async () => {
    const running = new Set<Promise<void>>();
    for (let i = 0; i < signalPlans.length; i++) {
      const due = begin + (i * DURATION_MS) / signalPlans.length;
      if (due > Date.now()) await sleep(due - Date.now());
      while (running.size >= CONCURRENCY) await Promise.race(running);
      // Backpressure for the whole conversation, not only the edge's HTTP hop: a store that slows down (DynamoDB
      // Local as its tables grow) must not leave an unbounded backlog in the queues for after the run.
      if (i % 50 === 0) {
        while (!state.stopping && (await queueBacklog()) > MAX_BACKLOG) {
          backlogPauses += 1;
          await sleep(500);
        }
      }
      const task: Promise<void> = sendOne(signalPlans[i]!)
        .catch((error) => log(`signal ${signalPlans[i]?.id} not minted: ${String(error)}`))
        .finally(() => running.delete(task));
      running.add(task);
      sentSignals += 1;
    }
    await Promise.all(running);
  })();

  // The faults, each at its planned moment while signals flow.
  const activeFaults = new Set<Promise<void>>();
  const inject = faultInjector({ byRole, amqpProxy, storeProxy, restartPrng });
  let sendingDone = false;
  void sending.finally(() => {
    sendingDone = true;
  });
  const faulting = (async () => {
    for (const fault of faultPlans) {
      while (!sendingDone && !state.stopping && Date.now() - begin < fault.at)
        await sleep(Math.min(100, fault.at));
      if (sendingDone || state.stopping) break;
      const task: Promise<void> = inject(fault)
        .catch((error) => log(`fault ${fault.kind} failed: ${String(error)}`))
        .finally(() => activeFaults.delete(task));
      activeFaults.add(task);
    }
  })();
  const progress = setInterval(() => {
    log(
      `t=${Math.round((Date.now() - begin) / 1000)}s signals=${sentSignals}/${SIGNALS} copies=${copies.sent} ` +
        `faults=${Object.values(state.faults).reduce((a, b) => a + b, 0)}`,
    );
  }, 10_000);
  try {
    await sending;
    await faulting;
    await Promise.allSettled([...activeFaults]);
  } finally {
    clearInterval(progress);
  }
  const sendingMs = Date.now() - begin;
  log(`sent ${SIGNALS} signals (${copies.sent} copies) in ${Math.round(sendingMs / 1000)}s; quiescing`);

  // Quiescence: faults off, every worker up and disarmed, then wait for the conversation to settle.
  for (const proxy of state.proxies) proxy.setMode({ kind: 'pass' });
  if (state.brokerStopped) {
    await ctl(['start_app'], 120_000);
    state.brokerStopped = false;
  }
  for (const slot of state.slots) if (slot.armed) await slot.kill(100);
  for (let i = 0; i < 600 && state.slots.some((slot) => !slot.isReady); i++) await sleep(100);
  const quiesceStart = Date.now();
  let quiet = false;
  let lastState = '';
  let stableChecks = 0;
  while (Date.now() - quiesceStart < QUIESCE_TIMEOUT_MS) {
    const inFlight = await liveTokens(edgeStore).catch(() => undefined);
    const hop2Ready = await probe.messageCount(queues.hop2);
    const hop3Ready = await probe.messageCount(queues.hop3);
    const dead = await probe.messageCount(deadLetterNames(queues.hop2).queue);
    const stuck = inFlight?.filter((token) => !isPoisonedHop2(token, poisonIds)) ?? [{} as TokenRecord];
    lastState = `in-flight=${inFlight?.length ?? '?'} (not poison: ${stuck.length}) hop2-queue=${hop2Ready} hop3-queue=${hop3Ready} dead=${dead}`;
    const settled = stuck.length === 0 && hop2Ready === 0 && hop3Ready === 0 && dead >= poisonIds.size;
    stableChecks = settled ? stableChecks + 1 : 0;
    if (stableChecks >= 3) {
      quiet = true;
      break;
    }
    await sleep(1_000);
  }
  const quiesceMs = Date.now() - quiesceStart;
  log(`quiescence ${quiet ? 'reached' : 'NOT reached'} after ${Math.round(quiesceMs / 1000)}s: ${lastState}`);

  // The checks.
  const checked = await checkRun({ edgeStore, ownSchema, signalPlans, poisonIds, probe, quiet, lastState });
  const { violations, inFlight, leftInFlight, deadHop2, deadHop3, rows } = checked;

  const report: SoakReport & Record<string, unknown> = {
    seed: SEED,
    store: storeKind,
    commit: sourceCommit(),
    ok: violations.length === 0,
    violations,
    logicalSignals: SIGNALS,
    poison: poisonIds.size,
    copies,
    faults: Object.fromEntries(Object.entries(state.faults).sort()),
    faultsTotal: Object.entries(state.faults)
      .filter(([kind]) => !kind.startsWith('crash-point:'))
      .reduce((sum, [, n]) => sum + n, 0),
    appliedPerHop: checked.applied,
    expectedPerHop: checked.expectedPerHop,
    totalsPerHop: checked.totals,
    lost: checked.lost,
    doubleApplications: checked.doubles,
    tokensLeftInFlight: leftInFlight.length,
    poisonTokensInFlight: inFlight.length - leftInFlight.length,
    deadLettered: {
      signals: checked.deadIds.size,
      messages: deadHop2.messages + deadHop3.messages,
      hop3Queue: deadHop3.messages,
    },
    store_: {
      tokenRows: rows.total,
      expectedTokenRows: checked.expectedRows,
      byStatus: rows.byStatus,
      rowsPerSignal: +(rows.total / SIGNALS).toFixed(2),
    },
    workers: {
      slots: state.slots.length,
      starts: state.slots.reduce((sum, slot) => sum + slot.starts, 0),
      exitedOnTheirOwn: state.unexpectedExits,
      startupFailures: state.startupFailures.length,
    },
    proxies: Object.fromEntries(state.proxies.map((proxy) => [proxy.options.name, proxy.stats])),
    ...(storeKind === 'postgres'
      ? { postgres: { ...state.pgSchemas, backendsTerminated: state.backendsTerminated } }
      : {}),
    timing: {
      sendingSeconds: Math.round(sendingMs / 1000),
      quiescenceSeconds: Math.round(quiesceMs / 1000),
      backlogPauses,
    },
    examples: checked.examples,
    logs: runDir,
  };
  printReport(report);
  process.stdout.write(`SOAK RESULT ${JSON.stringify(report)}\n`);
  if (violations.length > 0) {
    process.stdout.write(`SOAK FAILED — replay with: node --import tsx soak/run.ts ${replayArgs()}\n`);
    return 1;
  }
  return 0;
}

async function mintWithRetry(edge: HttpEdgeClient, url: string, payload: SoakPayload): Promise<TokenRecord> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await edge.mint({ method: 'POST', url }, payload as unknown as JsonValue);
    } catch (error) {
      if (attempt >= 10) throw error;
      await sleep(200 * attempt);
    }
  }
}

let exitCode = 1;
try {
  exitCode = await main();
} catch (error) {
  log(`harness failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.stdout.write(
    `SOAK RESULT ${JSON.stringify({ seed: SEED, store: storeKind, ok: false, violations: [`harness failure: ${String(error)}`], logs: runDir })}\n`,
  );
  exitCode = 1;
} finally {
  await cleanUp(exitCode === 0);
}
process.exit(exitCode);
