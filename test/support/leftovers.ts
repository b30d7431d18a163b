import type { ChildProcess } from 'node:child_process';

/**
 * After a multi-process test: SIGKILL the children still running, wait until each is gone, then run the
 * cleanups, last registered first. A failed test must not leave a process holding a port, a queue or a store.
 */
export async function stopLeftovers(
  children: Array<{ process: ChildProcess; exited: Promise<unknown> }>,
  cleanups: Array<() => Promise<void>>,
): Promise<void> {
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
    await child.exited;
  }
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}
