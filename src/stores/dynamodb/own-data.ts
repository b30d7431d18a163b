import {
  type AttributeValue,
  type ConditionCheck,
  type Delete,
  DescribeTableCommand,
  type DynamoDBClient,
  GetItemCommand,
  type GetItemCommandInput,
  type Put,
  type TransactWriteItem,
  type Update,
} from '@aws-sdk/client-dynamodb';
import { InvalidArgumentError } from '../../core/errors.js';
import type { StagedAction, StagedOwnData } from '../../core/store.js';
import { estimateActionSize } from './limits.js';
import { itemIdentity, keyJson } from './own-identity.js';
import {
  checkFields,
  checkItem,
  checkKey,
  checkPlaceholders,
  isKeyValue,
  optionalText,
  requiredText,
  tableIdOf,
} from './own-input.js';

/*
 * The handle a handler gets on the application's own DynamoDB tables (`ctx.tx`): strongly consistent reads
 * now, writes staged and sent later in the hop's one TransactWriteItems, after the token's consume, the state
 * writes and the mints. Inputs are the SDK's low-level shapes (AttributeValue maps, expressions with
 * placeholders), exactly as in a TransactWriteItems request.
 */

/** An item or key in DynamoDB's low-level form, e.g. `{ pk: { S: 'booking#1' }, seats: { N: '2' } }`. */
export type DynamoItem = Record<string, AttributeValue>;

export interface OwnActionOptions {
  /**
   * If this action's ConditionExpression fails, run the handler again on fresh state (like a version conflict)
   * instead of failing the hop with OwnConditionFailedError. Needs a ConditionExpression.
   */
  retryOnConflict?: boolean;
}

/** A strongly consistent GetItem (`ConsistentRead` is always on). */
export interface DynamoGetInput {
  TableName: string;
  Key: DynamoItem;
  ProjectionExpression?: string;
  ExpressionAttributeNames?: Record<string, string>;
}

export type DynamoPutInput = Put & OwnActionOptions;
export type DynamoUpdateInput = Update & OwnActionOptions;
export type DynamoDeleteInput = Delete & OwnActionOptions;
export type DynamoConditionCheckInput = ConditionCheck & OwnActionOptions;

/**
 * `ctx.tx` of a handler on the DynamoDB store.
 *
 * - `get` reads now (GetItem, ConsistentRead). It sees what is committed, not what this run has staged.
 * - `put`, `update`, `delete` and `conditionCheck` send nothing: they stage one action each of the hop's
 *   TransactWriteItems, which also consumes the incoming token. All commit together or none does. If an
 *   action's ConditionExpression fails, nothing is written, the token stays live, and the hop fails with
 *   OwnConditionFailedError (or the handler runs again on fresh state, with `retryOnConflict: true`).
 *
 * Inputs are checked when staged (InvalidArgumentError): the table may not be one of the store's own two, every
 * placeholder used must be defined and every one defined must be used, no unknown fields (a misspelt
 * `ConditionExpression` would otherwise be dropped silently). DynamoDB refuses two actions on one item in a
 * transaction: that is refused before anything is sent, naming the item. A Put names its item by the table's
 * key attributes, which the store learns once per table with DescribeTable (so the store's credentials need
 * `dynamodb:DescribeTable` on the tables the handlers put to). Each action counts as one item of the commit
 * (100 at most, with the consume, state writes and mints) and by its size toward the 4 MB.
 *
 * The handle belongs to one run of the handler: staging after the run has ended throws.
 */
export interface DynamoTx {
  get(input: DynamoGetInput): Promise<DynamoItem | undefined>;
  put(input: DynamoPutInput): void;
  update(input: DynamoUpdateInput): void;
  delete(input: DynamoDeleteInput): void;
  conditionCheck(input: DynamoConditionCheckInput): void;
}

/** An own action ready to go into the commit's TransactWriteItems. */
export interface PreparedOwnAction {
  write: TransactWriteItem;
  /** `<TableName> <key as JSON>`: names the item in errors and in `own-condition-failed`. */
  item: string;
  /** The item as DynamoDB tells items apart (`itemIdentity`): a group commit keeps two actions on it apart. */
  identity: string;
  retry: boolean;
  bytes: number;
}

export type ActionKind = 'put' | 'update' | 'delete' | 'conditionCheck';

/** What the own-data access needs from the store. */
export interface OwnDataHost {
  client: DynamoDBClient;
  /** The store's tables: handlers may neither read nor write them here. */
  reservedTables: readonly string[];
  /** Runs one SDK call with the store's error mapping (and its closed check). */
  run<T>(operation: string, work: () => Promise<T>): Promise<T>;
}

/** A staged action; opaque to the core, which only reads `bytes`. */
class DynamoStagedAction implements StagedAction {
  readonly bytes: number;

  constructor(
    readonly owner: OwnDataAccess,
    readonly kind: ActionKind,
    /** The table as the handler named it, and its bare name (ARNs are reduced to it) to tell items apart. */
    readonly table: string,
    readonly tableId: string,
    readonly write: TransactWriteItem,
    /** The item's key; undefined for a Put until the table's key schema is known. */
    readonly key: DynamoItem | undefined,
    readonly retryOnConflict: boolean,
  ) {
    this.bytes = estimateActionSize(write);
  }
}

/**
 * The store's side of own data: hands out one staging handle per handler run (`ownData`), and turns what a
 * run staged into TransactWriteItems actions for the commit (`prepare`).
 */
export class OwnDataAccess {
  readonly ownData: StagedOwnData<DynamoTx>;
  private readonly reserved: Set<string>;
  /** Key attribute names per table id, once learnt. A table's key schema cannot change while it exists. */
  private readonly keySchemas = new Map<string, readonly string[]>();
  private readonly describing = new Map<string, Promise<readonly string[]>>();

  constructor(private readonly host: OwnDataHost) {
    this.reserved = new Set(host.reservedTables.map((table) => tableIdOf(table) ?? table));
    this.ownData = { mode: 'staged', open: () => this.open() };
  }

  /**
   * The actions a run staged, in order, checked and ready to append to the commit. Learns the key schema of
   * tables written with Put (DescribeTable, once per table); SDK errors of that call are thrown as they are,
   * for the caller to classify. Throws InvalidArgumentError for actions of another store, a Put whose item
   * lacks a key attribute, or two actions on one item.
   */
  async prepare(actions: readonly StagedAction[]): Promise<PreparedOwnAction[]> {
    const own = actions.map((action, i) => {
      if (!(action instanceof DynamoStagedAction) || action.owner !== this) {
        throw new InvalidArgumentError('own actions must be staged on this store’s own handle', { index: i });
      }
      return action;
    });
    const unknown = [...new Set(own.filter((a) => a.key === undefined).map((a) => a.table))];
    await Promise.all(unknown.map((table) => this.keySchema(table)));

    const seen = new Map<string, string>();
    return own.map((action) => {
      const key = action.key ?? putKey(action, this.keySchemas.get(action.tableId)!);
      const item = `${action.table} ${keyJson(key)}`;
      const identity = itemIdentity(action.tableId, key);
      const first = seen.get(identity);
      if (first !== undefined) throw twoActionsOnOneItem(first);
      seen.set(identity, item);
      return { write: action.write, item, identity, retry: action.retryOnConflict, bytes: action.bytes };
    });
  }

  private open(): { handle: DynamoTx; staged(): readonly StagedAction[] } {
    const staged: DynamoStagedAction[] = [];
    /** Items staged so far whose key is known (a Put's only once its table's key schema is): identity → name. */
    const items = new Map<string, string>();
    let ended = false;
    const stage = (kind: ActionKind, input: unknown): void => {
      if (ended) {
        throw new InvalidArgumentError(
          `${kind} after the handler run ended: its handle belongs to that run, and nothing staged now would be committed`,
        );
      }
      const action = this.stage(kind, input);
      const key = this.knownKey(action);
      if (key !== undefined) {
        // Refused here when the key is known, so the error points at the handler's line; prepare() checks all.
        const identity = itemIdentity(action.tableId, key);
        const first = items.get(identity);
        if (first !== undefined) throw twoActionsOnOneItem(first);
        items.set(identity, `${action.table} ${keyJson(key)}`);
      }
      staged.push(action);
    };
    const handle: DynamoTx = {
      get: (input) => this.get(input),
      put: (input) => stage('put', input),
      update: (input) => stage('update', input),
      delete: (input) => stage('delete', input),
      conditionCheck: (input) => stage('conditionCheck', input),
    };
    return {
      handle,
      staged: () => {
        // What is staged after this would never be sent: refuse it instead of losing it.
        ended = true;
        return [...staged];
      },
    };
  }

  private async get(input: DynamoGetInput): Promise<DynamoItem | undefined> {
    const fields = checkFields('get', input);
    const table = this.checkTable('get', fields.TableName);
    const Key = checkKey('get', fields.Key);
    const request: GetItemCommandInput = { TableName: table, Key, ConsistentRead: true };
    const projection = optionalText('get', 'ProjectionExpression', fields.ProjectionExpression);
    if (projection !== undefined) request.ProjectionExpression = projection;
    const names = checkPlaceholders('get', [projection], fields.ExpressionAttributeNames, undefined);
    if (names.ExpressionAttributeNames) request.ExpressionAttributeNames = names.ExpressionAttributeNames;
    return this.host.run('GetItem', async () => {
      const out = await this.host.client.send(new GetItemCommand(request));
      return out.Item;
    });
  }

  /** Checks one staged action's input and copies it (later changes by the handler do not leak in). */
  private stage(kind: ActionKind, input: unknown): DynamoStagedAction {
    const fields = checkFields(kind, input);
    const table = this.checkTable(kind, fields.TableName);
    const item = kind === 'put' ? checkItem(fields.Item) : undefined;
    const key = kind === 'put' ? undefined : checkKey(kind, fields.Key);
    const condition = optionalText(kind, 'ConditionExpression', fields.ConditionExpression);
    if (kind === 'conditionCheck' && condition === undefined) {
      throw new InvalidArgumentError('conditionCheck needs a ConditionExpression', { table });
    }
    const update =
      kind === 'update' ? requiredText(kind, 'UpdateExpression', fields.UpdateExpression) : undefined;
    const retry = fields.retryOnConflict;
    if (retry !== undefined && typeof retry !== 'boolean') {
      throw new InvalidArgumentError(`${kind}: retryOnConflict must be a boolean`, { table });
    }
    if (retry === true && condition === undefined) {
      throw new InvalidArgumentError(`${kind}: retryOnConflict needs a ConditionExpression`, { table });
    }
    const onFailure = fields.ReturnValuesOnConditionCheckFailure;
    if (onFailure !== undefined && onFailure !== 'ALL_OLD' && onFailure !== 'NONE') {
      throw new InvalidArgumentError(`${kind}: ReturnValuesOnConditionCheckFailure must be ALL_OLD or NONE`, {
        table,
      });
    }
    const expressions = checkPlaceholders(
      kind,
      [condition, update],
      fields.ExpressionAttributeNames,
      fields.ExpressionAttributeValues,
    );

    const part: Record<string, unknown> = { TableName: table };
    if (item !== undefined) part.Item = item;
    if (key !== undefined) part.Key = key;
    if (update !== undefined) part.UpdateExpression = update;
    if (condition !== undefined) part.ConditionExpression = condition;
    Object.assign(part, expressions);
    if (onFailure !== undefined) part.ReturnValuesOnConditionCheckFailure = onFailure;
    const write = { [ACTION_NAMES[kind]]: part } as TransactWriteItem;
    return new DynamoStagedAction(this, kind, table, tableIdOf(table)!, write, key, retry === true);
  }

  private checkTable(kind: string, table: unknown): string {
    if (typeof table !== 'string' || table === '') {
      throw new InvalidArgumentError(`${kind} needs a TableName`);
    }
    const id = tableIdOf(table);
    if (id === undefined) {
      throw new InvalidArgumentError(
        `${kind}: TableName must be 3 to 255 of a-z, A-Z, 0-9, '_', '-', '.' (or a table ARN)`,
        { table: table.slice(0, 300) },
      );
    }
    if (this.reserved.has(id)) {
      throw new InvalidArgumentError(
        `${kind}: table ${table} is the token store's own; handlers reach it only through ctx.get/put/delete/emit`,
        { table },
      );
    }
    return table;
  }

  private async keySchema(table: string): Promise<readonly string[]> {
    const id = tableIdOf(table)!;
    const known = this.keySchemas.get(id);
    if (known) return known;
    let pending = this.describing.get(id);
    if (pending === undefined) {
      pending = this.host.client
        .send(new DescribeTableCommand({ TableName: table }))
        .then((out) => {
          const names = (out.Table?.KeySchema ?? []).map((k) => k.AttributeName ?? '');
          if (names.length === 0 || names.includes('')) {
            throw new InvalidArgumentError(`table ${table} reports no key schema`, { table });
          }
          this.keySchemas.set(id, names);
          return names;
        })
        .finally(() => this.describing.delete(id));
      this.describing.set(id, pending);
    }
    return pending;
  }

  private knownKey(action: DynamoStagedAction): DynamoItem | undefined {
    if (action.key) return action.key;
    const schema = this.keySchemas.get(action.tableId);
    return schema === undefined ? undefined : putKey(action, schema);
  }
}

const ACTION_NAMES: Record<ActionKind, keyof TransactWriteItem> = {
  put: 'Put',
  update: 'Update',
  delete: 'Delete',
  conditionCheck: 'ConditionCheck',
};

/** The key of a Put's item, by the table's key schema. */
function putKey(action: DynamoStagedAction, schema: readonly string[]): DynamoItem {
  const item = action.write.Put!.Item!;
  const key: DynamoItem = {};
  for (const name of schema) {
    const value = item[name];
    if (value === undefined || !isKeyValue(value)) {
      throw new InvalidArgumentError(
        `put: the Item for ${action.table} needs its key attribute ${name} as a non-empty { S }, { N } or { B }`,
        { table: action.table, attribute: name },
      );
    }
    key[name] = value;
  }
  return key;
}

function twoActionsOnOneItem(item: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `a commit may change each item once (DynamoDB refuses two actions on one item): ${item}`,
    { item },
  );
}
