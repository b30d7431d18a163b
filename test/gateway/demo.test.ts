import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('npm run demo', () => {
  it('applies every order exactly once per hop despite duplicates and a SIGKILLed worker, once in each of two systems, and runs a booking process to both its endings once', async () => {
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
    // Business processes: each booking is shown waiting for its payment with its pending expiry; the paid one's
    // expiry is revoked by the payment's commit, the other's fires after its due time, and a duplicate is dropped.
    expect(stdout).toMatch(
      /b-1 reserved: state \{"bookingId":"b-1".*timeouts: expiry scheduled, due in \d+\.\d s/,
    );
    expect(stdout).toMatch(
      /b-2 reserved: state \{"bookingId":"b-2".*timeouts: expiry scheduled, due in \d+\.\d s/,
    );
    expect(stdout).toContain("b-1's payment was delivered twice: the copy was dropped");
    expect(stdout).toContain("b-1: confirmed; its expiry timeout is revoked, in the payment's commit");
    expect(stdout).toMatch(/b-2: expired; its expiry timeout is consumed, applied \d+ ms after its due time/);
    expect(stdout).toContain('seats free: 8 of 10; both instances finished (deleted)');
    expect(stdout).toContain('b-1 was confirmed once and b-2 expired once: every step applied exactly once');
  }, 90_000);
});
