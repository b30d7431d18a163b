import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../src/core/errors.js';
import { canonicalJson, fingerprint, isFingerprint } from '../../src/core/fingerprint.js';

describe('canonical JSON', () => {
  it('sorts keys at every depth and drops whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('writes numbers in their shortest form and keeps unicode exact', () => {
    expect(canonicalJson({ n: 1.0, m: -0.5, big: 1e21, s: 'é\u2028😀' })).toBe(
      '{"big":1e+21,"m":-0.5,"n":1,"s":"é\u2028😀"}',
    );
  });

  it('gives the same fingerprint whatever order keys arrive in', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (record) => {
        const reversed = Object.fromEntries(Object.entries(record).reverse());
        expect(fingerprint(reversed)).toBe(fingerprint(record));
      }),
    );
  });

  it('round-trips: parsing canonical JSON and canonicalising again is stable', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const once = canonicalJson(value);
        expect(canonicalJson(JSON.parse(once))).toBe(once);
      }),
    );
  });

  it('tells different payloads apart', () => {
    expect(fingerprint({ a: 1 })).not.toBe(fingerprint({ a: '1' }));
    expect(fingerprint([1, 2])).not.toBe(fingerprint([2, 1]));
    expect(isFingerprint(fingerprint({}))).toBe(true);
    expect(isFingerprint('xyz')).toBe(false);
  });

  it('refuses values JSON cannot carry with a typed error', () => {
    for (const bad of [
      Number.NaN,
      Number.POSITIVE_INFINITY,
      () => 1,
      Symbol('s'),
      10n,
      new Date(0),
      new Map(),
    ]) {
      expect(() => canonicalJson({ bad })).toThrow(
        expect.objectContaining({ code: ErrorCodes.INVALID_PAYLOAD }),
      );
    }
  });
});
