import { ConfigError } from '../core/errors.js';
import type { JsonValue } from '../core/fingerprint.js';
import type { Handler } from '../core/processor.js';
import type { ScheduleWhen } from '../core/scheduling.js';
import type { HandlerContext } from '../core/unit-of-work.js';
import { advance, type ProcessInstance } from './advance.js';
import {
  correlationOf,
  instanceKey,
  type Process,
  type ProcessSignal,
  readSignal,
  type TimeoutSpec,
} from './define.js';

/** What one step did, as the handler returns it (an HTTP route answers with it). */
export interface StepReport {
  process: string;
  /** The instance (correlation id). */
  id: string;
  type: string;
  /**
   * `started`/`updated`: the instance is kept; `done`: it is deleted; `ignored`: the signal may not start an
   * instance and none was running, so its token was consumed without effect.
   */
  outcome: 'started' | 'updated' | 'done' | 'ignored';
  /** Token ids of the signals the step sent. */
  emitted: string[];
  /** Timeouts scheduled by this step: name → token id. */
  scheduled: Record<string, string>;
  /** Names of the timeouts revoked in this step's commit. */
  cancelled: string[];
}

export interface ProcessHandlerOptions {
  /** Stamps `startedAt` of new instances. Default Date.now. */
  clock?: () => number;
}

/**
 * A process as a Tollgate handler, for `amqp.consume(queue, handler)` or an exactly-once fastify route. One
 * signal is one step: the instance is read, the pure step runs, and the new instance (or its deletion), the
 * signals it sends, the timeouts it schedules and the ones it cancels all commit with the consumption of the
 * signal's token. Two signals for one instance at once: the second re-runs on the state the first wrote.
 */
export function processHandler<S extends JsonValue, Sig extends ProcessSignal>(
  process: Process<S, Sig>,
  options: ProcessHandlerOptions = {},
): Handler<JsonValue, StepReport> {
  const clock = options.clock ?? Date.now;
  return async (ctx: HandlerContext<JsonValue>): Promise<StepReport> => {
    const signal = readSignal(process, ctx.payload);
    const id = correlationOf(process, signal);
    const key = instanceKey(process.name, id);
    const instance = (await ctx.get(key)) as ProcessInstance<S> | undefined;
    const next = advance(process, instance, signal, ctx.token.id);
    const report: StepReport = {
      process: process.name,
      id,
      type: signal.type,
      outcome: 'ignored',
      emitted: [],
      scheduled: {},
      cancelled: [],
    };
    if (next.kind === 'ignored') return report;

    for (const { destination, payload } of next.emit) report.emitted.push(ctx.emit(destination, payload));
    for (const { name, tokenId } of next.cancel) {
      // False when the timeout already fired or ended: nothing is left to revoke.
      if (await ctx.cancel(tokenId)) report.cancelled.push(name);
    }
    const timeouts = { ...next.timeouts };
    for (const timeout of next.schedule) {
      const token = ctx.schedule(timeout.destination, timeout.payload, whenOf(timeout));
      timeouts[timeout.name] = token.id;
      report.scheduled[timeout.name] = token.id;
    }
    if (next.done) {
      if (instance !== undefined) ctx.delete(key);
      report.outcome = 'done';
      return report;
    }
    const kept: ProcessInstance<S> = {
      state: next.state,
      timeouts,
      conversationId: instance?.conversationId ?? ctx.conversationId,
      startedAt: instance?.startedAt ?? clock(),
    };
    ctx.put(key, kept as unknown as JsonValue);
    report.outcome = next.started ? 'started' : 'updated';
    return report;
  };
}

/** The part of a fastify request the helper needs: the plugin's unit of work (`request.tollgate`). */
export interface ExactlyOnceRequest {
  tollgate: HandlerContext<JsonValue> | null;
}

/**
 * A fastify route handler running the process on an exactly-once route of the tollgate plugin:
 * `app.post('/payments', { config: { exactlyOnce: true } }, processRoute(payment))`. It answers with the step's
 * report, which the plugin keeps for replay.
 */
export function processRoute<S extends JsonValue, Sig extends ProcessSignal>(
  process: Process<S, Sig>,
  options: ProcessHandlerOptions = {},
): (request: ExactlyOnceRequest) => Promise<StepReport> {
  const handler = processHandler(process, options);
  return async (request) => {
    if (!request.tollgate) {
      throw new ConfigError(
        'route config exactlyOnce',
        `process ${process.name} needs an exactly-once route`,
      );
    }
    return handler(request.tollgate);
  };
}

function whenOf(timeout: TimeoutSpec): ScheduleWhen {
  const when: ScheduleWhen = {};
  if (timeout.at !== undefined) when.at = timeout.at;
  if (timeout.afterMs !== undefined) when.afterMs = timeout.afterMs;
  return when;
}
