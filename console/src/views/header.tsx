import type { Route } from '../routes.js';

const LINKS: Array<{ label: string; href: string; views: ReadonlyArray<Route['view']> }> = [
  { label: 'Overview', href: '#/overview', views: ['overview'] },
  { label: 'Stuck signals', href: '#/stuck', views: ['stuck'] },
  { label: 'Search', href: '#/search', views: ['search', 'token', 'conversation'] },
  { label: 'Processes', href: '#/processes', views: ['processes', 'process'] },
];

/** The bar on every connected view: where to go, whether the gateway answers, and how to drop the key. */
export function Header({
  route,
  reachable,
  onForget,
}: {
  route: Route;
  reachable: boolean;
  onForget: () => void;
}) {
  return (
    <header class="header">
      <span class="brand">Tollgate console</span>
      <nav aria-label="Console">
        <ul class="nav">
          {LINKS.map((link) => (
            <li key={link.href}>
              <a href={link.href} aria-current={link.views.includes(route.view) ? 'page' : undefined}>
                {link.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <p class={`connection ${reachable ? 'connection-up' : 'connection-down'}`}>
        <span class="connection-mark" aria-hidden="true" />
        <span class="visually-hidden">Gateway: </span>
        <span data-testid="connection">{reachable ? 'connected' : 'unreachable'}</span>
      </p>
      <button type="button" class="forget" onClick={onForget}>
        Forget key
      </button>
    </header>
  );
}
