import { ErrorCodes, InvalidArgumentError, InvalidPayloadError, TollgateError } from '../core/errors.js';
import type { JsonValue } from '../core/fingerprint.js';
import type { Destination } from '../core/token.js';

/**
 * A signal for a process: a JSON object whose `type` names the step that handles it. Declare your signals as
 * type aliases (`type PaymentReceived = { type: 'PaymentReceived'; orderId: string }`), which TypeScript lets
 * stand for this shape; interfaces it does not.
 */
export type ProcessSignal = { type: string; [field: string]: JsonValue };

/** A signal a step sends, minted `pending` in the step's commit. */
export interface Emission {
  destination: Destination;
  payload: JsonValue;
}

/**
 * A timeout a step schedules: a signal minted `scheduled` in the step's commit and sent when due (exactly one of
 * `afterMs` and `at`). The process remembers its token under `name`, to cancel it by that name later; scheduling
 * a name that is still pending replaces (cancels) the earlier one.
 */
export interface TimeoutSpec {
  name: string;
  destination: Destination;
  payload: ProcessSignal;
  afterMs?: number;
  at?: number;
}

/** What a step decides: the new state, and the signals, timeouts and cancellations that go with it. */
export interface Step<S> {
  state: S;
  emit?: readonly Emission[];
  schedule?: readonly TimeoutSpec[];
  /** Names of pending timeouts to cancel; a name with no pending timeout is ignored. */
  cancel?: readonly string[];
  /** The process is finished: its instance is deleted and its remaining timeouts cancelled, in the same commit. */
  done?: boolean;
}

/** The step for signals of type `T`: the signal narrowed to that type. */
export type StepHandlers<S, Sig extends ProcessSignal> = {
  readonly [T in Sig['type']]?: (state: S, signal: Extract<Sig, { type: T }>) => Step<S>;
};

export interface ProcessDefinition<S extends JsonValue, Sig extends ProcessSignal = ProcessSignal> {
  /** Names the instances' state keys and the inspection route: 1-64 of A-Z a-z 0-9 _ -. */
  name: string;
  /** The instance a signal belongs to (an order id, a booking id). */
  correlate(signal: Sig): string;
  /** The state of a new instance, before the step of the signal that starts it runs. */
  initial(signal: Sig): S;
  /** One pure step per signal type: `(state, signal) → Step`. A type without a step is refused. */
  on: StepHandlers<S, Sig>;
  /** Finished once this holds after a step (an alternative to `step.done`). */
  done?(state: S): boolean;
  /**
   * The types that may start an instance. A signal of another type that finds no instance (it arrived after the
   * process finished) is consumed without effect. Default: every type starts one.
   */
  startedBy?: readonly Sig['type'][];
}

/** A defined process: what `processHandler` runs and `checkConvergence` checks. */
export interface Process<S extends JsonValue = JsonValue, Sig extends ProcessSignal = ProcessSignal>
  extends Readonly<ProcessDefinition<S, Sig>> {
  /** The signal types it has a step for. */
  readonly types: readonly string[];
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** Longest correlation id: the state key (`process/<name>/<id>`) stays well under the 1024-character limit. */
export const MAX_CORRELATION_ID = 512;

/** Checks a definition once, so that a typo fails at start-up rather than on the first signal. */
export function defineProcess<S extends JsonValue, Sig extends ProcessSignal = ProcessSignal>(
  definition: ProcessDefinition<S, Sig>,
): Process<S, Sig> {
  if (typeof definition?.name !== 'string' || !NAME.test(definition.name)) {
    throw new InvalidArgumentError('a process name is 1-64 characters of A-Z a-z 0-9 _ -', {
      name: definition?.name,
    });
  }
  const types = Object.keys(definition.on ?? {}).filter(
    (type) => typeof (definition.on as Record<string, unknown>)[type] === 'function',
  );
  if (types.length === 0) {
    throw new InvalidArgumentError(`process ${definition.name} has no step`, { process: definition.name });
  }
  for (const type of definition.startedBy ?? []) {
    if (!types.includes(type)) {
      throw new InvalidArgumentError(
        `process ${definition.name} is started by ${type} but has no step for it`,
        {
          process: definition.name,
          type,
        },
      );
    }
  }
  return Object.freeze({ ...definition, types: Object.freeze(types) });
}

/** A signal whose `type` the process has no step for. Permanent: the same signal is refused every time. */
export class UnknownSignalTypeError extends TollgateError {
  constructor(process: string, type: string) {
    super(ErrorCodes.UNKNOWN_SIGNAL_TYPE, `process ${process} has no step for signals of type ${type}`, {
      process,
      type,
    });
  }
}

/** The payload as a signal of this process; refuses one without a string `type`, or of a type it does not handle. */
export function readSignal<S extends JsonValue, Sig extends ProcessSignal>(
  process: Process<S, Sig>,
  payload: unknown,
): Sig {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new InvalidPayloadError(`a signal for process ${process.name} is a JSON object`);
  }
  const type = (payload as { type?: unknown }).type;
  if (typeof type !== 'string') {
    throw new InvalidPayloadError(`a signal for process ${process.name} needs a string \`type\``, {
      process: process.name,
    });
  }
  if (!process.types.includes(type)) throw new UnknownSignalTypeError(process.name, type);
  return payload as Sig;
}

/** The instance id of a signal, checked. */
export function correlationOf<S extends JsonValue, Sig extends ProcessSignal>(
  process: Process<S, Sig>,
  signal: Sig,
): string {
  const id = process.correlate(signal);
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_CORRELATION_ID) {
    throw new InvalidPayloadError(
      `process ${process.name} correlated a ${signal.type} signal to no valid id (1-${MAX_CORRELATION_ID} characters)`,
      { process: process.name, type: signal.type },
    );
  }
  return id;
}

/** Where an instance's state is kept in the key-value state of the store. */
export function instanceKey(processName: string, id: string): string {
  return `process/${processName}/${id}`;
}
