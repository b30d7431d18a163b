/** SQLite's lock contention: retriable, nothing was written. */
export function isBusy(error: unknown): boolean {
  return (
    error instanceof Error &&
    'code' in error &&
    (error.code === 'SQLITE_BUSY' || error.code === 'SQLITE_LOCKED' || error.code === 'SQLITE_BUSY_SNAPSHOT')
  );
}
