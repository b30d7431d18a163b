import { useEffect, useRef } from 'preact/hooks';

export interface Confirmation {
  title: string;
  /** What confirming does, in a sentence. */
  body: string;
  id: string;
}

/**
 * A native modal `<dialog>`: the browser traps focus inside it, Escape cancels it and focus returns to the button
 * that opened it. Shown while `confirmation` is set.
 */
export function ConfirmDialog({
  confirmation,
  onConfirm,
  onCancel,
}: {
  confirmation: Confirmation | undefined;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (confirmation && !element.open) element.showModal();
    if (!confirmation && element.open) element.close();
  }, [confirmation]);
  return (
    <dialog ref={dialog} class="dialog" aria-labelledby="confirm-title" onClose={onCancel}>
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
            <button type="button" onClick={onCancel}>
              Cancel
            </button>
          </div>
        </>
      )}
    </dialog>
  );
}
