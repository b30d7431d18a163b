import { useEffect, useState } from 'preact/hooks';
import { endpointText, mediumText } from '../components/endpoint.js';
import { ProblemAlert } from '../components/problem-alert.js';
import { StatusBadge } from '../components/status-badge.js';
import { useTokenActions } from '../components/token-actions.js';
import { age, instant } from '../format.js';
import { idProblem } from '../ids.js';
import { href, type StuckFilter, tokenHref } from '../routes.js';
import { useSession } from '../session.js';
import type { TokenStatus, TokenView } from '../types.js';
import { useResource } from '../use-resource.js';

/** The statuses a signal can be stuck in, in the order an operator looks at them. */
const STUCK_STATUSES: TokenStatus[] = ['pending', 'issued', 'expired', 'revoked', 'scheduled', 'dispatched'];
const PAGE_SIZE = 50;

interface Query {
  status: TokenStatus;
  olderThanSeconds: number;
  conversation: string;
}

/** The filter in the hash, with the defaults filled in: pending tokens older than the relay's delay. */
function effective(filter: StuckFilter, relayDelayMs: number | undefined): Query {
  const status = filter.status ?? 'pending';
  const fallback = status === 'pending' && relayDelayMs !== undefined ? relayDelayMs / 1000 : 0;
  return {
    status,
    olderThanSeconds: filter.olderThanSeconds ?? fallback,
    conversation: filter.conversation ?? '',
  };
}

/**
 * Tokens by status, oldest first, 50 a page: pending ones the relay has not sent, issued ones never used, expired,
 * revoked and scheduled ones. Cursor pagination keeps every page as cheap as the first, whatever the store holds.
 */
export function StuckPage({ filter }: { filter: StuckFilter }) {
  const { overview } = useSession();
  const query = effective(filter, overview?.relay.delayMs);
  const queryKey = JSON.stringify(query);
  // The cursors of the pages read so far under this filter: the last one is the page shown.
  const [paging, setPaging] = useState({ queryKey, cursors: [undefined] as Array<string | undefined> });
  const cursors = paging.queryKey === queryKey ? paging.cursors : [undefined];
  const page = cursors.length;
  const turn = (next: Array<string | undefined>) => setPaging({ queryKey, cursors: next });
  const pageKey = `${queryKey}/${page}`;

  const { resource, reload } = useResource(pageKey, (api) =>
    api.tokens({
      status: query.status,
      olderThanMs: query.olderThanSeconds * 1000,
      conversation: query.conversation || undefined,
      limit: PAGE_SIZE,
      cursor: cursors[cursors.length - 1],
    }),
  );
  // Rows an action changed, read again after it; they belong to the page shown.
  const [changed, setChanged] = useState<{ pageKey: string; rows: Record<string, TokenView> }>({
    pageKey,
    rows: {},
  });
  const changedRows = changed.pageKey === pageKey ? changed.rows : {};
  const actions = useTokenActions((token) =>
    setChanged((c) => ({ pageKey, rows: { ...(c.pageKey === pageKey ? c.rows : {}), [token.id]: token } })),
  );
  const apply = (next: { view: 'stuck'; filter: StuckFilter }) => {
    if (href(next) !== location.hash) {
      location.hash = href(next);
      return;
    }
    turn([undefined]);
    reload();
  };

  const nextCursor = resource.state === 'ready' ? resource.data.cursor : undefined;
  return (
    <>
      <h1 id="main-heading" tabIndex={-1}>
        Stuck signals
      </h1>
      <FilterForm query={query} onApply={apply} />
      {actions.panel}
      {resource.state === 'failed' && <ProblemAlert error={resource.error} />}
      <table class="table tokens" aria-label="Tokens" aria-busy={resource.state === 'loading'}>
        <thead>
          <tr>
            <th scope="col">Token</th>
            <th scope="col">Status</th>
            <th scope="col">Medium</th>
            <th scope="col">Endpoint</th>
            <th scope="col">Minted</th>
            <th scope="col">Age</th>
            <th scope="col" class="number">
              Attempts
            </th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {resource.state === 'loading' && (
            <tr>
              <td colSpan={8} class="muted">
                Loading…
              </td>
            </tr>
          )}
          {resource.state === 'ready' && resource.data.items.length === 0 && (
            <tr>
              <td colSpan={8}>No tokens match this filter.</td>
            </tr>
          )}
          {resource.state === 'ready' &&
            resource.data.items.map((listed) => {
              const token = changedRows[listed.id] ?? listed;
              return (
                <tr key={token.id} data-token-id={token.id}>
                  <td>
                    <a href={tokenHref(token.id)}>
                      <code>{token.id}</code>
                    </a>
                  </td>
                  <td>
                    <StatusBadge status={token.status} />
                  </td>
                  <td>{mediumText(token.destination)}</td>
                  <td class="endpoint">{endpointText(token.destination)}</td>
                  <td>
                    <time dateTime={token.mintedAt}>{instant(token.mintedAt)}</time>
                  </td>
                  <td>{age(token.mintedAt)}</td>
                  <td class="number">{token.attempts}</td>
                  <td>{actions.buttons(token)}</td>
                </tr>
              );
            })}
        </tbody>
      </table>
      <nav class="pager" aria-label="Pages">
        <button type="button" disabled={page === 1} onClick={() => turn([undefined])}>
          First page
        </button>
        <button type="button" disabled={page === 1} onClick={() => turn(cursors.slice(0, -1))}>
          Previous page
        </button>
        <span data-testid="page-info" aria-live="polite">
          page {page}
        </span>
        <button
          type="button"
          disabled={nextCursor === undefined}
          onClick={() => turn([...cursors, nextCursor])}
        >
          Next page
        </button>
      </nav>
    </>
  );
}

function FilterForm({
  query,
  onApply,
}: {
  query: Query;
  onApply: (route: { view: 'stuck'; filter: StuckFilter }) => void;
}) {
  const { overview } = useSession();
  const [status, setStatus] = useState(query.status);
  const [olderThan, setOlderThan] = useState(String(query.olderThanSeconds));
  const [conversation, setConversation] = useState(query.conversation);
  const [invalid, setInvalid] = useState<string>();
  const queryKey = JSON.stringify(query);
  useEffect(() => {
    setStatus(query.status);
    setOlderThan(String(query.olderThanSeconds));
    setConversation(query.conversation);
  }, [queryKey]);

  const changeStatus = (next: TokenStatus) => {
    setStatus(next);
    const delayMs = overview?.relay.delayMs;
    setOlderThan(String(next === 'pending' && delayMs !== undefined ? delayMs / 1000 : 0));
  };
  const submit = (event: Event) => {
    event.preventDefault();
    const seconds = Number(olderThan || '0');
    if (!Number.isFinite(seconds) || seconds < 0) {
      setInvalid('Older than must be a number of seconds, 0 or more.');
      return;
    }
    const why = conversation ? idProblem(conversation) : undefined;
    if (why) {
      setInvalid(`Not a valid conversation id: ${why}`);
      return;
    }
    setInvalid(undefined);
    onApply({
      view: 'stuck',
      filter: { status, olderThanSeconds: seconds, ...(conversation ? { conversation } : {}) },
    });
  };
  return (
    <form class="filters" aria-label="Filter" onSubmit={submit}>
      <div class="field">
        <label for="filter-status">Status</label>
        <select
          id="filter-status"
          value={status}
          onChange={(event) => changeStatus(event.currentTarget.value as TokenStatus)}
        >
          {STUCK_STATUSES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="filter-older">Older than (seconds)</label>
        <input
          id="filter-older"
          type="number"
          min="0"
          step="any"
          inputMode="decimal"
          value={olderThan}
          onInput={(event) => setOlderThan(event.currentTarget.value)}
        />
      </div>
      <div class="field field-wide">
        <label for="filter-conversation">Conversation</label>
        <input
          id="filter-conversation"
          type="text"
          spellcheck={false}
          autocomplete="off"
          placeholder="any"
          value={conversation}
          onInput={(event) => setConversation(event.currentTarget.value.trim())}
        />
      </div>
      <button type="submit" class="button-primary">
        Apply
      </button>
      {invalid && (
        <p role="alert" class="alert form-alert">
          {invalid}
        </p>
      )}
    </form>
  );
}
