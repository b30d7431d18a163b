/**
 * `tollgate/process`: process managers. A process is pure steps `(state, signal) → Step`; `processHandler` runs
 * it as a Tollgate handler (AMQP consumer or fastify route), keeping each instance's state, timeouts and
 * cancellations in the commit of the signal's token. Check that it converges with `checkConvergence` from
 * `tollgate/testing`. Loads no driver and no framework.
 */
export { type Advance, advance, type ProcessInstance } from '../process/advance.js';
export {
  correlationOf,
  defineProcess,
  type Emission,
  instanceKey,
  type Process,
  type ProcessDefinition,
  type ProcessSignal,
  readSignal,
  type Step,
  type StepHandlers,
  type TimeoutSpec,
  UnknownSignalTypeError,
} from '../process/define.js';
export {
  type ExactlyOnceRequest,
  type ProcessHandlerOptions,
  processHandler,
  processRoute,
  type StepReport,
} from '../process/handler.js';
export {
  type ProcessInstanceView,
  readProcessInstance,
} from '../process/inspect.js';
