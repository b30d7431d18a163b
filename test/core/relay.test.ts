import { describe, expect, it } from 'vitest';
import { Dispatcher, type SignalSender } from '../../src/core/dispatcher.js';
import { DispatchFailedError } from '../../src/core/errors.js';
import { newTokenId } from '../../src/core/ids.js';
import { pendingToken } from '../../src/core/mint.js';
import { Relay } from '../../src/core/relay.js';
import type { TokenRecord } from '../../src/core/token.js';
import { SqliteTokenStore } from '../../src/stores/sqlite/sqlite-store.js';

/** Records what the relay hands to a transport; `failing` ids are refused, as a broker would refuse them. */
class RecordingSender implements SignalSender {
  readonly medium = 'amqp' as const;
  readonly sent: string[] = [];
  readonly failing = new Set<string>();
  async send(token: TokenRecord): Promise<void> {
    if (this.failing.has(token.id)) throw new Error('refused');
    this.sent.push(token.id);
  }
}

describe('relay (real SQLite store)', () => {
  it('re-dispatches due pending tokens once, leaves refused ones pending, and does housekeeping', async () => {
    let now = 1_700_000_000_000;
    const clock = () => now;
    const store = new SqliteTokenStore({ filename: ':memory:', tombstoneRetentionMs: 1000 });
    const sender = new RecordingSender();
    const dispatcher = new Dispatcher({ store, senders: [sender], clock });
    const relay = new Relay({
      store,
      dispatcher,
      clock,
      delayMs: 5000,
      leaseMs: 10_000,
      housekeepingEvery: 1,
    });
    const destination = { medium: 'amqp', exchange: 'x', routingKey: 'k' } as const;
    const due = pendingToken({ destination, payload: { n: 1 } }, { mintedBy: 'e', now: now - 6000 });
    const refused = pendingToken({ destination, payload: { n: 2 } }, { mintedBy: 'e', now: now - 6000 });
    const young = pendingToken({ destination, payload: { n: 3 } }, { mintedBy: 'e', now });
    await store.mint([due, refused, young]);
    sender.failing.add(refused.id);
    const stale = {
      id: newTokenId(),
      conversationId: newTokenId(),
      mintedBy: 'api',
      status: 'issued' as const,
      mintedAt: now - 10_000,
      expiresAt: now - 1,
      attempts: 0,
    };
    await store.issue(stale);

    const first = await relay.runOnce();
    expect(first).toMatchObject({ claimed: 2, dispatched: 1, failed: 1, expired: 1 });
    expect(sender.sent).toEqual([due.id]);
    expect((await store.getToken(due.id))?.status).toBe('dispatched');
    expect((await store.getToken(refused.id))?.status).toBe('pending');
    expect((await store.getToken(young.id))?.status).toBe('pending');
    expect((await store.getToken(stale.id))?.status).toBe('expired');

    // The refused token is leased: not retried until the lease runs out, then retried and counted.
    sender.failing.clear();
    expect((await relay.runOnce()).claimed).toBe(0);
    now += 11_000;
    const third = await relay.runOnce();
    expect(third.dispatched).toBe(2); // the refused one, and the young one now due
    expect((await store.getToken(refused.id))?.attempts).toBe(2);
    // The expired token's retention (1 s) has passed: housekeeping purged it.
    expect(third.purged).toBe(1);
    expect(await store.getToken(stale.id)).toBeUndefined();
    expect(relay.stats).toMatchObject({ passes: 3, dispatched: 3, failed: 1, expired: 1, purged: 1 });
    await store.close();
  });

  it('gives up a token its receiver refused for good: revoked once, never sent again; a retriable failure stays', async () => {
    let now = 1_700_000_000_000;
    const clock = () => now;
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const refusing: SignalSender = {
      medium: 'amqp',
      send: async (token) => {
        const retriable = token.payload === 'later';
        throw new DispatchFailedError('peer said no', { tokenId: token.id, retriable });
      },
    };
    const dispatcher = new Dispatcher({ store, senders: [refusing], clock });
    const relay = new Relay({ store, dispatcher, clock, delayMs: 0, leaseMs: 1_000, housekeepingEvery: 0 });
    const destination = { medium: 'amqp', exchange: 'x', routingKey: 'k' } as const;
    const never = pendingToken({ destination, payload: 'never' }, { mintedBy: 'e', now });
    const later = pendingToken({ destination, payload: 'later' }, { mintedBy: 'e', now });
    await store.mint([never, later]);

    expect(await relay.runOnce()).toMatchObject({ claimed: 2, failed: 2, givenUp: 1 });
    expect((await store.getToken(never.id))?.status).toBe('revoked');
    expect((await store.getToken(later.id))?.status).toBe('pending');
    now += 2_000;
    expect(await relay.runOnce()).toMatchObject({ claimed: 1, givenUp: 0 });
    expect(relay.stats).toMatchObject({ failed: 3, givenUp: 1 });
    await store.close();
  });
});
