import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { InvalidArgumentError } from '../../core/errors.js';
import type { ActionKind, DynamoItem } from './own-data.js';

/* Checks of what a handler hands ctx.tx: the SDK's low-level shapes, refused early with a clear message. */

const EXPRESSION_FIELDS = ['ExpressionAttributeNames', 'ExpressionAttributeValues'] as const;

const ACTION_FIELDS: Record<ActionKind | 'get', readonly string[]> = {
  get: ['TableName', 'Key', 'ProjectionExpression', 'ExpressionAttributeNames'],
  put: ['TableName', 'Item', 'ConditionExpression', ...EXPRESSION_FIELDS],
  update: ['TableName', 'Key', 'UpdateExpression', 'ConditionExpression', ...EXPRESSION_FIELDS],
  delete: ['TableName', 'Key', 'ConditionExpression', ...EXPRESSION_FIELDS],
  conditionCheck: ['TableName', 'Key', 'ConditionExpression', ...EXPRESSION_FIELDS],
};

const STAGED_ONLY_FIELDS = ['ReturnValuesOnConditionCheckFailure', 'retryOnConflict'];

const ATTRIBUTE_TYPES = ['S', 'N', 'B', 'SS', 'NS', 'BS', 'M', 'L', 'NULL', 'BOOL'] as const;

const KEY_TYPES = ['S', 'N', 'B'] as const;

/** DynamoDB's rule for table names, and a table ARN around one. */
const TABLE_NAME = /^[A-Za-z0-9_.-]{3,255}$/;

const TABLE_ARN = /^arn:[^:]+:dynamodb:[^:]*:[^:]*:table\/([A-Za-z0-9_.-]{3,255})$/;

/** Placeholders as DynamoDB accepts them; expressions hold no literals, so every `#x` and `:x` is one. */
const NAME_PLACEHOLDER = /^#[A-Za-z0-9_]+$/;

const VALUE_PLACEHOLDER = /^:[A-Za-z0-9_]+$/;

const PLACEHOLDERS = /[#:][A-Za-z0-9_]+/g;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

/** The input's fields, defined ones only; unknown fields are refused (they would be dropped silently). */
export function checkFields(kind: ActionKind | 'get', input: unknown): Record<string, unknown> {
  if (!isPlainObject(input)) throw new InvalidArgumentError(`${kind} needs an input object`);
  const allowed = kind === 'get' ? ACTION_FIELDS.get : [...ACTION_FIELDS[kind], ...STAGED_ONLY_FIELDS];
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (!allowed.includes(name)) {
      throw new InvalidArgumentError(`${kind}: unknown field ${name} (allowed: ${allowed.join(', ')})`, {
        field: name,
      });
    }
    fields[name] = value;
  }
  return fields;
}

export function optionalText(kind: string, field: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '') {
    throw new InvalidArgumentError(`${kind}: ${field} must be a non-empty string`);
  }
  return value;
}

export function requiredText(kind: string, field: string, value: unknown): string {
  const text = optionalText(kind, field, value);
  if (text === undefined) throw new InvalidArgumentError(`${kind} needs an ${field}`);
  return text;
}

/** The bare table name of a name or table ARN; undefined if it is neither. */
export function tableIdOf(table: string): string | undefined {
  if (TABLE_NAME.test(table)) return table;
  return TABLE_ARN.exec(table)?.[1];
}

/** Exactly one type member set, as DynamoDB requires of an AttributeValue. */
export function isAttributeValue(value: unknown): value is AttributeValue {
  if (!isPlainObject(value)) return false;
  const set = Object.entries(value).filter(([, v]) => v !== undefined);
  return set.length === 1 && (ATTRIBUTE_TYPES as readonly string[]).includes(set[0]![0]);
}

const ATTRIBUTE_VALUE_HINT = "an AttributeValue such as { S: 'text' } or { N: '1' }";

export function checkItem(item: unknown): DynamoItem {
  if (!isPlainObject(item) || Object.keys(item).length === 0) {
    throw new InvalidArgumentError('put needs an Item with its attributes');
  }
  for (const [name, value] of Object.entries(item)) {
    if (!isAttributeValue(value)) {
      throw new InvalidArgumentError(`put: Item.${name} must be ${ATTRIBUTE_VALUE_HINT}`, {
        attribute: name,
      });
    }
  }
  return structuredClone(item as DynamoItem);
}

/** A key: one or two attributes (partition, sort), each a non-empty string, number or binary. */
export function checkKey(kind: string, key: unknown): DynamoItem {
  if (!isPlainObject(key)) throw new InvalidArgumentError(`${kind} needs a Key`);
  const entries = Object.entries(key);
  if (entries.length < 1 || entries.length > 2) {
    throw new InvalidArgumentError(`${kind}: Key must hold the partition key and, if any, the sort key`, {
      attributes: entries.length,
    });
  }
  for (const [name, value] of entries) {
    if (!isKeyValue(value)) {
      throw new InvalidArgumentError(`${kind}: Key.${name} must be a non-empty { S }, { N } or { B }`, {
        attribute: name,
      });
    }
  }
  return structuredClone(key as DynamoItem);
}

export function isKeyValue(value: unknown): value is AttributeValue {
  if (!isAttributeValue(value)) return false;
  const [type, member] = Object.entries(value).find(([, v]) => v !== undefined)!;
  if (!(KEY_TYPES as readonly string[]).includes(type)) return false;
  if (type === 'B') return member instanceof Uint8Array && member.byteLength > 0;
  return typeof member === 'string' && member !== '';
}

/**
 * Checks the expression maps against the expressions (every placeholder used is defined, every one defined
 * is used: DynamoDB refuses both) and returns them copied, empty maps left out (DynamoDB refuses those too).
 */
export function checkPlaceholders(
  kind: string,
  expressions: readonly (string | undefined)[],
  names: unknown,
  values: unknown,
): { ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: DynamoItem } {
  const used = new Set(expressions.flatMap((text) => text?.match(PLACEHOLDERS) ?? []));
  const out: { ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: DynamoItem } =
    {};
  const check = (field: string, map: unknown, pattern: RegExp, valid: (v: unknown) => boolean) => {
    if (map === undefined) return undefined;
    if (!isPlainObject(map)) throw new InvalidArgumentError(`${kind}: ${field} must be an object`);
    for (const [placeholder, value] of Object.entries(map)) {
      if (!pattern.test(placeholder)) {
        throw new InvalidArgumentError(`${kind}: ${field} has an invalid placeholder ${placeholder}`, {
          placeholder,
        });
      }
      if (!valid(value)) {
        throw new InvalidArgumentError(`${kind}: ${field}[${placeholder}] is not valid`, { placeholder });
      }
      if (!used.has(placeholder)) {
        throw new InvalidArgumentError(`${kind}: ${field}[${placeholder}] is not used in any expression`, {
          placeholder,
        });
      }
    }
    return Object.keys(map).length > 0 ? structuredClone(map) : undefined;
  };
  const namesCopy = check(
    'ExpressionAttributeNames',
    names,
    NAME_PLACEHOLDER,
    (v) => typeof v === 'string' && v !== '',
  );
  const valuesCopy = check('ExpressionAttributeValues', values, VALUE_PLACEHOLDER, isAttributeValue);
  for (const placeholder of used) {
    const defined = placeholder.startsWith('#') ? namesCopy : valuesCopy;
    if (defined?.[placeholder] === undefined) {
      const field = placeholder.startsWith('#') ? 'ExpressionAttributeNames' : 'ExpressionAttributeValues';
      throw new InvalidArgumentError(`${kind}: ${placeholder} is used but not defined in ${field}`, {
        placeholder,
      });
    }
  }
  if (namesCopy) out.ExpressionAttributeNames = namesCopy as Record<string, string>;
  if (valuesCopy) out.ExpressionAttributeValues = valuesCopy as DynamoItem;
  return out;
}
