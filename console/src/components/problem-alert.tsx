import { ApiProblem, Unreachable } from '../api.js';

/** Which scope the failed call needed: it decides what a 403 means to the reader. */
export type Need = 'read' | 'admin';

/** One sentence that says what a 401 or 403 means here; the problem's own title and detail follow it. */
function scopeHint(problem: ApiProblem, need: Need): string | undefined {
  if (problem.status === 401) return 'This API key is not valid.';
  if (problem.status === 403) {
    return need === 'admin'
      ? 'This action needs the admin scope, which this API key lacks.'
      : 'This API key lacks the read scope, which viewing needs.';
  }
  return undefined;
}

/**
 * An error shown as an alert: a problem answer with its status, title and detail; an unreachable gateway; or
 * anything else (a bug) with its message, never a blank page.
 */
export function ProblemAlert({
  error,
  need = 'read',
  unreachable,
  notFound,
}: {
  error: unknown;
  need?: Need;
  /** Said instead of the default when the gateway did not answer. */
  unreachable?: string;
  /** Said first on a 404: what was not found. */
  notFound?: string;
}) {
  if (error instanceof Unreachable) {
    return (
      <div role="alert" class="alert">
        <p class="alert-title">
          {unreachable ?? 'No answer from the gateway: this view loads again as soon as it answers.'}
        </p>
      </div>
    );
  }
  if (error instanceof ApiProblem) {
    const hint = error.status === 404 && notFound ? notFound : scopeHint(error, need);
    return (
      <div role="alert" class="alert">
        <p class="alert-title">
          {error.status} {error.title}
        </p>
        {hint && <p>{hint}</p>}
        {error.detail && <p class="alert-detail">{error.detail}</p>}
      </div>
    );
  }
  return (
    <div role="alert" class="alert">
      <p class="alert-title">Something went wrong in the console</p>
      <p class="alert-detail">{error instanceof Error ? error.message : String(error)}</p>
    </div>
  );
}
