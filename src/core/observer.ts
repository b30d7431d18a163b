import { ErrorCodes } from './errors.js';
import type { TokenRecord } from './token.js';

/** A pino-compatible logger surface, so the core needs no logging library. */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

export type DropReason = 'unknown' | 'consumed' | 'revoked' | 'expired';

/** Why a signal was dropped, from the code of the error that dropped it. */
export function dropReason(code: string): DropReason {
  if (code === ErrorCodes.TOKEN_CONSUMED) return 'consumed';
  if (code === ErrorCodes.TOKEN_REVOKED) return 'revoked';
  if (code === ErrorCodes.TOKEN_EXPIRED) return 'expired';
  return 'unknown';
}

/**
 * What happens to signals, reported as it happens. Metrics and audit trails implement this;
 * every callback is optional and must not throw (errors are swallowed so observation never breaks a hop).
 */
export interface Observer {
  minted?(tokens: readonly TokenRecord[], by: string): void;
  processed?(endpoint: string, token: TokenRecord, durationMs: number, attempts: number): void;
  dropped?(endpoint: string, tokenId: string, reason: DropReason): void;
  rejected?(endpoint: string, tokenId: string | undefined, reason: string): void;
  commitRetried?(endpoint: string, reason: 'version-conflict' | 'transient'): void;
  dispatched?(token: TokenRecord, via: 'hop' | 'relay' | 'edge'): void;
  dispatchFailed?(token: TokenRecord, error: unknown): void;
  deadLettered?(endpoint: string, tokenId: string | undefined, reason: string): void;
  hopCompleted?(endpoint: string, durationMs: number): void;
}

/** Calls every observer, isolating failures. */
export function fanOut(observers: readonly Observer[]): Required<Observer> {
  const call =
    <K extends keyof Observer>(name: K) =>
    (...args: Parameters<Required<Observer>[K]>) => {
      for (const observer of observers) {
        const fn = observer[name] as ((...a: unknown[]) => void) | undefined;
        if (!fn) continue;
        try {
          fn.apply(observer, args);
        } catch {
          // observation must never break a hop
        }
      }
    };
  return {
    minted: call('minted'),
    processed: call('processed'),
    dropped: call('dropped'),
    rejected: call('rejected'),
    commitRetried: call('commitRetried'),
    dispatched: call('dispatched'),
    dispatchFailed: call('dispatchFailed'),
    deadLettered: call('deadLettered'),
    hopCompleted: call('hopCompleted'),
  };
}
