import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { type Api, Unreachable } from './api.js';
import { useSession } from './session.js';

export type Resource<T> =
  | { state: 'loading' }
  | { state: 'ready'; data: T; receivedAt: number }
  | { state: 'failed'; error: unknown };

export interface ResourceHandle<T> {
  resource: Resource<T>;
  /** Loads again, keeping what is shown until the answer arrives. */
  reload: () => void;
}

/**
 * Data a view loads from the API when it opens or its `key` changes. An answer to an older key is dropped. A load
 * that found the gateway unreachable is tried again as soon as the gateway answers anything (the overview poll).
 */
export function useResource<T>(key: string, load: (api: Api) => Promise<T>): ResourceHandle<T> {
  const { api, reachable } = useSession();
  const [resource, setResource] = useState<Resource<T>>({ state: 'loading' });
  const [generation, setGeneration] = useState(0);
  const latest = useRef(load);
  latest.current = load;
  const shownKey = useRef(key);

  useEffect(() => {
    let current = true;
    if (shownKey.current !== key) {
      shownKey.current = key;
      setResource({ state: 'loading' });
    }
    latest.current(api).then(
      (data) => current && setResource({ state: 'ready', data, receivedAt: performance.now() }),
      (error: unknown) => current && setResource({ state: 'failed', error }),
    );
    return () => {
      current = false;
    };
  }, [api, key, generation]);

  const failedUnreachable = resource.state === 'failed' && resource.error instanceof Unreachable;
  useEffect(() => {
    if (reachable && failedUnreachable) setGeneration((g) => g + 1);
  }, [reachable, failedUnreachable]);

  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return { resource, reload };
}
