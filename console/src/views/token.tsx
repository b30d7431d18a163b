import { useState } from 'preact/hooks';
import { ProblemAlert } from '../components/problem-alert.js';
import { useTokenActions } from '../components/token-actions.js';
import { TokenRecord } from '../components/token-record.js';
import { conversationHref } from '../routes.js';
import type { TokenView } from '../types.js';
import { useResource } from '../use-resource.js';

/** One token's record, with the actions its status allows. */
export function TokenPage({ id }: { id: string }) {
  const { resource } = useResource(`token/${id}`, (api) => api.token(id));
  const [fresh, setFresh] = useState<TokenView>();
  const actions = useTokenActions(setFresh);
  const token = fresh?.id === id ? fresh : resource.state === 'ready' ? resource.data : undefined;
  return (
    <>
      <h1 id="main-heading" tabIndex={-1}>
        Token <code>{id}</code>
      </h1>
      {resource.state === 'loading' && <p class="muted">Loading…</p>}
      {resource.state === 'failed' && (
        <ProblemAlert error={resource.error} notFound={`Token ${id} not found.`} />
      )}
      {token && (
        <>
          <p class="links">
            <a href={conversationHref(token.conversationId)}>Conversation {token.conversationId}</a>
          </p>
          {actions.panel}
          <div class="toolbar">{actions.buttons(token)}</div>
          <TokenRecord token={token} statusTestId="token-status" />
        </>
      )}
    </>
  );
}
