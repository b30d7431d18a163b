import type { TokenStore } from '../../core/store.js';

interface Batch {
  ids: string[];
  now: number;
  settle: Array<{ resolve(moved: number): void; reject(error: unknown): void }>;
}

/**
 * A view of the store whose `markDispatched` coalesces the marks that concurrent hops ask for in the same
 * turn of the event loop into one store write (PROTOCOL.md allows the mark to be batched). Under load this
 * saves one store transaction per hop; a lost batch only means the relay may send copies, which receivers drop.
 * Each caller resolves with the number of tokens the whole batch moved.
 */
export function withBatchedMarks(store: TokenStore): TokenStore {
  let batch: Batch | undefined;

  const flush = (current: Batch) => {
    batch = undefined;
    store.markDispatched(current.ids, current.now).then(
      (moved) => {
        for (const caller of current.settle) caller.resolve(moved);
      },
      (error: unknown) => {
        for (const caller of current.settle) caller.reject(error);
      },
    );
  };

  const markDispatched = (ids: string[], now: number): Promise<number> => {
    if (ids.length === 0) return Promise.resolve(0);
    if (!batch) {
      const fresh: Batch = { ids: [], now, settle: [] };
      batch = fresh;
      setImmediate(() => flush(fresh));
    }
    const current = batch;
    current.ids.push(...ids);
    current.now = Math.max(current.now, now);
    return new Promise<number>((resolve, reject) => current.settle.push({ resolve, reject }));
  };

  return new Proxy(store, {
    get(target, property) {
      if (property === 'markDispatched') return markDispatched;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
