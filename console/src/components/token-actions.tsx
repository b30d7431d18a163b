import type { ComponentChildren } from 'preact';
import { useCallback, useRef, useState } from 'preact/hooks';
import type { Api } from '../api.js';
import { useSession } from '../session.js';
import { canRedispatch, canRevoke } from '../statuses.js';
import type { TokenView } from '../types.js';
import { ConfirmDialog } from './confirm-dialog.js';
import { ProblemAlert } from './problem-alert.js';

type Action = 'redispatch' | 'revoke';

const ACTIONS: Record<
  Action,
  {
    title: string;
    body: string;
    done: (id: string) => string;
    run: (api: Api, id: string) => Promise<unknown>;
  }
> = {
  redispatch: {
    title: 'Redispatch token?',
    body: 'the relay sends its signal again now. The receiver drops a duplicate, so this is safe if it already arrived.',
    done: (id) => `Redispatch requested for ${id}`,
    run: (api, id) => api.redispatch(id),
  },
  revoke: {
    title: 'Revoke token?',
    body: 'its signal will be refused wherever it arrives. This cannot be undone.',
    done: (id) => `Revoked ${id}`,
    run: (api, id) => api.revoke(id),
  },
};

/** After a redispatch, how often and how long the token is read again to show the relay's outcome. */
const FOLLOW_UP_MS = 500;
const FOLLOW_UP_TIMES = 10;

export interface TokenActions {
  /** The Redispatch and Revoke buttons a token in this status allows. */
  buttons: (token: TokenView) => ComponentChildren;
  /** The confirmation dialog and the outcome messages; render once per view. */
  panel: ComponentChildren;
}

/**
 * Redispatch and revoke behind a confirmation. After the call the token is read again and handed to `onChanged`
 * (after a redispatch, a few more times until the relay moved it on), so the view shows its new status.
 */
export function useTokenActions(onChanged: (token: TokenView) => void): TokenActions {
  const { api } = useSession();
  const [asked, setAsked] = useState<{ action: Action; id: string; serial: number } | undefined>();
  const serials = useRef(0);
  const ask = (action: Action, id: string) => setAsked({ action, id, serial: ++serials.current });
  const [message, setMessage] = useState('');
  const [error, setError] = useState<unknown>();
  const changed = useRef(onChanged);
  changed.current = onChanged;

  const confirm = useCallback(async () => {
    if (!asked) return;
    const { action, id } = asked;
    setAsked(undefined);
    setMessage('');
    setError(undefined);
    try {
      await ACTIONS[action].run(api, id);
    } catch (failure) {
      setError(failure);
      return;
    }
    setMessage(ACTIONS[action].done(id));
    for (let time = 0; time <= (action === 'redispatch' ? FOLLOW_UP_TIMES : 0); time++) {
      if (time > 0) await new Promise((resolve) => setTimeout(resolve, FOLLOW_UP_MS));
      try {
        const token = await api.token(id);
        changed.current(token);
        if (token.status !== 'pending') break;
      } catch {
        break;
      }
    }
  }, [api, asked]);

  const cancel = useCallback(
    (serial: number) => setAsked((current) => (current?.serial === serial ? undefined : current)),
    [],
  );

  const buttons = (token: TokenView) => (
    <span class="actions">
      {canRedispatch(token.status) && (
        <button
          type="button"
          aria-label={`Redispatch ${token.id}`}
          onClick={() => ask('redispatch', token.id)}
        >
          Redispatch
        </button>
      )}
      {canRevoke(token.status) && (
        <button
          type="button"
          class="button-danger"
          aria-label={`Revoke ${token.id}`}
          onClick={() => ask('revoke', token.id)}
        >
          Revoke
        </button>
      )}
    </span>
  );

  const panel = (
    <>
      <p role="status" class="status-message">
        {message}
      </p>
      {error !== undefined && <ProblemAlert error={error} need="admin" />}
      <ConfirmDialog
        confirmation={
          asked && { ...asked, title: ACTIONS[asked.action].title, body: ACTIONS[asked.action].body }
        }
        onConfirm={confirm}
        onCancel={cancel}
      />
    </>
  );
  return { buttons, panel };
}
