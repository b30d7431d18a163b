import { useState } from 'preact/hooks';
import { ApiProblem } from '../api.js';
import { ProblemAlert } from '../components/problem-alert.js';
import { idProblem } from '../ids.js';
import { conversationHref, tokenHref } from '../routes.js';
import { useSession } from '../session.js';

type Outcome =
  | { kind: 'malformed'; why: string }
  | { kind: 'not-found'; id: string }
  | { kind: 'failed'; error: unknown };

const isNotFound = (error: unknown) => error instanceof ApiProblem && error.status === 404;

/**
 * One box for both kinds of id: a token id opens the token, a conversation id the conversation. A malformed id is
 * answered here, without a request.
 */
export function SearchPage() {
  const { api } = useSession();
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<Outcome>();

  const search = async (event: Event) => {
    event.preventDefault();
    const id = value.trim();
    const why = idProblem(id);
    if (why) {
      setOutcome({ kind: 'malformed', why });
      return;
    }
    setBusy(true);
    setOutcome(undefined);
    try {
      location.hash = await locate(id);
    } catch (error) {
      setOutcome(isNotFound(error) ? { kind: 'not-found', id } : { kind: 'failed', error });
    } finally {
      setBusy(false);
    }
  };

  /** The token first; on a 404 the conversation; a second 404 is thrown for "not found". */
  const locate = async (id: string): Promise<string> => {
    try {
      await api.token(id);
      return tokenHref(id);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    await api.conversation(id);
    return conversationHref(id);
  };

  return (
    <>
      <h1 id="main-heading" tabIndex={-1}>
        Search
      </h1>
      {/* biome-ignore lint/a11y/useSemanticElements: a form with the search role is the landmark every browser maps. */}
      <form role="search" class="search-form" onSubmit={search}>
        <label for="search-id">Token or conversation id</label>
        <div class="inline">
          <input
            id="search-id"
            type="search"
            spellcheck={false}
            autocomplete="off"
            aria-describedby="search-note"
            value={value}
            onInput={(event) => setValue(event.currentTarget.value)}
          />
          <button type="submit" class="button-primary" disabled={busy}>
            Search
          </button>
        </div>
        <p id="search-note" class="muted">
          An id is 8 to 128 characters: letters, digits, “_” and “-”.
        </p>
      </form>
      {outcome?.kind === 'malformed' && (
        <div role="alert" class="alert">
          <p class="alert-title">Not a valid id</p>
          <p>The search was not sent: {outcome.why}</p>
        </div>
      )}
      {outcome?.kind === 'not-found' && (
        <div role="alert" class="alert">
          <p class="alert-title">
            <code>{outcome.id}</code> not found
          </p>
          <p>No token and no conversation has this id in this gateway's store (or it was purged).</p>
        </div>
      )}
      {outcome?.kind === 'failed' && <ProblemAlert error={outcome.error} />}
    </>
  );
}
