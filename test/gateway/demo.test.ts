import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('npm run demo', () => {
  it('applies every order exactly once per hop despite duplicates and a SIGKILLed worker, and once in each of two systems', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
      cwd: ROOT,
      timeout: 90_000,
    });
    expect(stdout).toContain('payments worker was SIGKILLed');
    expect(stdout).toContain('each of the 5 orders was applied exactly once at every hop');
    // Two systems: a duplicate request straight at B is answered from B's replay store, and the conversation
    // leaves A for B's origin and enters B from A's token.
    expect(stdout).toMatch(/re-sent straight to B: 201 duplicate/);
    expect(stdout).toMatch(/A's view of order-1's conversation.*http:\/\/127\.0\.0\.1:\d+.*B's view/s);
    expect(stdout).toMatch(/B's view of order-1's conversation.*A's [\w-]{8}.*State changes/s);
    expect(stdout).toContain(
      'each of the 3 orders was applied exactly once in A and in B, and shipped once in B',
    );
  }, 90_000);
});
