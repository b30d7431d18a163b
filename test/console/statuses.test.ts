import { describe, expect, it } from 'vitest';
import { canRedispatch, canRevoke, STATUS_MEANING } from '../../console/src/statuses.js';
import { STATUSES, type TokenStatus } from '../../console/src/types.js';
import { sourcesOf } from '../../src/core/token.js';

describe("the console's statuses", () => {
  it('gives every status a meaning of its own, in words', () => {
    expect(Object.keys(STATUS_MEANING)).toEqual([...STATUSES]);
    const meanings = Object.values(STATUS_MEANING);
    expect(new Set(meanings).size).toBe(STATUSES.length);
    for (const meaning of meanings) expect(meaning).toMatch(/^[a-z].{10,}[a-z]$/);
    expect(STATUS_MEANING.pending).toBe('minted, the signal not yet sent');
  });

  it('offers a revoke in exactly the statuses from which the core lets a token be revoked', () => {
    expect(STATUSES.filter(canRevoke)).toEqual(['issued', 'scheduled', 'pending', 'dispatched']);
    expect(STATUSES.filter(canRevoke)).toEqual(sourcesOf('revoked'));
  });

  it('offers a redispatch for a pending token only, the one status the gateway re-sends', () => {
    expect(STATUSES.filter(canRedispatch)).toEqual(['pending']);
  });

  it('offers no action on a status it does not know (a newer gateway)', () => {
    const unknown = 'quarantined' as TokenStatus;
    expect(canRevoke(unknown)).toBe(false);
    expect(canRedispatch(unknown)).toBe(false);
  });
});
