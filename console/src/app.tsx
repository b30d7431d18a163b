import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Api, ApiProblem } from './api.js';
import { loadGraphView } from './graph/lazy.js';
import { forgetKey, keepKey, storedKey } from './key.js';
import { poll } from './poll.js';
import { useRoute } from './router.js';
import type { Route } from './routes.js';
import { type Session, SessionContext } from './session.js';
import type { Overview } from './types.js';
import { ConversationPage } from './views/conversation.js';
import { Header } from './views/header.js';
import { KeyForm } from './views/key-form.js';
import { OverviewPage } from './views/overview.js';
import { ProcessesPage, ProcessPage } from './views/processes.js';
import { SearchPage } from './views/search.js';
import { StuckPage } from './views/stuck.js';
import { TokenPage } from './views/token.js';

const PREFETCH_GRAPH_AFTER_MS = 1_500;

/** A 401 or 403 while connected means the key no longer works here: back to the key form, saying why. */
function refusesKey(error: unknown): error is ApiProblem {
  return error instanceof ApiProblem && (error.status === 401 || error.status === 403);
}

/**
 * The console: the key form until a key works, then the header and the routed view. One poll of the overview runs
 * while connected; it feeds the overview view and is the heartbeat that tells whether the gateway answers.
 */
export function App() {
  const [key, setKey] = useState<string | undefined>(storedKey);
  const [refusal, setRefusal] = useState<unknown>();
  const [reachable, setReachable] = useState(true);
  const [overview, setOverview] = useState<Overview>();
  const [overviewError, setOverviewError] = useState<unknown>();
  const api = useMemo(() => (key === undefined ? undefined : new Api(key, setReachable)), [key]);
  const route = useRoute();

  const disconnect = useCallback((reason?: unknown) => {
    forgetKey();
    setKey(undefined);
    setOverview(undefined);
    setOverviewError(undefined);
    setReachable(true);
    setRefusal(reason);
  }, []);

  useEffect(() => {
    if (!api) return;
    let active = true;
    const stop = poll(async () => {
      // An answer that arrives after the key was forgotten or replaced is not this session's: it is dropped.
      try {
        const next = await api.overview();
        if (!active) return;
        setOverview(next);
        setOverviewError(undefined);
      } catch (error) {
        if (active && refusesKey(error)) disconnect(error);
        else if (active) setOverviewError(error);
        throw error;
      }
    });
    return () => {
      active = false;
      stop();
    };
  }, [api, disconnect]);

  // The graph's chunk (most of the console's JavaScript) is fetched once the first view is up, so the first
  // conversation opened does not wait for it.
  useEffect(() => {
    if (!api) return;
    const timer = setTimeout(() => loadGraphView().catch(() => undefined), PREFETCH_GRAPH_AFTER_MS);
    return () => clearTimeout(timer);
  }, [api]);

  const connect = useCallback(async (candidate: string) => {
    try {
      setOverview(await new Api(candidate).overview());
    } catch (error) {
      return error;
    }
    keepKey(candidate);
    setRefusal(undefined);
    setKey(candidate);
    if (hashIsEmpty()) location.hash = '#/overview';
    return undefined;
  }, []);

  usePageFocus(route, api !== undefined);

  if (!api) return <KeyForm onConnect={connect} failure={refusal} />;
  const session: Session = { api, reachable, overview };
  return (
    <SessionContext.Provider value={session}>
      <Header route={route} reachable={reachable} onForget={() => disconnect()} />
      {!reachable && (
        <div role="alert" class="banner">
          <strong>Gateway unreachable</strong> — no answer to the last request; retrying…
        </div>
      )}
      <main class="main" id="main">
        <View route={route} overviewError={overviewError} />
      </main>
    </SessionContext.Provider>
  );
}

function View({ route, overviewError }: { route: Route; overviewError: unknown }) {
  switch (route.view) {
    case 'overview':
      return <OverviewPage error={overviewError} />;
    case 'stuck':
      return <StuckPage filter={route.filter} />;
    case 'search':
      return <SearchPage />;
    case 'token':
      return <TokenPage id={route.id} />;
    case 'conversation':
      return <ConversationPage id={route.id} />;
    case 'processes':
      return <ProcessesPage />;
    case 'process':
      return <ProcessPage name={route.name} id={route.id} />;
    case 'unknown':
      return (
        <>
          <h1 id="main-heading" tabIndex={-1}>
            Page not found
          </h1>
          <p>
            The console has no page at <code>{route.hash}</code>. Go to the <a href="#/overview">overview</a>.
          </p>
        </>
      );
  }
}

function hashIsEmpty(): boolean {
  return location.hash === '' || location.hash === '#' || location.hash === '#/';
}

/** Which page a route shows; a new filter on the same page is not a new page. */
function pageOf(route: Route): string {
  switch (route.view) {
    case 'token':
    case 'conversation':
      return `${route.view}/${route.id}`;
    case 'process':
      return `process/${route.name}/${route.id}`;
    default:
      return route.view;
  }
}

/**
 * On a new page, focus moves to its heading, so a screen reader announces it and Tab starts from there, and the
 * document title names it.
 */
function usePageFocus(route: Route, connected: boolean): void {
  const page = connected ? pageOf(route) : 'key';
  const first = useRef(true);
  useEffect(() => {
    const frame = requestAnimationFrame(() => {
      const heading = document.querySelector('h1');
      if (heading) document.title = `${heading.textContent ?? ''} · Tollgate console`;
      if (!first.current) heading?.focus();
      first.current = false;
    });
    return () => cancelAnimationFrame(frame);
  }, [page]);
}
