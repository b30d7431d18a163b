/**
 * The console's views and their hashes. Pure, so the unit tests read them without a browser; router.ts follows the
 * page's hash with them.
 */
import { STATUSES, type TokenStatus } from './types.js';

/** The stuck list's filter, kept in the hash so that Back returns to it. */
export interface StuckFilter {
  status?: TokenStatus;
  olderThanSeconds?: number;
  conversation?: string;
}

/** Every view of the console, addressed by the URL's hash (the page itself is one static file). */
export type Route =
  | { view: 'overview' }
  | { view: 'stuck'; filter: StuckFilter }
  | { view: 'search' }
  | { view: 'token'; id: string }
  | { view: 'conversation'; id: string }
  | { view: 'processes' }
  | { view: 'process'; name: string; id: string }
  | { view: 'unknown'; hash: string };

const STATUS_VALUES: ReadonlySet<string> = new Set(STATUSES);

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#/, '').split('?', 2);
  const parts = path.split('/').filter(Boolean).map(decode);
  const [head, first, second] = parts;
  if (parts.length === 0 || (head === 'overview' && parts.length === 1)) return { view: 'overview' };
  if (head === 'stuck' && parts.length === 1) return { view: 'stuck', filter: stuckFilter(query) };
  if (head === 'search' && parts.length === 1) return { view: 'search' };
  if (head === 'processes' && parts.length === 1) return { view: 'processes' };
  if (head === 'token' && first && parts.length === 2) return { view: 'token', id: first };
  if (head === 'conversation' && first && parts.length === 2) return { view: 'conversation', id: first };
  if (head === 'process' && first && second && parts.length === 3)
    return { view: 'process', name: first, id: second };
  return { view: 'unknown', hash };
}

/** The hash of a route; ids are URL-encoded. */
export function href(route: Route): string {
  switch (route.view) {
    case 'overview':
    case 'search':
    case 'processes':
      return `#/${route.view}`;
    case 'stuck': {
      const query = new URLSearchParams();
      const { status, olderThanSeconds, conversation } = route.filter;
      if (status) query.set('status', status);
      if (olderThanSeconds !== undefined) query.set('olderThan', String(olderThanSeconds));
      if (conversation) query.set('conversation', conversation);
      const text = query.toString();
      return text ? `#/stuck?${text}` : '#/stuck';
    }
    case 'token':
    case 'conversation':
      return `#/${route.view}/${encodeURIComponent(route.id)}`;
    case 'process':
      return `#/process/${encodeURIComponent(route.name)}/${encodeURIComponent(route.id)}`;
    case 'unknown':
      return route.hash;
  }
}

export const tokenHref = (id: string) => href({ view: 'token', id });
export const conversationHref = (id: string) => href({ view: 'conversation', id });

function stuckFilter(query: string): StuckFilter {
  const params = new URLSearchParams(query);
  const filter: StuckFilter = {};
  const status = params.get('status');
  if (status && STATUS_VALUES.has(status)) filter.status = status as TokenStatus;
  const olderThan = seconds(params.get('olderThan'));
  if (olderThan !== undefined) filter.olderThanSeconds = olderThan;
  const conversation = params.get('conversation');
  if (conversation) filter.conversation = conversation;
  return filter;
}

/** An age of 0 s or more; anything else is left out, so the view's default applies. */
function seconds(text: string | null): number | undefined {
  // Number() reads an empty or blank text as 0, which would replace the default.
  if (text === null || text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) && value >= 0 ? value : undefined;
}

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
