import { describe, expect, it } from 'vitest';
import { Dispatcher, type SignalSender } from '../../src/core/dispatcher.js';
import { DispatchFailedError } from '../../src/core/errors.js';
import { newTokenId } from '../../src/core/ids.js';
import { pendingToken } from '../../src/core/mint.js';
import { Relay } from '../../src/core/relay.js';
import { scheduledToken } from '../../src/core/scheduling.js';
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

  it('purges every tombstone past its retention in one housekeeping pass, in batches of 1 000', async () => {
    let now = 1_700_000_000_000;
    const clock = () => now;
    const store = new SqliteTokenStore({ filename: ':memory:', tombstoneRetentionMs: 1000 });
    const dispatcher = new Dispatcher({ store, senders: [new RecordingSender()], clock });
    const relay = new Relay({ store, dispatcher, clock, housekeepingEvery: 1 });
    const destination = { medium: 'amqp', exchange: 'x', routingKey: 'k' } as const;
    // 2 500 consumed tokens: more than two of the relay's purge batches (1 000).
    const tokens = Array.from({ length: 2_500 }, (_, n) =>
      pendingToken({ destination, payload: { n } }, { mintedBy: 'e', now }),
    );
    await store.mint(tokens);
    for (const token of tokens) {
      const result = await store.commit({
        consume: { tokenId: token.id, fingerprint: token.fingerprint as string, consumedBy: 'hop' },
        writes: [],
        mints: [],
        now,
      });
      expect(result.ok).toBe(true);
    }
    now += 2_000;
    const purge = store.purge.bind(store);
    const batches: number[] = [];
    store.purge = async (at, limit) => {
      const purged = await purge(at, limit);
      batches.push(purged);
      return purged;
    };
    expect((await relay.runOnce()).purged).toBe(2_500);
    // In short batches, so that the hops of the process run between them.
    expect(batches).toEqual([1_000, 1_000, 500]);
    expect((await store.statusCounts()).consumed).toBe(0);
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

  it('redispatches one pending token younger than its delay now, leased so that a pass does not send it again', async () => {
    const { store, sender, relay, time } = scheduledSetup();
    const young = pendingToken({ destination: queue, payload: 1 }, { mintedBy: 'e', now: time.now });
    const other = pendingToken({ destination: queue, payload: 2 }, { mintedBy: 'e', now: time.now - 60_000 });
    await store.mint([young, other]);

    expect(await relay.redispatch(young.id)).toBe('dispatched');
    expect(sender.sent).toEqual([young.id]);
    expect(await store.getToken(young.id)).toMatchObject({ status: 'dispatched', attempts: 1 });
    expect((await store.getToken(other.id))?.status).toBe('pending');
    expect(await relay.redispatch(young.id)).toBe('not-claimed');
    expect(relay.stats).toMatchObject({ claimed: 1, dispatched: 1 });

    // A failed send keeps its lease: a pass leaves it alone until the lease runs out, then sends it.
    sender.failing.add(other.id);
    expect(await relay.redispatch(other.id)).toBe('failed');
    sender.failing.clear();
    expect((await relay.runOnce()).claimed).toBe(0);
    time.now += 11_000;
    expect(await relay.runOnce()).toMatchObject({ claimed: 1, dispatched: 1 });
    expect(sender.sent).toEqual([young.id, other.id]);
    await store.close();
  });

  it('leaves a redispatched token of another medium to the relays that send it, its lease released', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const sender = new RecordingSender();
    const dispatcher = new Dispatcher({ store, senders: [sender] });
    const httpOnly = new Relay({ store, dispatcher, medium: 'http', housekeepingEvery: 0 });
    const token = pendingToken(
      { destination: queue, payload: 1 },
      { mintedBy: 'e', now: Date.now() - 60_000 },
    );
    await store.mint([token]);
    const claim = { mintedBefore: Date.now(), now: Date.now(), leaseMs: 600_000, limit: 10 };
    expect(await store.claimPending(claim)).toHaveLength(1);

    expect(await httpOnly.redispatch(token.id)).toBe('not-claimed');
    expect(sender.sent).toEqual([]);
    expect(await store.getToken(token.id)).toMatchObject({ status: 'pending', attempts: 1 });
    expect((await store.claimPending(claim)).map((t) => t.id)).toEqual([token.id]);
    await store.close();
  });

  it('gives up a redispatched token its receiver refuses for good, as a pass would', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const refusing: SignalSender = {
      medium: 'amqp',
      send: async (token) => {
        throw new DispatchFailedError('peer said no', { tokenId: token.id, retriable: false });
      },
    };
    const relay = new Relay({ store, dispatcher: new Dispatcher({ store, senders: [refusing] }) });
    const token = pendingToken({ destination: queue, payload: 1 }, { mintedBy: 'e', now: Date.now() });
    await store.mint([token]);
    expect(await relay.redispatch(token.id)).toBe('given-up');
    expect((await store.getToken(token.id))?.status).toBe('revoked');
    expect(relay.stats).toMatchObject({ failed: 1, givenUp: 1 });
    await store.close();
  });

  it('sends scheduled tokens once they are due, earliest first, and reports them as due', async () => {
    const { store, sender, relay, time } = scheduledSetup();
    const at = (dueAt: number, n: number) =>
      scheduledToken(
        { destination: queue, payload: { n } },
        { mintedBy: 'e', now: time.now - 60_000 },
        dueAt,
      );
    const later = at(time.now + 1000, 1);
    const sooner = at(time.now + 500, 2);
    const far = at(time.now + 60_000, 3);
    await store.mint([later, sooner, far]);

    expect(await relay.runOnce()).toMatchObject({ due: 0, claimed: 0, dispatched: 0 });
    time.now += 1000;
    expect(await relay.runOnce()).toMatchObject({ due: 2, claimed: 0, dispatched: 2, failed: 0 });
    expect(sender.sent).toEqual([sooner.id, later.id]);
    expect((await store.getToken(later.id))?.status).toBe('dispatched');
    expect((await store.getToken(far.id))?.status).toBe('scheduled');
    expect(await relay.runOnce()).toMatchObject({ due: 0, dispatched: 0 });
    expect(relay.stats).toMatchObject({ passes: 3, due: 2, dispatched: 2 });
    await store.close();
  });

  it('leaves a due token whose send failed pending under its lease; the pending pass re-sends it after', async () => {
    const { store, sender, relay, time } = scheduledSetup();
    const timeout = scheduledToken(
      { destination: queue, payload: {} },
      { mintedBy: 'e', now: time.now - 1 },
      time.now,
    );
    await store.mint([timeout]);
    sender.failing.add(timeout.id);
    expect(await relay.runOnce()).toMatchObject({ due: 1, failed: 1 });
    expect(await store.getToken(timeout.id)).toMatchObject({
      status: 'pending',
      leaseUntil: time.now + 10_000,
    });
    sender.failing.clear();
    time.now += 5_000;
    expect(await relay.runOnce()).toMatchObject({ due: 0, claimed: 0 });
    time.now += 6_000;
    expect(await relay.runOnce()).toMatchObject({ due: 0, claimed: 1, dispatched: 1 });
    expect(sender.sent).toEqual([timeout.id]);
    await store.close();
  });

  it('drains a backlog of due tokens in batches, and looks for due tokens between passes', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const sender = new RecordingSender();
    const dispatcher = new Dispatcher({ store, senders: [sender] });
    const relay = new Relay({
      store,
      dispatcher,
      batchSize: 10,
      intervalMs: 3_600_000,
      dueIntervalMs: 20,
      housekeepingEvery: 0,
    });
    const now = Date.now();
    const backlog = Array.from({ length: 35 }, (_, n) =>
      scheduledToken({ destination: queue, payload: { n } }, { mintedBy: 'e', now }, now - 35 + n),
    );
    await store.mint(backlog);
    expect(await relay.runOnce()).toMatchObject({ due: 35, dispatched: 35 });
    expect(sender.sent).toEqual(backlog.map((t) => t.id));

    relay.start();
    try {
      const soon = scheduledToken(
        { destination: queue, payload: {} },
        { mintedBy: 'e', now },
        Date.now() + 50,
      );
      await store.mint([soon]);
      const deadline = Date.now() + 2_000;
      while (!sender.sent.includes(soon.id) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      expect(sender.sent).toContain(soon.id);
      expect(relay.stats.due).toBe(36);
    } finally {
      await relay.stop();
      await store.close();
    }
  });

  it('claims the next batch of a backlog while it sends the current one, and still sends in due order', async () => {
    const store = new SqliteTokenStore({ filename: ':memory:' });
    const events: string[] = [];
    const claiming = new Proxy(store, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver);
        if (property !== 'claimDue') return typeof value === 'function' ? value.bind(target) : value;
        return (...args: Parameters<typeof store.claimDue>) => {
          events.push('claim');
          return store.claimDue(...args);
        };
      },
    });
    const sender = new RecordingSender();
    const slowSender: SignalSender = {
      medium: 'amqp',
      async send(token) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        events.push('sent');
        await sender.send(token);
      },
    };
    const dispatcher = new Dispatcher({ store: claiming, senders: [slowSender] });
    const relay = new Relay({ store: claiming, dispatcher, batchSize: 10, housekeepingEvery: 0 });
    const now = Date.now();
    const backlog = Array.from({ length: 25 }, (_, n) =>
      scheduledToken({ destination: queue, payload: { n } }, { mintedBy: 'e', now }, now - 25 + n),
    );
    await store.mint(backlog);

    expect(await relay.runOnce()).toMatchObject({ due: 25, dispatched: 25 });
    expect(sender.sent).toEqual(backlog.map((t) => t.id));
    // Sends made before each claim: each batch is claimed before the batch ahead of it is sent (one after the
    // other, that would be 0, 10, 20).
    const sentBeforeClaims = events.flatMap((event, i) =>
      event === 'claim' ? [events.slice(0, i).filter((e) => e === 'sent').length] : [],
    );
    expect(sentBeforeClaims).toEqual([0, 0, 10]);
    await store.close();
  });
});

const queue = { medium: 'amqp', exchange: 'x', routingKey: 'k' } as const;

/** A relay on an in-memory store with a clock the test moves (`time.now`). */
function scheduledSetup() {
  const time = { now: 1_700_000_000_000 };
  const clock = () => time.now;
  const store = new SqliteTokenStore({ filename: ':memory:' });
  const sender = new RecordingSender();
  const dispatcher = new Dispatcher({ store, senders: [sender], clock });
  const relay = new Relay({ store, dispatcher, clock, delayMs: 5000, leaseMs: 10_000, housekeepingEvery: 0 });
  return { store, sender, relay, time };
}
