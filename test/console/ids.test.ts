import { describe, expect, it } from 'vitest';
import { idProblem } from '../../console/src/ids.js';
import { isTokenId, newTokenId } from '../../src/core/ids.js';

const ALPHABET = 'letters A–Z and a–z, digits, “_” and “-”.';

describe("the console's id check", () => {
  it('accepts ids of 8 to 128 characters from the alphabet the gateway takes', () => {
    for (const id of [newTokenId(), 'abcdefgh', 'order-2024_0001', 'A1_-z9Z0', 'x'.repeat(128)]) {
      expect(idProblem(id)).toBeUndefined();
    }
  });

  it('says the id is empty', () => {
    expect(idProblem('')).toBe('the id is empty.');
  });

  it('says how many characters an id of the right alphabet has, and the allowed range', () => {
    expect(idProblem('a')).toBe('it has 1 character; an id has 8 to 128.');
    expect(idProblem('ab')).toBe('it has 2 characters; an id has 8 to 128.');
    expect(idProblem('abcdefg')).toBe('it has 7 characters; an id has 8 to 128.');
    expect(idProblem('x'.repeat(129))).toBe('it has 129 characters; an id has 8 to 128.');
  });

  it('names the first character outside the alphabet, before the length', () => {
    expect(idProblem('order 2024')).toBe(`it contains a space; an id has only ${ALPHABET}`);
    expect(idProblem(' abcdefgh')).toBe(`it contains a space; an id has only ${ALPHABET}`);
    expect(idProblem('a/b')).toBe(`it contains “/”; an id has only ${ALPHABET}`);
    expect(idProblem('order.2024;x')).toBe(`it contains “.”; an id has only ${ALPHABET}`);
    expect(idProblem(`${'x'.repeat(200)}+`)).toBe(`it contains “+”; an id has only ${ALPHABET}`);
  });

  it('names a character beyond ASCII whole, even one outside the Basic Multilingual Plane', () => {
    expect(idProblem('ünïcödé-id')).toBe(`it contains “ü”; an id has only ${ALPHABET}`);
    expect(idProblem('order-😀-2024')).toBe(`it contains “😀”; an id has only ${ALPHABET}`);
  });

  it('refuses exactly the ids the core refuses', () => {
    const candidates = [
      '',
      'short',
      'abcdefgh',
      'abcdefg',
      'has space inside',
      'semi;colon123',
      'tab\tinside1',
      'trailing-newline\n',
      'x'.repeat(128),
      'x'.repeat(129),
      'ünïcödé-id',
      newTokenId(),
    ];
    for (const id of candidates) {
      expect(idProblem(id) === undefined, JSON.stringify(id)).toBe(isTokenId(id));
    }
  });
});
