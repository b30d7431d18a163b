import { useEffect, useState } from 'preact/hooks';
import { href, parseRoute, type Route } from './routes.js';

export function navigate(route: Route): void {
  location.hash = href(route);
}

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
