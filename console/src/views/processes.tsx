import { useState } from 'preact/hooks';
import { ProblemAlert } from '../components/problem-alert.js';
import { StatusBadge } from '../components/status-badge.js';
import { Instant } from '../components/token-record.js';
import { conversationHref, href, tokenHref } from '../routes.js';
import { useResource } from '../use-resource.js';

/** Opens a process instance by its process name and instance (correlation) id. */
export function ProcessesPage() {
  const [name, setName] = useState('');
  const [id, setId] = useState('');
  const open = (event: Event) => {
    event.preventDefault();
    if (name.trim() && id.trim()) location.hash = href({ view: 'process', name: name.trim(), id: id.trim() });
  };
  return (
    <>
      <h1 id="main-heading" tabIndex={-1}>
        Processes
      </h1>
      <p>
        A process manager keeps one instance per correlation id: its state, the timeouts it may still cancel
        and the conversation it started in.
      </p>
      <form class="filters" aria-label="Open a process instance" onSubmit={open}>
        <div class="field">
          <label for="process-name">Process name</label>
          <input
            id="process-name"
            type="text"
            required
            spellcheck={false}
            autocomplete="off"
            value={name}
            onInput={(event) => setName(event.currentTarget.value)}
          />
        </div>
        <div class="field field-wide">
          <label for="process-id">Instance id</label>
          <input
            id="process-id"
            type="text"
            required
            spellcheck={false}
            autocomplete="off"
            value={id}
            onInput={(event) => setId(event.currentTarget.value)}
          />
        </div>
        <button type="submit" class="button-primary">
          Open
        </button>
      </form>
    </>
  );
}

/** A running process instance: state, pending timeouts, conversation. */
export function ProcessPage({ name, id }: { name: string; id: string }) {
  const { resource } = useResource(`process/${name}/${id}`, (api) => api.process(name, id));
  return (
    <>
      <h1 id="main-heading" tabIndex={-1}>
        Process {name} <code>{id}</code>
      </h1>
      <p>
        <a href="#/processes">Open another instance</a>
      </p>
      {resource.state === 'loading' && <p class="muted">Loading…</p>}
      {resource.state === 'failed' && (
        <ProblemAlert error={resource.error} notFound={`Process ${name} instance ${id} not found.`} />
      )}
      {resource.state === 'ready' && (
        <>
          <p>
            Started <Instant iso={resource.data.startedAt} /> in{' '}
            <a href={conversationHref(resource.data.conversation.id)}>
              Conversation {resource.data.conversation.id}
            </a>{' '}
            ({resource.data.conversation.tokens.length}
            {resource.data.conversation.truncated ? '+' : ''} tokens).
          </p>
          <h2 id="state-heading">State</h2>
          {/* biome-ignore lint/a11y/useSemanticElements: a <pre> keeps the JSON's layout; the region role lets it carry a name. */}
          <pre class="json" role="region" aria-label="State">
            {JSON.stringify(resource.data.state, null, 2)}
          </pre>
          <h2 id="timeouts-heading">Pending timeouts</h2>
          <table class="table" aria-label="Timeouts">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Token</th>
                <th scope="col">Status</th>
                <th scope="col">Due</th>
              </tr>
            </thead>
            <tbody>
              {resource.data.timeouts.length === 0 && (
                <tr>
                  <td colSpan={4} class="muted">
                    No pending timeout.
                  </td>
                </tr>
              )}
              {resource.data.timeouts.map((timeout) => (
                <tr key={timeout.tokenId}>
                  <td>{timeout.name}</td>
                  <td>
                    <a href={tokenHref(timeout.tokenId)}>
                      <code>{timeout.tokenId}</code>
                    </a>
                  </td>
                  <td>{timeout.status ? <StatusBadge status={timeout.status} /> : 'purged'}</td>
                  <td>{timeout.dueAt ? <Instant iso={timeout.dueAt} /> : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </>
  );
}
