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

  it('writes every key and leaf exactly as JSON.stringify does, with keys in code-unit order', () => {
    // The oracle leaves escaping and number forms to JSON.stringify. It cannot simply stringify a key-sorted
    // copy: JavaScript objects list integer-like keys ("0") first, whatever order they were added in.
    const expected = (v: unknown): string =>
      Array.isArray(v)
        ? `[${v.map(expected).join(',')}]`
        : v !== null && typeof v === 'object'
          ? `{${Object.keys(v)
              .sort()
              .map((k) => `${JSON.stringify(k)}:${expected((v as Record<string, unknown>)[k])}`)
              .join(',')}}`
          : JSON.stringify(v);
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.jsonValue({ stringUnit: 'binary' })), (value) => {
        expect(canonicalJson(value)).toBe(expected(value));
      }),
      { numRuns: 300 },
    );
    // Small objects and large ones are sorted by different code: both against the oracle.
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ unit: 'binary' }), fc.integer(), { minKeys: 0, maxKeys: 40 }),
        (record) => {
          expect(canonicalJson(record)).toBe(expected(record));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('names where a refused value sits, and refuses array holes instead of dropping them', () => {
    const refusal = (value: unknown) => {
      try {
        canonicalJson(value);
      } catch (error) {
        return error as { code: string; message: string; details: { path: string } };
      }
      throw new Error('not refused');
    };
    expect(refusal({ a: [1, { b: Number.NaN }] }).details.path).toBe('$.a[1].b');
    expect(refusal({ a: [1, { b: Number.NaN }] }).message).toBe('$.a[1].b is not a finite number');
    expect(refusal([new Date(0)]).details.path).toBe('$[0]');
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    const holey = [1, , 3];
    expect(refusal({ list: holey })).toMatchObject({
      code: ErrorCodes.INVALID_PAYLOAD,
      details: { path: '$.list[1]' },
    });
    // What was refused once is fine again: the path of one call does not leak into the next.
    expect(canonicalJson({ ok: [1, 2] })).toBe('{"ok":[1,2]}');
  });

  it('keeps the fingerprints of tokens already stored: a pinned vector', () => {
    // Stored tokens carry fingerprints; a change in canonical form would refuse their signals after an upgrade.
    const payload = {
      order: 'A-1',
      ключ: 'é\u2028😀"\\\n',
      n: [0, -0, 1.5, 1e21, -1e-7],
      nested: { b: null, a: true, '10': 'ten', '2': 'two' },
      skipped: undefined,
    };
    expect(canonicalJson(payload)).toBe(
      '{"n":[0,0,1.5,1e+21,-1e-7],"nested":{"10":"ten","2":"two","a":true,"b":null},"order":"A-1","ключ":"é\u2028😀\\"\\\\\\n"}',
    );
    expect(fingerprint(payload)).toBe('a140cce9d67d9ef2c7b791327884a53574d5d9a679aef8939df413a5ab085e39');
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
