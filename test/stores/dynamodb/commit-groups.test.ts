import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { describe, expect, it } from 'vitest';
import type { CommitRequest } from '../../../src/core/store.js';
import { CommitGroups, type HopTransaction } from '../../../src/stores/dynamodb/commit-groups.js';

/*
 * The paths of a failed group that DynamoDB Local cannot be made to take on demand: a throttled or unanswered
 * request, and one it refuses as invalid. The transaction is a stand-in that records what was sent.
 */

function hop(id: string): HopTransaction {
  const request: CommitRequest = {
    consume: { tokenId: id, fingerprint: 'f', consumedBy: 'test' },
    writes: [],
    mints: [],
    now: 1,
  };
  const write: TransactWriteItem = {
    Update: { TableName: 'tokens', Key: { id: { S: id } }, UpdateExpression: 'SET a = b' },
  };
  return { actions: [{ write, label: `token ${id}`, bytes: 100 }], items: [`token ${id}`], request, own: [] };
}

function sdkFailure(name: string, status: number): Error {
  return Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
}

/** Records each transaction's token ids; `answer` decides how each one ends. */
function recorder(answer: (ids: string[]) => unknown) {
  const sent: string[][] = [];
  const send = async (items: TransactWriteItem[]) => {
    const ids = items.map((item) => item.Update?.Key?.id?.S ?? '?');
    sent.push(ids);
    const outcome = answer(ids);
    if (outcome instanceof Error) throw outcome;
  };
  return { sent, send };
}

describe('CommitGroups', () => {
  it('answers "transient" to every commit of a group that may yet pass, and sends nothing more', async () => {
    const { sent, send } = recorder(() => sdkFailure('ThrottlingException', 400));
    const groups = new CommitGroups(send);
    const results = await Promise.all(['a', 'b', 'c'].map((id) => groups.submit(hop(id))));
    expect(sent).toEqual([['a', 'b', 'c']]);
    expect(results.map((r) => (r.ok ? 'ok' : r.failure.kind))).toEqual([
      'transient',
      'transient',
      'transient',
    ]);
  });

  it('sends each commit alone when DynamoDB refuses the group for another reason, so only the bad one fails', async () => {
    const { sent, send } = recorder((ids) =>
      ids.includes('bad') ? sdkFailure('ValidationException', 400) : undefined,
    );
    const groups = new CommitGroups(send);
    const results = await Promise.all(['a', 'bad', 'c'].map((id) => groups.submit(hop(id))));
    expect(sent).toEqual([['a', 'bad', 'c'], ['a'], ['bad'], ['c']]);
    expect(results.map((r) => (r.ok ? 'ok' : r.failure.kind))).toEqual(['ok', 'permanent', 'ok']);
  });

  it('judges each commit alone when a cancelled group names no failed action', async () => {
    const cancelled = Object.assign(sdkFailure('TransactionCanceledException', 400), {
      CancellationReasons: [{ Code: 'None' }, { Code: 'None' }],
    });
    const { sent, send } = recorder((ids) => (ids.length > 1 ? cancelled : undefined));
    const groups = new CommitGroups(send);
    const results = await Promise.all(['a', 'b'].map((id) => groups.submit(hop(id))));
    expect(sent).toEqual([['a', 'b'], ['a'], ['b']]);
    expect(results).toEqual([{ ok: true }, { ok: true }]);
  });

  it('groups the commits of one turn only: a later one goes in a transaction of its own', async () => {
    const { sent, send } = recorder(() => undefined);
    const groups = new CommitGroups(send);
    const first = Promise.all(['a', 'b'].map((id) => groups.submit(hop(id))));
    await new Promise((resolve) => setImmediate(resolve));
    await Promise.all([first, groups.submit(hop('c'))]);
    expect(sent).toEqual([['a', 'b'], ['c']]);
  });
});
