/**
 * One worker process of the soak conversation (started, killed and restarted by soak/run.ts):
 *   ingress  — fastify, exactly-once POST /signal; applies and emits an AMQP signal to the hop2 queue
 *   hop2     — AMQP consumer of the hop2 queue; applies and emits to the hop3 queue (throws on poison)
 *   hop3     — AMQP consumer of the hop3 queue; applies and emits an HTTP signal to system B
 *   system-b — fastify in the second "system", exactly-once POST /signal; applies
 * Every handler counts its application of the signal (`applied/<role>/<id>` in the key-value state, read with its
 * version, or on PostgreSQL a row of the application's own table written with `ctx.tx`; a double application
 * shows as 2) and increments a sharded per-role total. The spec comes as JSON in SOAK_WORKER_SPEC;
 * TOLLGATE_CRASH_AT may be set.
 * Prints "SOAK WORKER READY" once it takes signals.
 */

import Fastify from 'fastify';
import type { SignalSender } from '../src/core/dispatcher.js';
import type { JsonValue } from '../src/core/fingerprint.js';
import { pendingToken } from '../src/core/mint.js';
import { processSignal } from '../src/core/processor.js';
import type { HandlerContext } from '../src/core/unit-of-work.js';
import { openStore } from '../src/stores/open.js';
import type { PgTx } from '../src/stores/postgres/postgres-store.js';
import { queueDestination } from '../src/transports/amqp/destination.js';
import { type AmqpTollgate, createAmqpTollgate } from '../src/transports/amqp/tollgate.js';
import { HttpSignalSender } from '../src/transports/http/client.js';
import { tollgateOf, tollgatePlugin } from '../src/transports/http/plugin.js';
import {
  appliedKey,
  lineLogger,
  ownTableSql,
  type SoakPayload,
  shardOf,
  totalKey,
  type WorkerSpec,
} from './shared.js';

const spec = JSON.parse(process.env.SOAK_WORKER_SPEC ?? '{}') as WorkerSpec;
// The harness holds an IPC channel to every worker: if the harness dies, so do its workers.
process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));
const logger = lineLogger({ worker: spec.name, pid: process.pid });
const store = await openStore(spec.storeConfig);

/** Relays recover quickly in a soak: a token pending for 2 s is re-dispatched. */
const RELAY = { delayMs: 2_000, intervalMs: 500, leaseMs: 5_000 };
/** Poison is retried a little, then dead-lettered. */
const ATTEMPTS = { attempts: 3, baseDelayMs: 50, maxDelayMs: 300 };

/** Counts one application of the signal at this hop, in the hop's commit: the only store-specific bit. */
const countApplication = applicationCounter(spec);

async function apply(ctx: HandlerContext<SoakPayload>): Promise<void> {
  await countApplication(ctx);
  const total = totalKey(spec.role, shardOf(ctx.payload.id));
  ctx.put(total, ((await ctx.get<number>(total)) ?? 0) + 1);
}

/**
 * In the key-value state (`applied/<role>/<id>`, read with its version, so a second application shows as 2), or,
 * with an own schema (PostgreSQL), in the application's own table through `ctx.tx`, the hop's open transaction
 * where the token is consumed. The sharded totals stay in the key-value state either way: on PostgreSQL the
 * final check comparing the two also shows that the handler's SQL and its state writes commit together.
 */
function applicationCounter(worker: WorkerSpec): (ctx: HandlerContext<SoakPayload>) => Promise<void> {
  const ownSchema = worker.ownSchema;
  if (ownSchema === undefined) {
    return async (ctx) => {
      const key = appliedKey(worker.role, ctx.payload.id);
      ctx.put(key, ((await ctx.get<number>(key)) ?? 0) + 1);
    };
  }
  const { record } = ownTableSql(ownSchema);
  return async (ctx) => {
    await (ctx.tx as PgTx).query(record, [worker.role, ctx.payload.id]);
  };
}

function forward(payload: SoakPayload): JsonValue {
  return payload.poison ? { id: payload.id, poison: true } : { id: payload.id };
}

let tollgate: AmqpTollgate | undefined;

/** This worker's AMQP side: a connection named after the slot and process, with its relay. */
function connectTollgate(senders: SignalSender[] = []): Promise<AmqpTollgate> {
  return createAmqpTollgate({
    url: spec.amqpUrl,
    store,
    name: `soak-${spec.name}-${process.pid}`,
    logger,
    relay: RELAY,
    ...(senders.length > 0 ? { senders } : {}),
  });
}
let close: () => Promise<void> = async () => undefined;

if (spec.role === 'ingress' || spec.role === 'system-b') {
  const app = Fastify({ logger: false });
  if (spec.role === 'ingress') {
    tollgate = await connectTollgate();
  }
  await app.register(tollgatePlugin, {
    store,
    endpoint: spec.role,
    logger,
    ...(tollgate ? { dispatcher: tollgate.publisher.dispatcher } : {}),
  });
  if (spec.bug === 'fresh-token' && spec.role === 'system-b') {
    // The negative control: every copy of a signal is applied under a token of its own.
    app.post('/signal', async (request) => {
      const payload = request.body as SoakPayload;
      const token = pendingToken(
        {
          destination: { medium: 'http', method: 'POST', url: 'http://127.0.0.1/bug' },
          payload: forward(payload),
        },
        { mintedBy: 'bug', now: Date.now() },
      );
      await store.mint([token]);
      await processSignal({ store, endpoint: 'system-b', tokenId: token.id, payload, handler: apply });
      return { id: payload.id };
    });
  }
  app.post(
    spec.bug === 'fresh-token' && spec.role === 'system-b' ? '/unused' : '/signal',
    { config: { exactlyOnce: true } },
    async (request) => {
      const ctx = tollgateOf<SoakPayload>(request);
      await apply(ctx);
      if (spec.role === 'ingress') ctx.emit(queueDestination(spec.queues.hop2), forward(ctx.payload));
      return { id: ctx.payload.id, role: spec.role };
    },
  );
  await app.listen({ host: '127.0.0.1', port: spec.port ?? 0 });
  close = async () => {
    await app.close();
    await tollgate?.close();
  };
} else {
  const http = new HttpSignalSender({
    retry: { attempts: 3, baseDelayMs: 50, maxDelayMs: 500 },
    timeoutMs: 3_000,
  });
  tollgate = await connectTollgate(spec.role === 'hop3' ? [http] : []);
  if (spec.role === 'hop2') {
    await tollgate.consume<SoakPayload>(
      spec.queues.hop2,
      async (ctx) => {
        if (ctx.payload.poison) throw new Error(`poison ${ctx.payload.id}`);
        await apply(ctx);
        ctx.emit(queueDestination(spec.queues.hop3), forward(ctx.payload));
      },
      { endpoint: 'hop2', concurrency: 4, attempts: ATTEMPTS },
    );
  } else {
    await tollgate.consume<SoakPayload>(
      spec.queues.hop3,
      async (ctx) => {
        await apply(ctx);
        const urls = spec.systemBUrls;
        const url = urls[shardOf(ctx.payload.id) % urls.length] as string;
        ctx.emit({ medium: 'http', method: 'POST', url }, forward(ctx.payload));
      },
      { endpoint: 'hop3', concurrency: 4, attempts: ATTEMPTS, senders: [http] },
    );
  }
  close = async () => {
    http.close();
    await tollgate?.close();
  };
}

process.stdout.write('SOAK WORKER READY\n');

process.once('SIGTERM', () => {
  const timer = setTimeout(() => process.exit(1), 5_000);
  void close()
    .then(() => store.close())
    .catch(() => undefined)
    .finally(() => {
      clearTimeout(timer);
      process.exit(0);
    });
});
