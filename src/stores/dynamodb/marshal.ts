import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { InvalidArgumentError, StoreFailureError } from '../../core/errors.js';
import type { JsonValue } from '../../core/fingerprint.js';
import type { StateItem } from '../../core/store.js';
import { TOKEN_STATUSES, type TokenRecord, type TokenStatus } from '../../core/token.js';
import { type FieldType, TOKEN_FIELD_LIST, TOKEN_FIELDS, type TokenField } from '../../core/token-fields.js';
import { decodeToken } from '../token-codec.js';

export type Item = Record<string, AttributeValue>;

/**
 * Attribute names of the tokens table. Record fields keep their camelCase names (one attribute per field of the
 * table in core/token-fields); the others exist for the store: the `gsi*` attributes only feed the secondary
 * indexes, `mintedSort` keeps a scheduled token's mintedAt sort key while `gsiSort` holds its due time (see
 * statusSortKey), `medium` lets the relay filter by destination medium in the query, and `ttl` drives
 * DynamoDB's own (lazy) expiry of tombstones.
 */
export const TOKEN_ATTR = {
  ...(Object.fromEntries(Object.keys(TOKEN_FIELDS).map((name) => [name, name])) as {
    readonly [K in TokenField]: K;
  }),
  medium: 'medium',
  ttl: 'ttl',
  gsiStatus: 'gsiStatus',
  gsiSort: 'gsiSort',
  gsiConv: 'gsiConv',
  mintedSort: 'mintedSort',
} as const;

export const STATE_ATTR = { key: 'key', value: 'value', version: 'version' } as const;

/** Width of the zero-padded mintedAt in `gsiSort`: ms timestamps stay below 10^15 until the year 33658. */
const SORT_DIGITS = 15;
export const MAX_SORT_INSTANT = 10 ** SORT_DIGITS - 1;
/** DynamoDB's limit for a sort key value (bytes). */
const MAX_SORT_KEY_BYTES = 1024;
/** DynamoDB's limit for a partition key value (bytes). */
const MAX_PARTITION_KEY_BYTES = 2048;

export const s = (value: string): AttributeValue => ({ S: value });
export const n = (value: number): AttributeValue => ({ N: String(value) });

/** Zero-padded instant so that string order equals numeric order in the GSI sort key. */
export function padInstant(instant: number): string {
  return String(instant).padStart(SORT_DIGITS, '0');
}

/** The GSI sort key of a token: oldest first, ties broken by id (the same order as the SQLite store). */
export function sortKey(mintedAt: number, id: string): string {
  return `${padInstant(mintedAt)}#${id}`;
}

/**
 * A token's `gsiSort`, its place in both indexes. A scheduled token sorts by its due time, so that "due now"
 * is one range query per byStatus shard; every other status (and a token once it leaves `scheduled`) by
 * mintedAt. In a conversation's listing a scheduled token therefore appears at its due time.
 */
export function statusSortKey(token: Pick<TokenRecord, 'id' | 'status' | 'mintedAt' | 'dueAt'>): string {
  return token.status === 'scheduled' && token.dueAt !== undefined
    ? sortKey(token.dueAt, token.id)
    : sortKey(token.mintedAt, token.id);
}

/** The (instant, id) an index item sits at: the inverse of `sortKey`, read from its `gsiSort`. */
export function sortPosition(item: Item): { instant: number; id: string } {
  const key = str(item, TOKEN_ATTR.gsiSort);
  const instant = Number(key.slice(0, SORT_DIGITS));
  if (key.charAt(SORT_DIGITS) !== '#' || !Number.isSafeInteger(instant)) {
    throw new StoreFailureError('index item has a malformed sort key', { attribute: TOKEN_ATTR.gsiSort });
  }
  return { instant, id: key.slice(SORT_DIGITS + 1) };
}

/**
 * Exclusive upper bound on `gsiSort` selecting tokens minted strictly before `instant`, or undefined when every
 * token qualifies. `padInstant(t)` sorts after every `padInstant(t - 1) + '#' + id`, so no sentinel character
 * (whose order would depend on the id alphabet) is needed. Returns null when nothing can qualify.
 */
export function sortUpperBound(instant: number): string | undefined | null {
  const bound = Math.ceil(instant);
  if (bound <= 0) return null;
  if (bound > MAX_SORT_INSTANT) return undefined;
  return padInstant(bound);
}

/** Most byStatus shards a store may use: every status read queries each of them. */
export const MAX_STATUS_SHARDS = 64;

/**
 * A token's partition in the byStatus index. With one shard (the default) it is the status itself. DynamoDB
 * serves one partition key value from one partition (about 1 000 writes/s, and a GSI that falls behind throttles
 * the table), and every hop moves tokens in and out of `pending`: with more shards the status is spread over
 * `status#0` … `status#(n-1)`, picked from the token id.
 */
export function statusPartition(status: TokenStatus, id: string, shards: number): string {
  return shards <= 1 ? status : `${status}#${shardOf(id, shards)}`;
}

/**
 * Every partition holding tokens of a status. With shards, also the plain status: tokens written before
 * sharding was turned on stay there. So the shard count may grow on a live table, but never shrink.
 */
export function statusPartitions(status: TokenStatus, shards: number): string[] {
  if (shards <= 1) return [status];
  return [status, ...Array.from({ length: shards }, (_, k) => `${status}#${k}`)];
}

/** FNV-1a over the id: Tollgate's ids are random, but a store may be handed ids made elsewhere. */
function shardOf(id: string, shards: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    hash ^= id.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}

/** `sortUpperBound` selecting tokens minted at or before `instant`: strictly before the next whole millisecond. */
export function sortUpperBoundAtOrBefore(instant: number): string | undefined | null {
  return sortUpperBound(Math.floor(instant) + 1);
}

/** TTL attribute (epoch seconds) for a record, if DynamoDB may ever delete it on its own. */
export function ttlSeconds(
  token: Pick<TokenRecord, 'status' | 'expiresAt' | 'retainUntil'>,
  retentionMs: number,
) {
  if (token.retainUntil !== undefined) return Math.ceil(token.retainUntil / 1000);
  // An issued token nobody used: forgettable once expired plus the tombstone retention, even if no
  // expireIssued sweep ever marked it expired. Pending/dispatched tokens never get a TTL.
  if (token.status === 'issued' && token.expiresAt !== undefined) {
    return Math.ceil((token.expiresAt + retentionMs) / 1000);
  }
  return undefined;
}

/** A field's attribute: text as S, numbers as N, json as its JSON text in S. */
function encodeField(type: FieldType, value: unknown): AttributeValue {
  if (type === 'instant' || type === 'count') return n(value as number);
  // JSON text keeps payloads exact (no number precision or empty-set surprises of native DynamoDB types).
  return s(type === 'json' ? JSON.stringify(value) : (value as string));
}

/** Refuses what DynamoDB would reject with a less clear message, or what the indexes could not sort. */
function checkToken(token: TokenRecord): void {
  if (typeof token.id !== 'string' || token.id.length === 0) {
    throw new InvalidArgumentError('token id must be a non-empty string', { tokenId: token.id });
  }
  if (!TOKEN_STATUSES.includes(token.status)) {
    throw new InvalidArgumentError(`unknown token status ${String(token.status)}`, { tokenId: token.id });
  }
  if (token.mintedAt > MAX_SORT_INSTANT) {
    throw new InvalidArgumentError('mintedAt is out of range', {
      tokenId: token.id,
      mintedAt: token.mintedAt,
    });
  }
  if (token.status === 'scheduled' && (token.dueAt === undefined || token.dueAt > MAX_SORT_INSTANT)) {
    throw new InvalidArgumentError('a scheduled token needs a dueAt in range', {
      tokenId: token.id,
      dueAt: token.dueAt,
    });
  }
  for (const { name, type, optional } of TOKEN_FIELD_LIST) {
    const value = token[name];
    if ((type !== 'instant' && type !== 'count') || (value === undefined && optional)) continue;
    if (Number.isSafeInteger(value) && (value as number) >= 0) continue;
    if (type === 'count') {
      throw new InvalidArgumentError(`${name} must be a non-negative integer`, { tokenId: token.id });
    }
    throw new InvalidArgumentError(`${name} must be a non-negative integer (ms since epoch)`, {
      [name]: value,
    });
  }
}

/** Full item for a new token. Validates what DynamoDB would otherwise reject with a less clear message. */
export function tokenToItem(token: TokenRecord, retentionMs: number, statusShards = 1): Item {
  checkToken(token);
  const gsiSort = statusSortKey(token);
  if (Buffer.byteLength(gsiSort) > MAX_SORT_KEY_BYTES) {
    throw new InvalidArgumentError('token id is too long for the store', { tokenId: token.id.slice(0, 64) });
  }
  const A = TOKEN_ATTR;
  const item: Item = {};
  for (const { name, type } of TOKEN_FIELD_LIST) {
    const value = token[name];
    if (value !== undefined) item[A[name]] = encodeField(type, value);
  }
  item[A.gsiStatus] = s(statusPartition(token.status, token.id, statusShards));
  item[A.gsiSort] = s(gsiSort);
  if (token.status === 'scheduled') item[A.mintedSort] = s(sortKey(token.mintedAt, token.id));
  // An index key attribute may not be an empty string; such a token is simply absent from byConversation.
  if (token.conversationId !== '') item[A.gsiConv] = s(token.conversationId);
  if (token.destination !== undefined) item[A.medium] = s(token.destination.medium);
  const ttl = ttlSeconds(token, retentionMs);
  if (ttl !== undefined) item[A.ttl] = n(ttl);
  return item;
}

/** Reads a token back; a malformed item is a store failure (someone else wrote to the table). */
export function itemToToken(item: Item): TokenRecord {
  const id = str(item, TOKEN_ATTR.id);
  try {
    const token = decodeToken(({ name, type, optional }) => {
      const attribute = TOKEN_ATTR[name];
      if (type === 'instant' || type === 'count') {
        return optional ? optNum(item, attribute) : num(item, attribute);
      }
      const text = optional ? optStr(item, attribute) : str(item, attribute);
      return type === 'json' && text !== undefined ? JSON.parse(text) : text;
    });
    if (!TOKEN_STATUSES.includes(token.status)) throw new Error(`unknown status ${token.status}`);
    return token;
  } catch (error) {
    throw new StoreFailureError(`token item ${id} is malformed`, { tokenId: id }, { cause: error });
  }
}

export function stateKeyOf(key: string): Item {
  if (typeof key !== 'string' || key.length === 0 || Buffer.byteLength(key) > MAX_PARTITION_KEY_BYTES) {
    throw new InvalidArgumentError(
      `state key must be a non-empty string of at most ${MAX_PARTITION_KEY_BYTES} bytes`,
    );
  }
  return { [STATE_ATTR.key]: s(key) };
}

export function itemToState(item: Item): StateItem {
  const key = str(item, STATE_ATTR.key);
  try {
    return {
      key,
      value: JSON.parse(str(item, STATE_ATTR.value)) as JsonValue,
      version: num(item, STATE_ATTR.version),
    };
  } catch (error) {
    throw new StoreFailureError(`state item ${key} is malformed`, { key }, { cause: error });
  }
}

/** JSON text of a state value; rejects what JSON cannot carry instead of storing `undefined`. */
export function stateValueText(key: string, value: JsonValue): string {
  const text = JSON.stringify(value);
  if (typeof text !== 'string') throw new InvalidArgumentError(`state value of ${key} is not JSON`, { key });
  return text;
}

function str(item: Item, name: string): string {
  const value = item[name]?.S;
  if (value === undefined)
    throw new StoreFailureError(`item lacks string attribute ${name}`, { attribute: name });
  return value;
}

function optStr(item: Item, name: string): string | undefined {
  return item[name]?.S;
}

function num(item: Item, name: string): number {
  const value = optNum(item, name);
  if (value === undefined)
    throw new StoreFailureError(`item lacks number attribute ${name}`, { attribute: name });
  return value;
}

function optNum(item: Item, name: string): number | undefined {
  const text = item[name]?.N;
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isFinite(value)) throw new StoreFailureError(`attribute ${name} is not a finite number`);
  return value;
}
