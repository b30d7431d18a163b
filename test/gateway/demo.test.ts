import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('npm run demo', () => {
  it('applies every order exactly once per hop despite duplicates and a SIGKILLed worker', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
      cwd: ROOT,
      timeout: 90_000,
    });
    expect(stdout).toContain('payments worker was SIGKILLed');
    expect(stdout).toContain('each of the 5 orders was applied exactly once at every hop');
  });
});
