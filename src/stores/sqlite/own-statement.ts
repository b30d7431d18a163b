import type Database from 'better-sqlite3';
import { InvalidArgumentError, StoreFailureError, TollgateError } from '../../core/errors.js';
import type { SqliteParams, SqliteValue } from './own-data.js';

/* A handler's own statement as text and parameters: checked, prepared, bound, copied, and its failures named. */

/** A constraint of the application's schema refused the statement (SQLITE_CONSTRAINT and its extended codes). */
export function isConstraint(error: unknown): error is Error {
  return (
    error instanceof Error &&
    'code' in error &&
    typeof error.code === 'string' &&
    error.code.startsWith('SQLITE_CONSTRAINT')
  );
}

/** Any other failure of an own statement in the commit: a permanent failure naming the statement. */
export function ownStatementFailure(sql: string, error: unknown): unknown {
  if (error instanceof TollgateError) return error; // refused by the checks, after a schema change
  const code = error instanceof Error && 'code' in error ? error.code : undefined;
  return new StoreFailureError(
    `the handler's statement "${excerpt(sql)}" failed in the commit; nothing of the hop was written`,
    { statement: excerpt(sql), sqliteCode: code },
    { cause: error },
  );
}

export function checkSql(sql: unknown): asserts sql is string {
  if (typeof sql !== 'string' || sql.trim().length === 0) {
    throw new InvalidArgumentError('a statement is a non-empty SQL string');
  }
}

/** Prepares a statement; SQLite's refusal (syntax, unknown table or column) becomes an InvalidArgumentError. */
export function prepareChecked(db: Database.Database, sql: string): Database.Statement {
  try {
    return db.prepare(sql);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const code = error instanceof Error && 'code' in error ? error.code : undefined;
    const statement = excerpt(sql.replace(/^EXPLAIN /, ''));
    throw new InvalidArgumentError(`cannot prepare "${statement}": ${message}`, {
      statement,
      sqliteCode: code,
    });
  }
}

/**
 * Binds `args` to `EXPLAIN <sql>` and steps it (which lists the program, never runs it): a missing, extra or
 * unbindable parameter fails here, in the handler.
 */
export function bind(
  explain: Database.Statement,
  sql: string,
  args: readonly unknown[],
  mode: 'get' | 'all' = 'get',
) {
  try {
    return mode === 'get' ? explain.get(...args) : explain.all(...args);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new InvalidArgumentError(`cannot bind the parameters of "${excerpt(sql)}": ${message}`, {
      statement: excerpt(sql),
    });
  }
}

export function refused(sql: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`refused to stage "${excerpt(sql)}": ${why}`, { statement: excerpt(sql) });
}

/** The first keyword of a statement, upper case, after whitespace and comments; '' if none. */
export function leadingKeyword(sql: string): string {
  let i = 0;
  for (;;) {
    while (i < sql.length && /\s/.test(sql.charAt(i))) i++;
    if (sql.startsWith('--', i)) {
      const end = sql.indexOf('\n', i);
      i = end < 0 ? sql.length : end + 1;
    } else if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else {
      break;
    }
  }
  return /^[A-Za-z]+/.exec(sql.slice(i))?.[0].toUpperCase() ?? '';
}

/** The statement as errors and conflict keys name it: whitespace collapsed, at most 60 characters. */
export function excerpt(sql: unknown): string {
  return String(sql).replace(/\s+/g, ' ').trim().slice(0, 60);
}

/**
 * Checks and copies the parameters (better-sqlite3's argument list), and measures the statement: its SQL text,
 * each value (strings by UTF-8 bytes, Buffers by length, numbers and bigints 8, null 1) and each name.
 */
export function snapshot(sql: string, params: SqliteParams | undefined): { args: unknown[]; bytes: number } {
  let bytes = Buffer.byteLength(sql, 'utf8');
  const copy = (value: unknown, name: string): SqliteValue => {
    if (value === null) {
      bytes += 1;
      return null;
    }
    switch (typeof value) {
      case 'number':
      case 'bigint':
        bytes += 8;
        return value;
      case 'string':
        bytes += Buffer.byteLength(value, 'utf8');
        return value;
    }
    if (Buffer.isBuffer(value)) {
      bytes += value.length;
      return Buffer.from(value);
    }
    throw new InvalidArgumentError(
      `parameter ${name} of "${excerpt(sql)}" is ${value === undefined ? 'undefined' : `a ${typeof value}`}; ` +
        'SQLite binds numbers, bigints, strings, Buffers and null',
      { statement: excerpt(sql), parameter: name },
    );
  };
  if (params === undefined) return { args: [], bytes };
  if (Array.isArray(params)) return { args: params.map((value, i) => copy(value, String(i + 1))), bytes };
  if (typeof params !== 'object' || params === null || Buffer.isBuffer(params)) {
    throw new InvalidArgumentError('parameters are an array (positional) or an object (named)', {
      statement: excerpt(sql),
    });
  }
  const named: Record<string, SqliteValue> = {};
  for (const [name, value] of Object.entries(params as Record<string, unknown>)) {
    bytes += Buffer.byteLength(name, 'utf8');
    named[name] = copy(value, name);
  }
  return { args: [named], bytes };
}
