import { describe, expect, it } from 'vitest';
import {
  ClosedError,
  ErrorCodes,
  HandlerFailedError,
  InvalidTokenError,
  LimitExceededError,
  StoreUnavailableError,
  VersionConflictError,
} from '../../src/core/errors.js';
import { dispositionOf } from '../../src/transports/amqp/disposition.js';
import { headerText } from '../../src/transports/amqp/headers.js';

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
