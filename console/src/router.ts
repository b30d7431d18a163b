import { useEffect, useState } from 'preact/hooks';
import { parseRoute, type Route } from './routes.js';

/** The current route, following hash changes (links, Back, Forward). */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const follow = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', follow);
    return () => removeEventListener('hashchange', follow);
  }, []);
  return route;
}
