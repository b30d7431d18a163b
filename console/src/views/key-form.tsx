import { useState } from 'preact/hooks';
import { ProblemAlert } from '../components/problem-alert.js';

/**
 * The first thing shown: the API key, typed in. `onConnect` tries it against the gateway and resolves with the
 * failure to show (a 401, a 403, unreachable) or undefined once connected.
 */
export function KeyForm({
  onConnect,
  failure,
}: {
  onConnect: (key: string) => Promise<unknown>;
  failure: unknown;
}) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(failure);
  const submit = async (event: Event) => {
    event.preventDefault();
    if (!key.trim() || busy) return;
    setBusy(true);
    setError(undefined);
    const outcome = await onConnect(key.trim());
    setBusy(false);
    if (outcome !== undefined) setError(outcome);
  };
  return (
    <main class="connect" id="main">
      <h1>Tollgate console</h1>
      <p>
        Conversations, stuck signals and process instances of this gateway. Enter an API key with the{' '}
        <strong>read</strong> scope to view; redispatching and revoking need a key with the{' '}
        <strong>admin</strong> scope.
      </p>
      <form aria-label="API key" class="connect-form" onSubmit={submit}>
        <label for="api-key">API key</label>
        <input
          id="api-key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={key}
          onInput={(event) => setKey(event.currentTarget.value)}
          aria-describedby="api-key-note"
        />
        <button type="submit" class="button-primary" disabled={busy}>
          {busy ? 'Connecting…' : 'Connect'}
        </button>
        <p id="api-key-note" class="muted">
          The key is sent as a bearer header and kept only in this tab until you close it or press “Forget
          key”.
        </p>
      </form>
      {error !== undefined && (
        <ProblemAlert
          error={error}
          unreachable="Gateway unreachable: no answer from the gateway. Is it running?"
        />
      )}
    </main>
  );
}
