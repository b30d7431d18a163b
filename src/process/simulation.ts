import { ErrorCodes, isTollgateError } from '../core/errors.js';
import { canonicalJson, type JsonValue } from '../core/fingerprint.js';
import type { Handler } from '../core/processor.js';
import type { StateItem } from '../core/store.js';
import type { Destination, TokenRecord } from '../core/token.js';
import type { HandlerContext } from '../core/unit-of-work.js';
import type { ProcessInstance } from './advance.js';
import type { Emission, ProcessSignal } from './define.js';
import type { StepReport } from './handler.js';

/*
 * An in-memory stand-in for the store and the relay, just faithful enough to replay a process over an order of
 * inputs: tokens are consumed once (a duplicate is dropped), cancelled timeouts are revoked, and a timeout fires
 * only while it is pending. It runs the real processHandler, so the checker tests the code that runs in production.
 */

/** A fired timeout of the process, by the name its step scheduled it under. */
export interface TimeoutInput {
  timeout: string;
  /** The instance whose timeout fires; needed only when several instances have one of that name. */
  instance?: string;
}

/** An input of a convergence check: a signal delivered to the process, or one of its timeouts firing. */
export type ConvergenceInput = ProcessSignal | TimeoutInput;

/** One delivery of an order: which input (by index), and whether it is a second copy. */
export interface Delivery {
  input: number;
  again: boolean;
}

/** The end of a run, compared across orders: canonical, so key order and token ids do not matter. */
export interface ConvergenceOutcome {
  /** Running instances by id: state and the names of their pending timeouts. */
  instances: Record<string, { state: JsonValue; timeouts: string[] }>;
  /** Every signal sent, as a sorted multiset. */
  emitted: Emission[];
  /** Inputs whose step threw, with the error's code: their tokens stay unconsumed. */
  failed: string[];
}

export type RunResult =
  | { kind: 'ran'; outcome: ConvergenceOutcome }
  /** A timeout fired before any step scheduled it: an order that cannot happen. */
  | { kind: 'infeasible' }
  | { kind: 'nondeterministic'; input: string };

type SimStatus = 'scheduled' | 'live' | 'consumed' | 'revoked';

interface Staged {
  writes: Map<string, JsonValue | undefined>;
  emitted: Emission[];
  scheduled: Array<{ id: string; destination: Destination; payload: JsonValue }>;
  revoked: Set<string>;
}

const CONVERSATION = 'convergence-check';

export class World {
  private readonly state = new Map<string, JsonValue>();
  private readonly tokens = new Map<string, { status: SimStatus; payload: JsonValue }>();
  private readonly emitted: Emission[] = [];
  private readonly failed = new Set<string>();
  /** Timeout names ever pending, per instance key: a later firing of one that is gone is dropped. */
  private readonly scheduledEver = new Set<string>();
  /** The token each input delivered, so that its second copy carries the same one. */
  private readonly delivered = new Map<number, string | null>();

  constructor(
    private readonly processName: string,
    private readonly handler: Handler<JsonValue, StepReport>,
  ) {}

  /** An independent copy, to try several continuations of one prefix. Stored values are never changed in place. */
  clone(): World {
    const copy = new World(this.processName, this.handler);
    for (const [key, value] of this.state) copy.state.set(key, value);
    for (const [id, token] of this.tokens) copy.tokens.set(id, { ...token });
    copy.emitted.push(...this.emitted);
    for (const entry of this.failed) copy.failed.add(entry);
    for (const entry of this.scheduledEver) copy.scheduledEver.add(entry);
    for (const [input, id] of this.delivered) copy.delivered.set(input, id);
    return copy;
  }

  /** Delivers one input; false if the order is infeasible; throws NondeterminismError. */
  async deliver(inputs: readonly ConvergenceInput[], delivery: Delivery, label: string): Promise<boolean> {
    const tokenId = delivery.again
      ? this.delivered.get(delivery.input)
      : this.tokenFor(inputs[delivery.input] as ConvergenceInput, delivery.input);
    if (tokenId === undefined) return false;
    this.delivered.set(delivery.input, tokenId);
    if (tokenId === null) return true; // a timeout cancelled, or whose process finished: never sent
    const token = this.tokens.get(tokenId);
    if (token?.status !== 'live') return true; // a duplicate, or a revoked timeout: dropped
    await this.step(tokenId, token.payload, label);
    return true;
  }

  outcome(): ConvergenceOutcome {
    const instances: ConvergenceOutcome['instances'] = {};
    const prefix = `process/${this.processName}/`;
    for (const [key, value] of [...this.state].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!key.startsWith(prefix)) continue;
      const instance = value as unknown as ProcessInstance;
      instances[key.slice(prefix.length)] = {
        state: instance.state,
        timeouts: Object.keys(instance.timeouts).sort(),
      };
    }
    const emitted = [...this.emitted].sort((a, b) => compare(canonicalJson(a), canonicalJson(b)));
    return { instances, emitted, failed: [...this.failed].sort() };
  }

  /** The token an input arrives with: undefined if infeasible, null if it is never sent. */
  private tokenFor(input: ConvergenceInput, index: number): string | null | undefined {
    if (!isTimeoutInput(input)) {
      const id = `input-${index}`;
      if (!this.tokens.has(id)) this.tokens.set(id, { status: 'live', payload: input as JsonValue });
      return id;
    }
    const { timeout, instance } = input;
    const prefix = `process/${this.processName}/`;
    for (const [key, value] of this.state) {
      if (!key.startsWith(prefix)) continue;
      if (instance !== undefined && key !== prefix + instance) continue;
      const id = (value as unknown as ProcessInstance).timeouts[timeout];
      const token = id === undefined ? undefined : this.tokens.get(id);
      if (id !== undefined && token?.status === 'scheduled') {
        token.status = 'live';
        return id;
      }
    }
    const ever = [...this.scheduledEver].some(
      (entry) =>
        entry.endsWith(`#${timeout}`) &&
        (instance === undefined || entry === `${prefix + instance}#${timeout}`),
    );
    return ever ? null : undefined;
  }

  private async step(tokenId: string, payload: JsonValue, label: string): Promise<void> {
    const first = await this.run(tokenId, payload);
    const second = await this.run(tokenId, payload);
    // A step runs again on fresh state after a version conflict: it must decide the same from the same input.
    if (canonicalJson(summary(first)) !== canonicalJson(summary(second)))
      throw new NondeterminismError(label);
    if ('error' in first) {
      this.failed.add(`${label}: ${first.error}`);
      return;
    }
    const staged = first.staged;
    for (const [key, value] of staged.writes) {
      if (value === undefined) this.state.delete(key);
      else {
        this.state.set(key, value);
        for (const name of Object.keys((value as unknown as ProcessInstance).timeouts ?? {}))
          this.scheduledEver.add(`${key}#${name}`);
      }
    }
    for (const id of staged.revoked) {
      const token = this.tokens.get(id);
      if (token) token.status = 'revoked';
    }
    this.emitted.push(...staged.emitted);
    for (const { id, payload: scheduled } of staged.scheduled)
      this.tokens.set(id, { status: 'scheduled', payload: scheduled });
    (this.tokens.get(tokenId) as { status: SimStatus }).status = 'consumed';
  }

  private async run(
    tokenId: string,
    payload: JsonValue,
  ): Promise<{ staged: Staged; result: StepReport } | { error: string }> {
    const context = new SimContext(this.state, this.tokens, tokenId, payload);
    try {
      const result = await this.handler(context);
      return { staged: context.staged, result };
    } catch (error) {
      // As the processor reports it: a step that throws something else failed the handler.
      return { error: isTollgateError(error) ? error.code : ErrorCodes.HANDLER_FAILED };
    }
  }
}

export function isTimeoutInput(input: ConvergenceInput): input is TimeoutInput {
  return typeof (input as Partial<TimeoutInput>).timeout === 'string' && !('type' in input);
}

/** A step answered differently to the same state and signal. */
export class NondeterminismError extends Error {
  constructor(readonly input: string) {
    super(`the step for ${input} is not a function of (state, signal): two runs decided differently`);
  }
}

function summary(run: { staged: Staged; result: StepReport } | { error: string }): JsonValue {
  if ('error' in run) return { error: run.error };
  const { writes, emitted, scheduled, revoked } = run.staged;
  return {
    writes: [...writes].map(([key, value]) => [key, value ?? null]),
    emitted: emitted as unknown as JsonValue,
    scheduled: scheduled as unknown as JsonValue,
    revoked: [...revoked].sort(),
    result: run.result as unknown as JsonValue,
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The handler context of one simulated run. Token ids derive from the incoming one, so two runs agree. */
class SimContext implements HandlerContext<JsonValue> {
  readonly staged: Staged = { writes: new Map(), emitted: [], scheduled: [], revoked: new Set() };
  readonly token: TokenRecord;
  readonly conversationId = CONVERSATION;
  readonly attempt = 1;
  private minted = 0;

  constructor(
    private readonly state: ReadonlyMap<string, JsonValue>,
    private readonly tokens: ReadonlyMap<string, { status: SimStatus }>,
    tokenId: string,
    readonly payload: JsonValue,
  ) {
    this.token = {
      id: tokenId,
      conversationId: CONVERSATION,
      mintedBy: 'convergence-check',
      status: 'pending',
      mintedAt: 0,
      attempts: 0,
    };
  }

  get tx(): never {
    throw new Error('a process step has no own tables in the convergence check');
  }

  async getItem(key: string): Promise<StateItem | undefined> {
    const value = this.staged.writes.has(key) ? this.staged.writes.get(key) : this.state.get(key);
    // Shared, not copied: processHandler never changes what it read, and advance() hands the step a copy.
    return value === undefined ? undefined : { key, value, version: 1 };
  }

  async get<T extends JsonValue = JsonValue>(key: string): Promise<T | undefined> {
    return (await this.getItem(key))?.value as T | undefined;
  }

  put(key: string, value: JsonValue): void {
    this.staged.writes.set(key, value);
  }

  delete(key: string): void {
    this.staged.writes.set(key, undefined);
  }

  emit(destination: Destination, payload: JsonValue): string {
    this.staged.emitted.push({ destination, payload });
    return this.nextId();
  }

  schedule(destination: Destination, payload: JsonValue): TokenRecord {
    const id = this.nextId();
    this.staged.scheduled.push({ id, destination, payload });
    return { ...this.token, id, status: 'scheduled', payload, destination };
  }

  async cancel(tokenId: string): Promise<boolean> {
    const own = this.staged.scheduled.findIndex((entry) => entry.id === tokenId);
    if (own >= 0) {
      this.staged.scheduled.splice(own, 1);
      return true;
    }
    const status = this.tokens.get(tokenId)?.status;
    if (status !== 'scheduled' && status !== 'live') return false;
    this.staged.revoked.add(tokenId);
    return true;
  }

  private nextId(): string {
    this.minted += 1;
    return `${this.token.id}.${this.minted}`;
  }
}
