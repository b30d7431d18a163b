import { TOKEN_ID_PATTERN } from '../../src/core/id-pattern.js';

const TOKEN_ID = new RegExp(TOKEN_ID_PATTERN);

/** Undefined for a well-formed token or conversation id; otherwise why it is not one, in words. */
export function idProblem(value: string): string | undefined {
  if (TOKEN_ID.test(value)) return undefined;
  if (value.length === 0) return 'the id is empty.';
  const stray = [...value].find((c) => !/[A-Za-z0-9_-]/.test(c));
  if (stray !== undefined) {
    const shown = stray === ' ' ? 'a space' : `“${stray}”`;
    return `it contains ${shown}; an id has only letters A–Z and a–z, digits, “_” and “-”.`;
  }
  const characters = value.length === 1 ? '1 character' : `${value.length} characters`;
  return `it has ${characters}; an id has 8 to 128.`;
}
