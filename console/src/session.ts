import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Api } from './api.js';
import type { Overview } from './types.js';

/** What every view of a connected console shares: the API client, whether the gateway answers, the last overview. */
export interface Session {
  api: Api;
  reachable: boolean;
  overview: Overview | undefined;
}

export const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a connected console');
  return session;
}
