import type { TokenStore } from '../core/store.js';
import type { TokenStatus } from '../core/token.js';
import type { ProcessInstance } from './advance.js';
import { instanceKey } from './define.js';

/** A running instance as the inspection API shows it. */
export interface ProcessInstanceView {
  process: string;
  id: string;
  state: ProcessInstance['state'];
  conversationId: string;
  startedAt: number;
  /** Its pending timeouts, as their tokens now are (`status` absent: the token is gone, purged). */
  timeouts: Array<{ name: string; tokenId: string; status?: TokenStatus; dueAt?: number }>;
}

/**
 * Reads an instance of a process by name and id, straight from the store: no definition is needed, so the
 * gateway shows the instances of every process that runs against its store. Undefined when none is running
 * (never started, or finished and deleted).
 */
export async function readProcessInstance(
  store: Pick<TokenStore, 'readState' | 'getToken'>,
  processName: string,
  id: string,
): Promise<ProcessInstanceView | undefined> {
  const item = await store.readState(instanceKey(processName, id));
  if (item === undefined) return undefined;
  const instance = item.value as unknown as ProcessInstance;
  const timeouts = await Promise.all(
    Object.entries(instance.timeouts ?? {}).map(async ([name, tokenId]) => {
      const token = await store.getToken(tokenId);
      const view: ProcessInstanceView['timeouts'][number] = { name, tokenId };
      if (token) view.status = token.status;
      if (token?.dueAt !== undefined) view.dueAt = token.dueAt;
      return view;
    }),
  );
  return {
    process: processName,
    id,
    state: instance.state,
    conversationId: instance.conversationId,
    startedAt: instance.startedAt,
    timeouts,
  };
}
