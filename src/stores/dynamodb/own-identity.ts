import type { DynamoItem } from './own-data.js';

/* Telling items apart: the identity DynamoDB gives a key, and the key as people read it in errors. */

/** The key for people: attribute names in order, values as DynamoDB shows them (binaries in base64). */
export function keyJson(key: DynamoItem): string {
  const shown: Record<string, Record<string, string>> = {};
  for (const name of Object.keys(key).sort()) {
    const value = key[name]!;
    if (value.S !== undefined) shown[name] = { S: value.S };
    else if (value.N !== undefined) shown[name] = { N: value.N };
    else if (value.B !== undefined) shown[name] = { B: Buffer.from(value.B).toString('base64') };
  }
  return JSON.stringify(shown);
}

/** Equal for keys DynamoDB takes as one item: numbers compare by value ("1", "1.0" and "1e0" are one). */
export function itemIdentity(tableId: string, key: DynamoItem): string {
  const parts = Object.keys(key)
    .sort()
    .map((name) => {
      const value = key[name]!;
      const typed =
        value.S !== undefined
          ? `S${value.S}`
          : value.N !== undefined
            ? `N${canonicalNumber(value.N)}`
            : `B${Buffer.from(value.B ?? new Uint8Array()).toString('base64')}`;
      return [name, typed];
    });
  return JSON.stringify([tableId, parts]);
}

/** A decimal number's value as text: digits without leading or trailing zeros, and a power of ten. */
function canonicalNumber(text: string): string {
  const match = /^\s*([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$/.exec(text);
  if (!match || `${match[2]}${match[3] ?? ''}` === '') return text;
  const fraction = match[3] ?? '';
  let digits = `${match[2]}${fraction}`.replace(/^0+/, '');
  if (digits === '') return '0';
  let exponent = Number(match[4] ?? 0) - fraction.length;
  const trimmed = digits.replace(/0+$/, '');
  exponent += digits.length - trimmed.length;
  digits = trimmed;
  return `${match[1] === '-' ? '-' : ''}${digits}e${exponent}`;
}
