import type { TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { InvalidArgumentError } from '../../core/errors.js';
import type { CommitRequest, ConsumeRequest, StateWrite } from '../../core/store.js';
import { LIVE_STATUSES, type TokenRecord, type TokenStatus } from '../../core/token.js';
import type { TokensTableAccess } from './access.js';
import { Expr } from './expression.js';
import { estimateWriteSize, type SizedWrite, TOMBSTONE_ALLOWANCE_BYTES } from './limits.js';
import {
  n,
  STATE_ATTR,
  s,
  stateKeyOf,
  stateValueText,
  statusPartition,
  TOKEN_ATTR,
  tokenToItem,
} from './marshal.js';

/* The actions of a commit's TransactWriteItems: the consume, the state writes and the mints. */

/** One action of a transaction, named and sized for the limits. */
export interface SizedAction extends SizedWrite {
  write: TransactWriteItem;
}

/** The consume, the state writes and the mints of a commit, in this order. */
export function hopActions(at: TokensTableAccess, request: CommitRequest): SizedAction[] {
  const { consume, writes, mints, now } = request;
  const sized = (write: TransactWriteItem, label: string, allowance = 0) => ({
    write,
    label,
    bytes: estimateWriteSize(write) + allowance,
  });
  return [
    // The consume update cannot see the attributes the tombstone keeps: reserve room for them.
    sized(consumeUpdate(at, consume, now), `token ${consume.tokenId}`, TOMBSTONE_ALLOWANCE_BYTES),
    ...writes.map((write) => sized(stateAction(at, write), `state ${write.key}`)),
    ...mints.map((token) => sized(mintPut(at, token), `token ${token.id}`)),
  ];
}

export function mintPut(at: TokensTableAccess, token: TokenRecord): TransactWriteItem {
  const e = new Expr();
  return {
    Put: {
      TableName: at.tokensTable,
      Item: tokenToItem(token, at.retentionMs, at.statusShards),
      ConditionExpression: `attribute_not_exists(${e.name(TOKEN_ATTR.id)})`,
      ...e.params(),
    },
  };
}

/** `#status IN (issued, pending, dispatched)` */
export function liveCondition(e: Expr): string {
  return `${e.name(TOKEN_ATTR.status)} IN (${LIVE_STATUSES.map((st) => e.value(s(st))).join(', ')})`;
}

/**
 * Moves a token to an ended status: the tombstone keeps its identity and history for the retention, and
 * drops the payload, headers and lease.
 */
export function endExpression(
  at: TokensTableAccess,
  e: Expr,
  id: string,
  status: TokenStatus,
  now: number,
  extraSets: string[] = [],
  extraRemoves: string[] = [],
): string {
  const retainUntil = now + at.retentionMs;
  const sets = [
    `${e.name(TOKEN_ATTR.status)} = ${e.value(s(status))}`,
    `${e.name(TOKEN_ATTR.gsiStatus)} = ${e.value(s(statusPartition(status, id, at.statusShards)))}`,
    `${e.name(TOKEN_ATTR.retainUntil)} = ${e.value(n(retainUntil))}`,
    `${e.name(TOKEN_ATTR.ttl)} = ${e.value(n(Math.ceil(retainUntil / 1000)))}`,
    ...extraSets,
  ];
  const removes = [
    ...[TOKEN_ATTR.payload, TOKEN_ATTR.headers, TOKEN_ATTR.leaseUntil].map((a) => e.name(a)),
    ...extraRemoves,
  ];
  return `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`;
}

/** Item 0 of a commit: consume the incoming token if it exists, is live, unexpired and bound to this payload. */
export function consumeUpdate(
  at: TokensTableAccess,
  consume: ConsumeRequest,
  now: number,
): TransactWriteItem {
  const e = new Expr();
  const expiresAt = e.name(TOKEN_ATTR.expiresAt);
  const fingerprint = e.name(TOKEN_ATTR.fingerprint);
  const nowValue = e.value(n(now));
  const sets = [
    `${e.name(TOKEN_ATTR.consumedAt)} = ${nowValue}`,
    `${e.name(TOKEN_ATTR.consumedBy)} = ${e.value(s(consume.consumedBy))}`,
  ];
  if (consume.commitId !== undefined) {
    sets.push(`${e.name(TOKEN_ATTR.commitId)} = ${e.value(s(consume.commitId))}`);
  }
  if (consume.response !== undefined) {
    sets.push(`${e.name(TOKEN_ATTR.response)} = ${e.value(s(JSON.stringify(consume.response)))}`);
  }
  return {
    Update: {
      TableName: at.tokensTable,
      Key: { [TOKEN_ATTR.id]: s(consume.tokenId) },
      ConditionExpression: [
        `attribute_exists(${e.name(TOKEN_ATTR.id)})`,
        liveCondition(e),
        `(attribute_not_exists(${expiresAt}) OR ${expiresAt} > ${nowValue})`,
        `(attribute_not_exists(${fingerprint}) OR ${fingerprint} = ${e.value(s(consume.fingerprint))})`,
      ].join(' AND '),
      UpdateExpression: endExpression(at, e, consume.tokenId, 'consumed', now, sets),
      // The record as it was when the condition failed comes back in the cancellation reason, so the
      // failure is classified without a second read (and without a race against that read).
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      ...e.params(),
    },
  };
}

/** One state write of a commit (see StateWrite for the three cases). */
export function stateAction(at: TokensTableAccess, write: StateWrite): TransactWriteItem {
  const Key = stateKeyOf(write.key);
  const expected = write.expectedVersion;
  const e = new Expr();
  let condition: string | undefined;
  if (expected !== undefined) {
    if (!Number.isSafeInteger(expected) || expected < 0) {
      throw new InvalidArgumentError('expectedVersion must be a non-negative integer', { key: write.key });
    }
    condition =
      expected === 0
        ? `attribute_not_exists(${e.name(STATE_ATTR.key)})`
        : `${e.name(STATE_ATTR.version)} = ${e.value(n(expected))}`;
  }
  const conditional = condition === undefined ? {} : { ConditionExpression: condition };

  if (write.value === undefined) {
    return { Delete: { TableName: at.stateTable, Key, ...conditional, ...e.params() } };
  }
  const text = stateValueText(write.key, write.value);
  if (expected !== undefined) {
    const Item = { ...Key, [STATE_ATTR.value]: s(text), [STATE_ATTR.version]: n(expected + 1) };
    return { Put: { TableName: at.stateTable, Item, ...conditional, ...e.params() } };
  }
  // Blind write: whatever the version was, it goes up by one (an absent item counts as version 0).
  const version = e.name(STATE_ATTR.version);
  return {
    Update: {
      TableName: at.stateTable,
      Key,
      UpdateExpression:
        `SET ${e.name(STATE_ATTR.value)} = ${e.value(s(text))}, ` +
        `${version} = if_not_exists(${version}, ${e.value(n(0))}) + ${e.value(n(1))}`,
      ...e.params(),
    },
  };
}
