import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ErrorCode, ErrorCodes } from '../../src/core/errors.js';
import { PROBLEMS, type ProblemKind, problemKindOfCode } from '../../src/transports/http/problems.js';

const page = join(resolve(import.meta.dirname, '../..'), 'docs', 'errors.md');

interface Row {
  code: string;
  /** The HTTP column as written: `<status> \`<kind>\``, maybe followed by words. */
  http: string;
}

/** The rows of the page's table whose first cell is a `TOLLGATE_ERR_*` code. */
function documentedRows(): Row[] {
  return readFileSync(page, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('| `TOLLGATE_ERR_'))
    .map((line) => {
      const cells = line.split('|').map((cell) => cell.trim());
      // '', code, meaning, HTTP answer, AMQP consumer, what to do, ''
      expect(cells, line).toHaveLength(7);
      return { code: (cells[1] as string).replaceAll('`', ''), http: cells[3] as string };
    });
}

describe('docs/errors.md', () => {
  const rows = documentedRows();
  const documented = rows.map((row) => row.code);
  const declared: string[] = Object.values(ErrorCodes);

  it('lists every code of ErrorCodes, each once', () => {
    expect(declared.filter((code) => !documented.includes(code))).toEqual([]);
    expect(documented.filter((code, i) => documented.indexOf(code) !== i)).toEqual([]);
  });

  it('lists no code that ErrorCodes does not declare', () => {
    expect(documented.filter((code) => !declared.includes(code))).toEqual([]);
  });

  it.each(rows)('gives $code the status and problem kind the catalogue answers with', ({ code, http }) => {
    const kind: ProblemKind = problemKindOfCode(code as ErrorCode);
    const written = /^(\d{3}) `([a-z-]+)`/.exec(http);
    expect(written, `"${http}" should start with a status and a kind`).not.toBeNull();
    expect({ status: Number(written?.[1]), kind: written?.[2] }).toEqual({
      status: PROBLEMS[kind].status,
      kind,
    });
  });
});
