import { useEffect, useRef } from 'preact/hooks';

export interface Confirmation {
  /** Tells one request from the next, even for the same token and action. */
  serial: number;
  title: string;
  /** What confirming does, in a sentence. */
  body: string;
  id: string;
}

/**
 * A native modal `<dialog>`: the browser traps focus inside it, Escape cancels it and focus returns to the button
 * that opened it. Shown while `confirmation` is set. The browser fires `close` as a task of its own after Escape,
 * which may run after a new request was already made: the cancel names the request it ends, so a late one cannot
 * end the next.
 */
export function ConfirmDialog({
  confirmation,
  onConfirm,
  onCancel,
}: {
  confirmation: Confirmation | undefined;
  onConfirm: () => void;
  onCancel: (serial: number) => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const shown = useRef<number | undefined>(undefined);
  const serial = confirmation?.serial;
  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (serial !== undefined && !element.open) {
      element.showModal();
      shown.current = serial;
    }
    if (serial === undefined && element.open) element.close();
  }, [serial]);
  const closed = () => {
    if (shown.current !== undefined) onCancel(shown.current);
    shown.current = undefined;
  };
  return (
    <dialog ref={dialog} class="dialog" aria-labelledby="confirm-title" onClose={closed}>
      {confirmation && (
        <>
          <h2 id="confirm-title">{confirmation.title}</h2>
          <p>
            Token <code>{confirmation.id}</code>: {confirmation.body}
          </p>
          <div class="dialog-buttons">
            <button type="button" class="button-primary" onClick={onConfirm}>
              Confirm
            </button>
            <button type="button" onClick={() => confirmation && onCancel(confirmation.serial)}>
              Cancel
            </button>
          </div>
        </>
      )}
    </dialog>
  );
}
