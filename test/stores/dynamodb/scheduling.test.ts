import { GetItemCommand, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import { ErrorCodes, InvalidArgumentError } from '../../../src/core/errors.js';
import { fingerprint } from '../../../src/core/fingerprint.js';
import { newTokenId } from '../../../src/core/ids.js';
import type { CommitRequest, CommitResult, Page } from '../../../src/core/store.js';
import type { TokenRecord } from '../../../src/core/token.js';
import type { DynamoDbTokenStore } from '../../../src/stores/dynamodb/dynamodb-store.js';
import { classifyCommitError } from '../../../src/stores/dynamodb/failures.js';
import { useDynamoDbLocal } from './local-stores.js';

/* Scheduled tokens on DynamoDB: the status index's due-time sort key, claims across shards, cancels in commits. */

const { openStore } = useDynamoDbLocal();

const NOW = Date.now();
const pad = (instant: number) => String(instant).padStart(15, '0');

function token(overrides: Partial<TokenRecord> = {}): TokenRecord {
  const payload = { n: newTokenId() };
  return {
    id: newTokenId(),
    conversationId: 'conv',
    mintedBy: 'test',
    destination: { medium: 'amqp', exchange: 'x', routingKey: 'r' },
    fingerprint: fingerprint(payload),
    payload,
    status: 'pending',
    mintedAt: NOW - 60_000,
    attempts: 0,
    ...overrides,
  };
}

const scheduled = (dueAt: number, overrides: Partial<TokenRecord> = {}) =>
  token({ status: 'scheduled', dueAt, ...overrides });

function consumeOf(incoming: TokenRecord, extra: Partial<CommitRequest> = {}): CommitRequest {
  return {
    consume: { tokenId: incoming.id, fingerprint: incoming.fingerprint!, consumedBy: 'handler' },
    writes: [],
    mints: [],
    now: NOW,
    ...extra,
  };
}

const failureOf = (result: CommitResult) => (result.ok ? undefined : result.failure);

async function raw(store: DynamoDbTokenStore, id: string) {
  const out = await store.client.send(
    new GetItemCommand({ TableName: store.tokensTable, Key: { id: { S: id } }, ConsistentRead: true }),
  );
  return out.Item!;
}

/** The ids of every page of a listing, following its cursors. */
async function pagedIds(
  list: (cursor: { cursor?: string }) => Promise<Page<TokenRecord>>,
): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await list(cursor === undefined ? {} : { cursor });
    ids.push(...page.items.map((t) => t.id));
    cursor = page.cursor;
  } while (cursor);
  return ids;
}

/** Earliest due first, ties by id: the order claimDue and the scheduled listing promise. */
const byDue = (a: TokenRecord, b: TokenRecord) => a.dueAt! - b.dueAt! || (a.id < b.id ? -1 : 1);

describe('DynamoDB scheduled tokens', () => {
  it("sorts a scheduled token in the status index by its padded due time, and by mintedAt once it leaves 'scheduled'", async () => {
    const store = await openStore();
    const [claimed, revoked, cancelled] = [
      scheduled(NOW - 5),
      scheduled(NOW + 3_600_000),
      scheduled(NOW + 7),
    ];
    const incoming = token();
    await store.mint([claimed!, revoked!, cancelled!, incoming]);

    const item = await raw(store, revoked!.id);
    expect(item.gsiStatus).toEqual({ S: 'scheduled' });
    expect(item.gsiSort).toEqual({ S: `${pad(revoked!.dueAt!)}#${revoked!.id}` });
    expect(item.dueAt).toEqual({ N: String(revoked!.dueAt) });
    // Never forgotten by DynamoDB's TTL while it waits.
    expect(item.ttl).toBeUndefined();
    expect(await store.getToken(revoked!.id)).toEqual(revoked);

    // Claimed, revoked by an operator, cancelled in a commit: each leaves with its mintedAt key back.
    expect((await store.claimDue({ now: NOW, leaseMs: 30_000, limit: 10 })).map((t) => t.id)).toEqual([
      claimed!.id,
    ]);
    await store.revoke(revoked!.id, NOW);
    const commit = consumeOf(incoming, {
      revokes: [{ tokenId: cancelled!.id, expectedStatus: 'scheduled' }],
    });
    expect(await store.commit(commit)).toEqual({ ok: true });
    for (const [left, status] of [
      [claimed!, 'pending'],
      [revoked!, 'revoked'],
      [cancelled!, 'revoked'],
    ] as const) {
      const after = await raw(store, left.id);
      expect(after.gsiStatus).toEqual({ S: status });
      expect(after.gsiSort).toEqual({ S: `${pad(left.mintedAt)}#${left.id}` });
      expect(after.mintedSort).toBeUndefined();
    }
    // An index item of any other status keeps its mintedAt key.
    expect((await raw(store, incoming.id)).gsiSort).toEqual({
      S: `${pad(incoming.mintedAt)}#${incoming.id}`,
    });
  });

  it('refuses a scheduled token without a due time', async () => {
    const store = await openStore();
    await expect(store.mint([token({ status: 'scheduled' })])).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('claims due tokens across shards earliest first; racing relays each get a token once', async () => {
    const store = await openStore({ statusShards: 4 });
    const due = Array.from({ length: 40 }, (_, i) => scheduled(NOW - 1_000 + (i % 7) * 10));
    const later = Array.from({ length: 5 }, (_, i) => scheduled(NOW + 60_000 + i));
    await store.mint([...due, ...later]);
    const shards = new Set(await Promise.all(due.map(async (t) => (await raw(store, t.id)).gsiStatus?.S)));
    expect(shards.size).toBe(4);

    const expected = [...due].sort(byDue).map((t) => t.id);
    const first = await store.claimDue({ now: NOW, leaseMs: 30_000, limit: 10 });
    expect(first.map((t) => t.id)).toEqual(expected.slice(0, 10));
    expect(
      first.every((t) => t.status === 'pending' && t.leaseUntil === NOW + 30_000 && t.attempts === 1),
    ).toBe(true);

    const races = await Promise.all(
      Array.from({ length: 5 }, () => store.claimDue({ now: NOW, leaseMs: 30_000, limit: 40 })),
    );
    const won = races.flat().map((t) => t.id);
    expect(new Set(won).size).toBe(won.length);
    expect(new Set([...first.map((t) => t.id), ...won])).toEqual(new Set(expected));
    expect(await store.claimDue({ now: NOW, leaseMs: 30_000, limit: 40 })).toEqual([]);

    // Not yet due: still scheduled, in due order.
    const waiting = await store.listByStatus('scheduled');
    expect(waiting.items.map((t) => t.id)).toEqual(later.map((t) => t.id));
    // Claimed tokens are the pending relay's once their lease ends.
    const released = await store.claimPending({
      mintedBefore: NOW,
      now: NOW + 30_001,
      leaseMs: 1_000,
      limit: 100,
    });
    expect(released.map((t) => t.id).sort()).toEqual([...expected].sort());
  });

  it('claims only the medium asked for', async () => {
    const store = await openStore({ statusShards: 2 });
    const http = scheduled(NOW - 2, { destination: { medium: 'http', method: 'POST', url: 'http://x/y' } });
    const amqp = scheduled(NOW - 1);
    await store.mint([http, amqp]);
    const claimed = await store.claimDue({ now: NOW, leaseMs: 1_000, limit: 10, medium: 'amqp' });
    expect(claimed.map((t) => t.id)).toEqual([amqp.id]);
    expect((await store.getToken(http.id))?.status).toBe('scheduled');
  });

  it('lists scheduled tokens by due time across shards with exact cursors, bounded by dueBefore and mintedBefore', async () => {
    const store = await openStore({ statusShards: 8 });
    const tokens = Array.from({ length: 23 }, (_, i) =>
      scheduled(NOW + (i % 5) * 1_000, { mintedAt: NOW - 100 * i }),
    );
    await store.mint(tokens);
    const expected = [...tokens].sort(byDue).map((t) => t.id);
    expect(await pagedIds((cursor) => store.listByStatus('scheduled', { limit: 4, ...cursor }))).toEqual(
      expected,
    );

    const dueSoon = await store.listByStatus('scheduled', { dueBefore: NOW + 2_000 });
    expect(dueSoon.items.map((t) => t.id)).toEqual(
      expected.filter((id) => tokens.find((t) => t.id === id)!.dueAt! < NOW + 2_000),
    );
    const old = await store.listByStatus('scheduled', { mintedBefore: NOW - 1_000, limit: 3 });
    expect(old.items.map((t) => t.id)).toEqual(
      expected.filter((id) => tokens.find((t) => t.id === id)!.mintedAt < NOW - 1_000).slice(0, 3),
    );
    // A conversation's listing pages exactly too, scheduled tokens at their due time.
    expect(await pagedIds((cursor) => store.listConversation('conv', { limit: 5, ...cursor }))).toEqual(
      expected,
    );
  });

  it('counts scheduled tokens in flight, without letting their waiting age the oldest figure', async () => {
    const store = await openStore({ statusShards: 2 });
    await store.mint([token({ mintedAt: NOW - 10 }), scheduled(NOW + 86_400_000, { mintedAt: NOW - 500 })]);
    expect(await store.inFlightStats()).toEqual({ count: 2, oldestMintedAt: NOW - 10 });
  });

  it("cancels in the hop's transaction: a token no longer in the status read fails the commit as a conflict, writing nothing", async () => {
    const store = await openStore();
    const timeout = scheduled(NOW - 1);
    const incoming = token();
    await store.mint([timeout, incoming]);
    await store.claimDue({ now: NOW, leaseMs: 1_000, limit: 1 });

    const stale = consumeOf(incoming, {
      writes: [{ key: 'process/p/1', value: { done: true } }],
      revokes: [{ tokenId: timeout.id, expectedStatus: 'scheduled' }],
    });
    expect(failureOf(await store.commit(stale))).toEqual({
      kind: 'version-conflict',
      key: `token:${timeout.id}`,
    });
    expect((await store.getToken(incoming.id))?.status).toBe('pending');
    expect(await store.readState('process/p/1')).toBeUndefined();

    // Re-run on fresh data: the timeout is pending now, and revoked from there.
    const fresh = { ...stale, revokes: [{ tokenId: timeout.id, expectedStatus: 'pending' as const }] };
    expect(await store.commit(fresh)).toEqual({ ok: true });
    expect((await store.getToken(timeout.id))?.status).toBe('revoked');

    // An id no token can have conflicts the same way; an end status is no status to revoke from.
    const next = token();
    await store.mint([next]);
    const unknown = consumeOf(next, {
      revokes: [{ tokenId: 'x'.repeat(2_000), expectedStatus: 'scheduled' }],
    });
    expect(failureOf(await store.commit(unknown))).toMatchObject({ kind: 'version-conflict' });
    const ended = consumeOf(next, { revokes: [{ tokenId: timeout.id, expectedStatus: 'consumed' }] });
    await expect(store.commit(ended)).rejects.toBeInstanceOf(InvalidArgumentError);
    const twice = consumeOf(next, { revokes: [{ tokenId: next.id, expectedStatus: 'pending' }] });
    await expect(store.commit(twice)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('counts revokes toward the 100 actions of a transaction', async () => {
    const store = await openStore();
    const incoming = token();
    await store.mint([incoming]);
    const request = consumeOf(incoming, {
      mints: Array.from({ length: 98 }, () => token()),
      revokes: [newTokenId(), newTokenId()].map((tokenId) => ({
        tokenId,
        expectedStatus: 'scheduled' as const,
      })),
    });
    await expect(store.commit(request)).rejects.toMatchObject({ code: ErrorCodes.LIMIT_EXCEEDED });
  });

  it("reads a failed revoke from the cancellation reasons, after the mints and before the handler's own actions", () => {
    const request = consumeOf(token(), {
      writes: [{ key: 'k', value: 1 }],
      mints: [token()],
      revokes: [
        { tokenId: 'a', expectedStatus: 'scheduled' },
        { tokenId: 'b', expectedStatus: 'pending' },
      ],
    });
    const cancelled = (failedAt: number) =>
      new TransactionCanceledException({
        message: 'cancelled',
        $metadata: { httpStatusCode: 400 },
        CancellationReasons: Array.from({ length: 6 }, (_, i) => ({
          Code: i === failedAt ? 'ConditionalCheckFailed' : 'None',
        })),
      });
    expect(classifyCommitError(cancelled(4), request)).toEqual({ kind: 'version-conflict', key: 'token:b' });
    expect(classifyCommitError(cancelled(5), request, [{ item: 'own', retry: true }])).toEqual({
      kind: 'own-condition-failed',
      item: 'own',
      retry: true,
    });
  });
});
