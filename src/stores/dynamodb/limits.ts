import type { AttributeValue, TransactWriteItem } from '@aws-sdk/client-dynamodb';
import { LimitExceededError } from '../../core/errors.js';

/**
 * DynamoDB's hard limits, checked before a request is sent: a request over them would be rejected as a
 * whole with a ValidationException, which is far less clear (and would be classified as a permanent failure
 * only after a round trip).
 */
export const DYNAMODB_LIMITS = {
  /** Actions in one TransactWriteItems. */
  maxTransactionItems: 100,
  /** Aggregate size of the items of one transaction. */
  maxTransactionBytes: 4 * 1024 * 1024,
  /** One item, attribute names included. */
  maxItemBytes: 400 * 1024,
} as const;

/**
 * Bytes DynamoDB may still add to a consumed token beyond what the consume update itself writes: the tombstone
 * keeps id, conversation, parent, minter, destination (a URL), fingerprint and a few numbers. The update
 * cannot see them without a read, so the estimate reserves this much on top.
 */
export const TOMBSTONE_ALLOWANCE_BYTES = 4 * 1024;

const utf8 = (text: string): number => Buffer.byteLength(text, 'utf8');

/**
 * Size of one attribute value as DynamoDB counts it: strings by UTF-8 bytes, binaries by raw bytes,
 * numbers by about one byte per two digits plus one, null/bool one byte, lists and maps 3 bytes plus one
 * per element. Numbers count every digit (leading and trailing zeros too), so the estimate errs high.
 */
export function attributeValueSize(value: AttributeValue): number {
  if (value.S !== undefined) return utf8(value.S);
  if (value.N !== undefined) return numberSize(value.N);
  if (value.B !== undefined) return value.B.byteLength;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS !== undefined) return value.SS.reduce((sum, v) => sum + utf8(v), 0);
  if (value.NS !== undefined) return value.NS.reduce((sum, v) => sum + numberSize(v), 0);
  if (value.BS !== undefined) return value.BS.reduce((sum, v) => sum + v.byteLength, 0);
  if (value.L !== undefined) return 3 + value.L.reduce((sum, v) => sum + 1 + attributeValueSize(v), 0);
  if (value.M !== undefined) {
    return 3 + Object.entries(value.M).reduce((sum, [k, v]) => sum + 1 + utf8(k) + attributeValueSize(v), 0);
  }
  return 0;
}

function numberSize(text: string): number {
  const digits = text.replace(/[^0-9]/g, '').length;
  return Math.ceil(digits / 2) + 1;
}

/** Size of an item: attribute name bytes plus value sizes. */
export function itemSize(item: Record<string, AttributeValue>): number {
  let total = 0;
  for (const [name, value] of Object.entries(item)) total += utf8(name) + attributeValueSize(value);
  return total;
}

/** Expression attribute names and values of a request, as they are counted toward its size (placeholders not). */
export function expressionAttributesSize(part: {
  ExpressionAttributeNames?: Record<string, string> | undefined;
  ExpressionAttributeValues?: Record<string, AttributeValue> | undefined;
}): number {
  let total = 0;
  for (const name of Object.values(part.ExpressionAttributeNames ?? {})) total += utf8(name);
  for (const value of Object.values(part.ExpressionAttributeValues ?? {})) total += attributeValueSize(value);
  return total;
}

/**
 * Estimated size of the item one transaction action leaves behind (or touches).
 * - Put: the item itself, exactly.
 * - Update: the key plus every expression name and value. That counts the condition's values too, so it
 *   overestimates what the update writes; attributes the update leaves untouched are not visible here (callers
 *   add an allowance where that matters, see TOMBSTONE_ALLOWANCE_BYTES).
 * - Delete / ConditionCheck: the key.
 */
export function estimateWriteSize(action: TransactWriteItem): number {
  if (action.Put?.Item) return itemSize(action.Put.Item);
  if (action.Update?.Key) return itemSize(action.Update.Key) + expressionAttributesSize(action.Update);
  if (action.Delete?.Key) return itemSize(action.Delete.Key);
  if (action.ConditionCheck?.Key) return itemSize(action.ConditionCheck.Key);
  return 0;
}

/**
 * What one action adds to a transaction, erring high: `estimateWriteSize`, plus what the request carries
 * beside the item — the expressions' text, and the names and values of a Put's, Delete's or ConditionCheck's
 * condition (an Update's are counted already).
 */
export function estimateActionSize(action: TransactWriteItem): number {
  const part = action.Put ?? action.Update ?? action.Delete ?? action.ConditionCheck;
  if (part === undefined) return 0;
  let total = estimateWriteSize(action);
  if (action.Update === undefined) total += expressionAttributesSize(part);
  total += utf8(part.ConditionExpression ?? '');
  if (action.Update !== undefined) total += utf8(action.Update.UpdateExpression ?? '');
  return total;
}

export interface SizedWrite {
  /** Names the item in the error (token id or state key); never its content. */
  label: string;
  bytes: number;
}

/** One item must fit in 400 KB. */
export function checkItemSize(write: SizedWrite): void {
  if (write.bytes > DYNAMODB_LIMITS.maxItemBytes) {
    throw new LimitExceededError(
      `item ${write.label} would be about ${write.bytes} bytes; DynamoDB allows ${DYNAMODB_LIMITS.maxItemBytes}`,
      { limit: DYNAMODB_LIMITS.maxItemBytes, actual: write.bytes, item: write.label },
    );
  }
}

/** Count, per-item and aggregate limits of one TransactWriteItems, in that order. */
export function checkTransaction(writes: readonly SizedWrite[]): void {
  if (writes.length > DYNAMODB_LIMITS.maxTransactionItems) {
    throw new LimitExceededError(
      `a DynamoDB transaction may hold ${DYNAMODB_LIMITS.maxTransactionItems} items; this one has ${writes.length}`,
      { limit: DYNAMODB_LIMITS.maxTransactionItems, actual: writes.length },
    );
  }
  let total = 0;
  for (const write of writes) {
    checkItemSize(write);
    total += write.bytes;
  }
  if (total > DYNAMODB_LIMITS.maxTransactionBytes) {
    throw new LimitExceededError(
      `a DynamoDB transaction may hold ${DYNAMODB_LIMITS.maxTransactionBytes} bytes; this one about ${total}`,
      { limit: DYNAMODB_LIMITS.maxTransactionBytes, actual: total },
    );
  }
}
