import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { isTokenId, newTokenId } from '../../src/core/ids.js';
import { validateDestination } from '../../src/core/mint.js';
import { backoffDelay } from '../../src/core/retry.js';
import { canTransition, sourcesOf, TOKEN_STATUSES } from '../../src/core/token.js';

describe('token ids', () => {
  it('are 128 random bits in 22 URL-safe characters', () => {
    const ids = new Set(Array.from({ length: 10_000 }, newTokenId));
    expect(ids.size).toBe(10_000);
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(Buffer.from(id, 'base64url')).toHaveLength(16);
    }
  });

  it('accept caller-chosen ids only from a header-safe alphabet', () => {
    expect(isTokenId('order-2024_0001')).toBe(true);
    for (const bad of [
      '',
      'short',
      'has space inside',
      'semi;colon123',
      'x'.repeat(129),
      'ünïcödé-id',
      42,
      null,
    ]) {
      expect(isTokenId(bad)).toBe(false);
    }
  });
});

describe('status machine', () => {
  it('moves one way only', () => {
    const allowed = TOKEN_STATUSES.flatMap((from) =>
      TOKEN_STATUSES.filter((to) => canTransition(from, to)).map((to) => `${from}->${to}`),
    );
    expect(allowed.sort()).toEqual(
      [
        'dispatched->consumed',
        'dispatched->revoked',
        'issued->consumed',
        'issued->expired',
        'issued->revoked',
        'pending->consumed',
        'pending->dispatched',
        'pending->revoked',
        'scheduled->pending',
        'scheduled->revoked',
      ].sort(),
    );
    // no cycles: nothing ever returns to a status it left
    for (const from of TOKEN_STATUSES) expect(canTransition(from, from)).toBe(false);
    expect(sourcesOf('consumed').sort()).toEqual(['dispatched', 'issued', 'pending']);
    // A scheduled token is never consumed before a relay has claimed it (scheduled -> pending).
    expect(sourcesOf('revoked').sort()).toEqual(['dispatched', 'issued', 'pending', 'scheduled']);
  });
});

describe('backoff', () => {
  it('grows exponentially up to the cap, with full jitter', () => {
    const policy = { attempts: 10, baseDelayMs: 10, maxDelayMs: 300 };
    expect(backoffDelay(policy, 1, () => 0.999)).toBe(9);
    expect(backoffDelay(policy, 3, () => 0.999)).toBe(39);
    expect(backoffDelay(policy, 9, () => 0.999)).toBe(299);
    expect(backoffDelay(policy, 9, () => 0)).toBe(0);
  });
});

describe('HTTP destination issuer', () => {
  const http = { medium: 'http', method: 'POST', url: 'http://b.test/shipments' } as const;

  it('accepts an issuing URL with a credential named, not given', () => {
    for (const issuer of [
      { url: 'http://b.test/v1/tokens' },
      { url: 'https://b.test:8443/v1/tokens', credential: 'shipping' },
      { url: 'http://b.test/v1/tokens', credential: 'team.shipping:prod-2' },
    ]) {
      expect(() => validateDestination({ ...http, issuer })).not.toThrow();
    }
  });

  it('refuses a relative or non-http issuer URL and a credential that cannot be a name, without echoing it', () => {
    for (const issuer of [
      { url: '/v1/tokens' },
      { url: 'ftp://b.test/v1/tokens' },
      { url: 'http://b.test/v1/tokens', credential: '' },
      { url: 'http://b.test/v1/tokens', credential: 'Bearer s3cret value' },
      { url: 'http://b.test/v1/tokens', credential: 'x'.repeat(129) },
      null,
    ]) {
      const error = (() => {
        try {
          validateDestination({ ...http, issuer: issuer as never });
        } catch (caught) {
          return caught;
        }
      })();
      expect(error).toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
      expect(String((error as Error).message)).not.toContain('s3cret');
    }
  });
});
