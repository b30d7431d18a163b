import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, TollgateError } from '../../src/core/errors.js';
import { canonicalJson } from '../../src/core/fingerprint.js';
import { isTokenId, newTokenId } from '../../src/core/ids.js';
import { requireTokenId } from '../../src/core/processor.js';
import { decodeCursor, encodeCursor, pageLimit } from '../../src/stores/paging.js';

/** Outside input either parses or fails with a typed Tollgate error of the expected code — never anything else. */
function outcomeOf(parse: () => unknown): { ok: true; value: unknown } | { ok: false; code: string } {
  try {
    return { ok: true, value: parse() };
  } catch (error) {
    expect(error).toBeInstanceOf(TollgateError);
    return { ok: false, code: (error as TollgateError).code };
  }
}

describe('token header values', () => {
  it('any string is either a valid id or a MISSING/MALFORMED error', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('', ' ', newTokenId())),
        (raw) => {
          const result = outcomeOf(() => requireTokenId(raw));
          if (result.ok) expect(isTokenId(result.value)).toBe(true);
          else
            expect([ErrorCodes.TOKEN_HEADER_MISSING, ErrorCodes.TOKEN_MALFORMED]).toContain(
              (result as { code: string }).code,
            );
        },
      ),
    );
  });

  it('every id Tollgate mints is accepted back', () => {
    fc.assert(
      fc.property(fc.integer(), () => {
        expect(requireTokenId(newTokenId())).toMatch(/^[A-Za-z0-9_-]{22}$/);
      }),
    );
  });
});

describe('pagination input', () => {
  it('any cursor string decodes to a position or fails with INVALID_ARGUMENT', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.base64String(),
          fc.json().map((j) => Buffer.from(j).toString('base64url')),
        ),
        (raw) => {
          const result = outcomeOf(() => decodeCursor(raw));
          if (!result.ok) expect(result.code).toBe(ErrorCodes.INVALID_ARGUMENT);
        },
      ),
    );
  });

  it('cursors round-trip', () => {
    fc.assert(
      fc.property(fc.nat(), fc.string(), (mintedAt, id) => {
        expect(decodeCursor(encodeCursor({ mintedAt, id }))).toEqual({ mintedAt, id });
      }),
    );
  });

  it('limits outside 1..1000 or non-integers are refused with INVALID_ARGUMENT', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer(), fc.double()), (limit) => {
        const result = outcomeOf(() => pageLimit(limit));
        const valid = Number.isInteger(limit) && limit >= 1 && limit <= 1000;
        expect(result.ok).toBe(valid);
      }),
    );
  });
});

describe('payload canonicalisation', () => {
  it('any JSON text parses into a value with a canonical form, or the value is refused with INVALID_PAYLOAD', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const result = outcomeOf(() => canonicalJson(value));
        if (!result.ok) expect(result.code).toBe(ErrorCodes.INVALID_PAYLOAD);
        else expect(() => JSON.parse(result.value as string)).not.toThrow();
      }),
    );
  });
});
