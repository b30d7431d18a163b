import { STATUS_MEANING } from '../statuses.js';
import type { TokenStatus } from '../types.js';

/** A status as its name in text, with a colour and a shape beside it as extra cues. */
export function StatusBadge({ status, testId }: { status: TokenStatus; testId?: string }) {
  return (
    <span class={`status status-${status}`} title={STATUS_MEANING[status]}>
      <span class="status-mark" aria-hidden="true" />
      <span data-testid={testId}>{status}</span>
    </span>
  );
}
