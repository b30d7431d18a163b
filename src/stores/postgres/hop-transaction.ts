import type { PoolClient } from 'pg';
import { ClosedError, InvalidArgumentError } from '../../core/errors.js';

/* The hop's open transaction as a handler sees it (`ctx.tx`), and what it refuses. */

/**
 * `ctx.tx` of a handler on the PostgreSQL store: the hop's open transaction, on the connection that consumed the
 * incoming token. Whatever it changes commits with the consume, the state writes and the emitted tokens, or
 * rolls back with them.
 *
 * - Parameterised queries only: `query('UPDATE seats SET taken = taken + $1 WHERE flight = $2', [n, flight])`.
 *   Each call is one statement (the extended protocol); never build SQL text from values.
 * - Rows come back as node-postgres gives them by default (bigint as string, json parsed, ...).
 * - Transaction control is Tollgate's: BEGIN, COMMIT, ROLLBACK (other than ROLLBACK TO a savepoint), END,
 *   ABORT and PREPARE TRANSACTION are refused. SAVEPOINT, RELEASE and ROLLBACK TO are fine.
 * - The connection goes back to a pool afterwards: change session settings with SET LOCAL, not SET.
 * - Usable only while the handler runs; a query after it returned fails with ClosedError.
 */
export interface PgTx {
  query<R = Record<string, unknown>>(
    text: string,
    values?: unknown[],
  ): Promise<{ rows: R[]; rowCount: number }>;
}

/** SQLSTATE 25P02: a statement sent in a transaction that an earlier error aborted. */
export const IN_FAILED_TRANSACTION = '25P02';

export function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
}

/**
 * The open transaction lent to a handler: its handle (`ctx.tx`), usable while the handler runs, and the last
 * error a statement in it met, which decides what a later failure means (a deadlock in the handler's SQL makes
 * the hop worth re-running; a swallowed error explains why the transaction cannot commit).
 */
export class HopTransaction {
  readonly handle: PgTx;
  failure: unknown;
  private open = true;

  constructor(private readonly client: PoolClient) {
    this.handle = {
      query: <R>(text: string, values?: unknown[]) => this.query<R>(text, values),
    };
  }

  close(): void {
    this.open = false;
  }

  /** Runs one of the store's own reads in the transaction, noting its error and wrapping it for the handler. */
  async run<T>(work: () => Promise<T>, wrap: (error: unknown) => Error): Promise<T> {
    this.ensureOpen();
    try {
      return await work();
    } catch (error) {
      this.note(error);
      throw wrap(error);
    }
  }

  private ensureOpen(): void {
    if (!this.open) throw new ClosedError("the hop's transaction (ctx.tx)");
  }

  /** "The transaction is aborted" only echoes an earlier error: keep that one. */
  private note(error: unknown): void {
    if (codeOf(error) !== IN_FAILED_TRANSACTION || this.failure === undefined) this.failure = error;
  }

  private async query<R>(text: string, values?: unknown[]): Promise<{ rows: R[]; rowCount: number }> {
    this.ensureOpen();
    if (typeof text !== 'string')
      throw new InvalidArgumentError('ctx.tx.query takes the SQL text as a string');
    if (values !== undefined && !Array.isArray(values)) {
      throw new InvalidArgumentError('ctx.tx.query takes the parameter values as an array');
    }
    if (TRANSACTION_CONTROL.test(text.replace(LEADING_TRIVIA, ''))) {
      throw new InvalidArgumentError(
        "ctx.tx.query refuses transaction control: the hop's transaction commits or rolls back as a whole",
      );
    }
    try {
      // The extended protocol even without values: one statement per call, never a script.
      const config = { text, values: values ?? [], queryMode: 'extended' };
      const result = await this.client.query<Record<string, unknown>>(config);
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
    } catch (error) {
      this.note(error);
      throw error;
    }
  }
}

/** Whitespace and comments before a statement's first keyword. */
const LEADING_TRIVIA = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/;
/** Statements that would end or split the hop's transaction. ROLLBACK TO (a savepoint) is allowed. */
const TRANSACTION_CONTROL =
  /^(?:begin|start|commit|end|abort|prepare\s+transaction)\b|^rollback\b(?!\s+(?:(?:work|transaction)\s+)?to\b)/i;
