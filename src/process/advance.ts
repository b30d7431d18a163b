import { InvalidArgumentError } from '../core/errors.js';
import type { JsonValue } from '../core/fingerprint.js';
import type { Emission, Process, ProcessSignal, Step, TimeoutSpec } from './define.js';

/** An instance as kept in the store, under `process/<name>/<id>`. */
export interface ProcessInstance<S extends JsonValue = JsonValue> {
  state: S;
  /** Pending timeouts: name → token id of the scheduled signal. */
  timeouts: Record<string, string>;
  /** The conversation of the signal that started the instance. */
  conversationId: string;
  /** When the instance started (ms since epoch). */
  startedAt: number;
}

/** What one signal does to an instance, decided without touching the store. */
export type Advance<S> =
  /** The signal may not start an instance and there is none (the process already finished): no effect. */
  | { kind: 'ignored' }
  | {
      kind: 'step';
      started: boolean;
      state: S;
      done: boolean;
      emit: readonly Emission[];
      /** Timeouts to schedule (none once done). */
      schedule: readonly TimeoutSpec[];
      /** Pending timeouts to revoke: asked for, replaced by a new one of the same name, or left at the end. */
      cancel: ReadonlyArray<{ name: string; tokenId: string }>;
      /** Pending timeouts that stay, before the new ones are added. */
      timeouts: Record<string, string>;
    };

/**
 * The pure heart of a process step, shared by the runtime handler and the convergence checker. `tokenId` is the
 * incoming signal's token: if it is one of the instance's timeouts, that timeout has fired and is no longer
 * pending.
 */
export function advance<S extends JsonValue, Sig extends ProcessSignal>(
  process: Process<S, Sig>,
  instance: ProcessInstance<S> | undefined,
  signal: Sig,
  tokenId: string,
): Advance<S> {
  if (instance === undefined && process.startedBy && !process.startedBy.includes(signal.type)) {
    return { kind: 'ignored' };
  }
  const before = instance === undefined ? process.initial(signal) : instance.state;
  const timeouts: Record<string, string> = {};
  for (const [name, id] of Object.entries(instance?.timeouts ?? {})) if (id !== tokenId) timeouts[name] = id;

  const handler = process.on[signal.type as Sig['type']] as (state: S, signal: Sig) => Step<S>;
  // A copy: a step that changes the state it was given in place must not change what it is compared with.
  const step = checkStep(process.name, signal.type, handler(structuredClone(before), signal));
  const done = step.done ?? process.done?.(step.state) ?? false;

  const cancel: Array<{ name: string; tokenId: string }> = [];
  const drop = (name: string) => {
    const id = timeouts[name];
    if (id === undefined) return;
    cancel.push({ name, tokenId: id });
    delete timeouts[name];
  };
  for (const name of step.cancel ?? []) drop(name);
  const schedule = done ? [] : (step.schedule ?? []);
  for (const timeout of schedule) drop(timeout.name);
  if (done) for (const name of Object.keys(timeouts)) drop(name);
  return {
    kind: 'step',
    started: instance === undefined,
    state: step.state,
    done,
    emit: step.emit ?? [],
    schedule,
    cancel,
    timeouts,
  };
}

function checkStep<S>(processName: string, type: string, step: Step<S>): Step<S> {
  if (step === null || typeof step !== 'object' || step.state === undefined) {
    throw new InvalidArgumentError(`the ${type} step of process ${processName} returned no state`, {
      process: processName,
      type,
    });
  }
  const names = (step.schedule ?? []).map((timeout) => timeout.name);
  if (names.some((name, i) => typeof name !== 'string' || name === '' || names.indexOf(name) !== i)) {
    throw new InvalidArgumentError(
      `the ${type} step of process ${processName} schedules timeouts without distinct names`,
      { process: processName, type },
    );
  }
  return step;
}
