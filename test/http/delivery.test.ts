import { describe, expect, it } from 'vitest';
import { judgeAnswer, parseRetryAfter, problemType } from '../../src/transports/http/index.js';

const headers = (entries: Record<string, string> = {}) => new Headers(entries);

describe('judging an HTTP answer', () => {
  it('counts processed and replayed answers as delivered, whatever their status', () => {
    expect(judgeAnswer(201, headers({ 'exactly-once-status': 'processed' }), undefined)).toEqual({
      kind: 'delivered',
      outcome: 'processed',
    });
    expect(judgeAnswer(404, headers({ 'exactly-once-status': 'duplicate' }), undefined)).toEqual({
      kind: 'delivered',
      outcome: 'duplicate',
    });
  });

  it('counts unknown and consumed tokens as delivered: nothing more can come of sending again', () => {
    for (const kind of ['token-unknown', 'token-consumed'] as const) {
      expect(judgeAnswer(409, headers(), problemType(kind))).toEqual({
        kind: 'delivered',
        outcome: 'already-consumed',
      });
    }
  });

  it('retries in-progress, 408, 429 and 5xx answers, with their Retry-After', () => {
    expect(judgeAnswer(409, headers({ 'retry-after': '2' }), problemType('token-in-progress'))).toEqual({
      kind: 'retry',
      retryAfterMs: 2_000,
    });
    for (const status of [408, 429, 500, 502, 503])
      expect(judgeAnswer(status, headers(), undefined).kind).toBe('retry');
  });

  it('gives up on other client errors', () => {
    expect(judgeAnswer(422, headers(), problemType('fingerprint-mismatch'))).toEqual({
      kind: 'permanent',
      problemType: problemType('fingerprint-mismatch'),
    });
    for (const kind of ['token-revoked', 'token-expired'] as const) {
      expect(judgeAnswer(409, headers(), problemType(kind)).kind).toBe('permanent');
    }
    expect(judgeAnswer(404, headers(), undefined)).toEqual({ kind: 'permanent' });
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
