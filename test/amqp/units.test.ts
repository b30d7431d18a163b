import type { ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import {
  ClosedError,
  ErrorCodes,
  FingerprintMismatchError,
  HandlerFailedError,
  InvalidTokenError,
  LimitExceededError,
  StoreUnavailableError,
  TokenConsumedError,
  VersionConflictError,
} from '../../src/core/errors.js';
import type { TokenRecord } from '../../src/core/token.js';
import { Acks, planAcks } from '../../src/transports/amqp/acks.js';
import type { ConfirmedChannel } from '../../src/transports/amqp/confirmed-channel.js';
import type { Delivery } from '../../src/transports/amqp/delivery.js';
import { dispositionOf } from '../../src/transports/amqp/disposition.js';
import { headerText } from '../../src/transports/amqp/headers.js';
import { verdictOf } from '../../src/transports/amqp/verdict.js';

const policy = { attempts: 3, baseDelayMs: 10, maxDelayMs: 100 };

describe('dispositionOf', () => {
  it('retries a failing handler until the last attempt, then dead-letters it with the error code', () => {
    const failure = new HandlerFailedError('tok12345', new Error('boom'));
    expect(dispositionOf(failure, 1, policy).action).toBe('retry');
    expect(dispositionOf(failure, 2, policy).action).toBe('retry');
    expect(dispositionOf(failure, 3, policy)).toMatchObject({
      action: 'dead-letter',
      code: ErrorCodes.HANDLER_FAILED,
    });
    // Contention on shared state is not the message's fault: it goes back to the queue, even on the last attempt.
    expect(dispositionOf(new VersionConflictError('k', 8), 3, policy).action).toBe('requeue');
    // Anything that is not a TollgateError counts as a handler failure.
    expect(dispositionOf(new TypeError('x'), 3, policy)).toMatchObject({ code: ErrorCodes.HANDLER_FAILED });
  });

  it('dead-letters at once what can never succeed', () => {
    const missing = new InvalidTokenError(ErrorCodes.TOKEN_HEADER_MISSING, 'none');
    expect(dispositionOf(missing, 1, policy)).toMatchObject({
      action: 'dead-letter',
      code: ErrorCodes.TOKEN_HEADER_MISSING,
    });
    const tooBig = new LimitExceededError('too big', {});
    expect(dispositionOf(tooBig, 1, policy)).toMatchObject({
      action: 'dead-letter',
      code: ErrorCodes.LIMIT_EXCEEDED,
    });
  });

  it('holds a delivery through a store outage (re-running it) up to its budget, then requeues it', () => {
    const down = new StoreUnavailableError('down');
    for (let attempt = 1; attempt < 10; attempt++) {
      expect(dispositionOf(down, attempt, policy, { heldMs: 59_999, outageHoldMs: 60_000 })).toMatchObject({
        action: 'retry',
      });
    }
    expect(dispositionOf(down, 50, policy, { heldMs: 60_000, outageHoldMs: 60_000 }).action).toBe('requeue');
    // The budget is for outages only: a failing handler still dead-letters after its attempts.
    const failure = new HandlerFailedError('tok12345', new Error('boom'));
    expect(dispositionOf(failure, 3, policy, { heldMs: 0, outageHoldMs: 60_000 }).action).toBe('dead-letter');
  });

  it('requeues, never dead-letters, when the store or the process is the problem', () => {
    for (let attempt = 1; attempt < 10; attempt++) {
      expect(dispositionOf(new StoreUnavailableError('down'), attempt, policy).action).toBe('requeue');
      expect(dispositionOf(new ClosedError('store'), attempt, policy).action).toBe('requeue');
    }
  });
});

describe('headers', () => {
  it('reads text headers sent as strings or as byte arrays', () => {
    expect(headerText({ a: 'x', b: Buffer.from('y') }, 'a')).toBe('x');
    expect(headerText({ a: 'x', b: Buffer.from('y') }, 'b')).toBe('y');
    expect(headerText({ a: 1 }, 'a')).toBeUndefined();
    expect(headerText(undefined, 'a')).toBeUndefined();
  });
});

describe('planAcks', () => {
  it('acks the finished run at the front with one ack, and those behind an unfinished delivery one by one', () => {
    expect(planAcks([1, 2, 3, 4], new Set([1, 2, 3, 4]))).toEqual({ upTo: 4, run: 4, singles: [] });
    expect(planAcks([1, 2, 3, 4], new Set([1, 2, 4]))).toEqual({ upTo: 2, run: 2, singles: [4] });
    // The oldest is still being handled (a retry, an outage hold): nothing may be acked with `multiple`.
    expect(planAcks([5, 6, 7], new Set([6, 7]))).toEqual({ run: 0, singles: [6, 7] });
    expect(planAcks([5, 6, 7], new Set())).toEqual({ run: 0, singles: [] });
  });
});

describe('Acks', () => {
  /** A channel that records the acks and nacks it is asked for. */
  function fakeChannel() {
    const sent: Array<{ tag: number; multiple: boolean } | { nack: number }> = [];
    const raw = {
      ack: (message: ConsumeMessage, multiple = false) =>
        sent.push({ tag: message.fields.deliveryTag, multiple }),
      nack: (message: ConsumeMessage) => sent.push({ nack: message.fields.deliveryTag }),
    };
    return { channel: { channel: raw } as unknown as ConfirmedChannel, sent };
  }
  const delivery = (channel: ConfirmedChannel, tag: number): Delivery => ({
    channel,
    message: { fields: { deliveryTag: tag } } as ConsumeMessage,
  });

  it('settles a batch with one multiple ack, never covering a delivery still being handled', () => {
    const { channel, sent } = fakeChannel();
    const acks = new Acks();
    const [d1, d2, d3, d4, d5, d6] = [1, 2, 3, 4, 5, 6].map((tag) => delivery(channel, tag)) as Delivery[];
    for (const d of [d1, d2, d3, d4, d5, d6]) acks.track(d as Delivery);
    // 3 is held (retrying): 1–2 go with one multiple ack, 4 alone.
    acks.ack([d1, d2, d4] as Delivery[]);
    expect(sent).toEqual([
      { tag: 2, multiple: true },
      { tag: 4, multiple: false },
    ]);
    // 3 is given back; 5–6 are now at the front.
    acks.requeue(d3 as Delivery);
    acks.ack([d5, d6] as Delivery[]);
    expect(sent.slice(2)).toEqual([{ nack: 3 }, { tag: 6, multiple: true }]);
  });

  it('keeps channels apart: a multiple ack never reaches across to another channel', () => {
    const first = fakeChannel();
    const second = fakeChannel();
    const acks = new Acks();
    const a = [1, 2].map((tag) => delivery(first.channel, tag));
    const b = [1, 2].map((tag) => delivery(second.channel, tag));
    for (const d of [...a, ...b]) acks.track(d);
    acks.ack([...a, b[1] as Delivery]);
    expect(first.sent).toEqual([{ tag: 2, multiple: true }]);
    expect(second.sent).toEqual([{ tag: 2, multiple: false }]);
  });
});

describe('verdictOf', () => {
  it('decides each delivery of a batch from its own outcome', () => {
    const token = { id: 'tok12345' } as TokenRecord;
    expect(
      verdictOf({
        ok: true,
        outcome: { kind: 'processed', result: 1, token, emitted: [token], attempts: 1 },
      }),
    ).toEqual({ action: 'ack', processed: true, emitted: [token] });
    expect(
      verdictOf({ ok: true, outcome: { kind: 'dropped', error: new TokenConsumedError('tok12345') } }),
    ).toEqual({ action: 'ack', processed: false });
    expect(
      verdictOf({
        ok: true,
        outcome: { kind: 'rejected', error: new FingerprintMismatchError('tok12345'), token },
      }),
    ).toMatchObject({ action: 'dead-letter', code: ErrorCodes.FINGERPRINT_MISMATCH });
    const failure = new StoreUnavailableError('down');
    expect(verdictOf({ ok: false, error: failure })).toEqual({ action: 'alone', error: failure });
  });
});
