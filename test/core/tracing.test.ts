import { describe, expect, it } from 'vitest';
import { pendingToken } from '../../src/core/mint.js';
import type { TokenRecord } from '../../src/core/token.js';
import { formatTraceparent, parseTraceparent } from '../../src/core/trace-context.js';
import { dispatching, hopTrace, receiving, stampEmitted } from '../../src/core/tracing.js';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

function token(headers?: Record<string, string>): TokenRecord {
  return pendingToken(
    {
      destination: { medium: 'http', method: 'POST', url: 'http://peer/x' },
      payload: 1,
      ...(headers ? { headers } : {}),
    },
    { mintedBy: 'test', now: 0 },
  );
}

describe('W3C trace context', () => {
  it('reads a traceparent and writes it back the same', () => {
    const remote = parseTraceparent(TRACEPARENT, 'vendor=abc');
    expect(remote).toMatchObject({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: 1,
      isRemote: true,
    });
    expect(remote?.traceState?.get('vendor')).toBe('abc');
    expect(formatTraceparent(remote!)).toBe(TRACEPARENT);
  });

  it('refuses malformed, all-zero, version ff and over-long version 00 traceparents', () => {
    for (const bad of [
      undefined,
      '',
      'garbage',
      '00-00000000000000000000000000000000-b7ad6b7169203331-01',
      '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01',
      'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      `${TRACEPARENT}-extra`,
      '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01',
    ]) {
      expect(parseTraceparent(bad), String(bad)).toBeUndefined();
    }
    // A later version may append fields.
    expect(parseTraceparent(`01-${TRACEPARENT.slice(3)}-extra`)).toBeDefined();
  });
});

describe('tracing with no OpenTelemetry SDK registered', () => {
  it('sends the stored token itself, headers untouched', async () => {
    const stored = token({ traceparent: TRACEPARENT });
    const sent: TokenRecord[] = [];
    await dispatching(stored, 'hop', async (t) => {
      sent.push(t);
    });
    expect(sent).toEqual([stored]);
    expect(sent[0]).toBe(stored);
  });

  it('starts no hop spans and stamps no emitted token', async () => {
    const emitted = [token(), token({ 'x-other': 'kept' })];
    await receiving(
      'amqp',
      () => ({ traceparent: TRACEPARENT }),
      () => ({}),
      async (span) => {
        expect(span.isRecording()).toBe(false);
        const hop = hopTrace(span);
        expect(hop).toBeUndefined();
        stampEmitted(emitted, hop);
      },
    );
    expect(emitted[0]!.headers).toBeUndefined();
    expect(emitted[1]!.headers).toEqual({ 'x-other': 'kept' });
  });
});
