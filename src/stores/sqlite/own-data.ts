import type Database from 'better-sqlite3';
import { InvalidArgumentError, StoreFailureError, StoreUnavailableError } from '../../core/errors.js';
import type { CommitFailure, StagedAction, StagedOwnData } from '../../core/store.js';
import { isBusy } from './busy.js';
import { Lru } from './lru.js';
import {
  bind,
  checkSql,
  excerpt,
  isConstraint,
  leadingKeyword,
  ownStatementFailure,
  prepareChecked,
  refused,
  snapshot,
} from './own-statement.js';

/** A value SQLite can bind. better-sqlite3 takes numbers, bigints, strings, Buffers and null; not booleans. */
export type SqliteValue = number | bigint | string | Buffer | null;

/**
 * Statement parameters: an array for positional ones (`?`, `?1`), or an object for named ones (`@id`, `:id`,
 * `$id`), keyed without the prefix, as better-sqlite3 takes them.
 */
export type SqliteParams = readonly SqliteValue[] | Readonly<Record<string, SqliteValue>>;

export interface SqliteRunOptions {
  /**
   * The commit goes through only if the statement itself changes exactly this many rows (SQLite's `changes()`:
   * rows the statement inserted, updated or deleted, not those its triggers or foreign-key actions changed).
   * Otherwise nothing of the hop is written and the handler is re-run on fresh state, like after a state
   * version conflict. The optimistic pattern: read a row's version with `get`, then
   * `run('UPDATE ... SET ..., version = version + 1 WHERE id = ? AND version = ?', [id, read], { expectRows: 1 })`.
   */
  expectRows?: number;
  /**
   * If the statement violates a constraint in the commit, run the handler again on fresh state (like a version
   * conflict) instead of failing the hop with OwnConditionFailedError. For a write that races with other hops on
   * the same rows, e.g. an INSERT whose key another hop may take first.
   */
  retryOnConflict?: boolean;
}

/**
 * The handler's handle on the application's own tables in the SQLite store's database file (`ctx.tx`).
 *
 * - `get` and `all` read now, on the store's connection, outside any transaction: they see what is committed
 *   (WAL), as each statement's own snapshot. They are refused unless they are read-only queries (SELECT, WITH,
 *   VALUES).
 * - `run` stages a write (INSERT, REPLACE, UPDATE, DELETE, or WITH ... one of those). It is prepared and checked
 *   now, so that a syntax error, an unknown table, wrong parameters or a refused statement fail the handler with
 *   an InvalidArgumentError naming the statement (a failed handler writes nothing; the token stays live). It runs
 *   only in the hop's commit, in the transaction that consumes the token, after the key-value state writes and
 *   before the outgoing tokens are minted, in the order staged. A duplicate never runs it.
 * - **No read-your-writes.** Staged writes are not visible to `get`/`all` in the same run (nor to anybody) until
 *   the commit. Read first, then stage; carry what you need in variables.
 * - Reads and the commit are not one snapshot: a row read may change before the commit. Make a write that
 *   depends on a read conditional (`WHERE ... AND version = ?`) and set `expectRows`, so that a change in between
 *   re-runs the handler instead of writing over it.
 * - A staged statement that violates a constraint in the commit (UNIQUE, PRIMARY KEY, CHECK, NOT NULL, a foreign
 *   key, a trigger's RAISE(ABORT) or RAISE(FAIL)) is the handler's own condition failing, as a DynamoDB
 *   ConditionExpression would: the hop fails with OwnConditionFailedError (`own-condition-failed`), or re-runs
 *   with `retryOnConflict`. Any other error of the statement in the commit (a type mismatch, a value too big) is
 *   a permanent store failure. Either way nothing of the hop is written and the token stays live; in a group
 *   commit only that hop's savepoint is rolled back, and the other hops commit.
 * - Refused, because they would break the hop's atomicity or other hops sharing the group commit:
 *   statements that write Tollgate's tables (`tokens`, `state`, `tollgate_meta`) or the schema, also through a
 *   trigger, a view or a foreign-key action; RETURNING (nothing could read the rows: the statement runs after
 *   the handler); conflict resolution ROLLBACK (`OR ROLLBACK`, `ON CONFLICT ROLLBACK` in the table, a trigger's
 *   `RAISE(ROLLBACK)`) and deferred foreign keys, which end or fail the whole group transaction instead of the
 *   statement.
 * - Each staged statement counts as one item of the hop's portable commit limits (100 items, 380 KB an item,
 *   4 MB in all, as on DynamoDB), sized as its SQL text plus its parameters. A statement that changes many rows is
 *   still one item: such code will not port to a store whose actions change one item each.
 *
 * The handle belongs to one handler run: once the core has taken what it staged (to commit it), `run` throws.
 */
export interface SqliteTx {
  /** First row of a read-only query, or undefined. */
  get<T = Record<string, unknown>>(sql: string, params?: SqliteParams): T | undefined;
  /** All rows of a read-only query. */
  all<T = Record<string, unknown>>(sql: string, params?: SqliteParams): T[];
  /** Stages a write statement for the hop's commit. */
  run(sql: string, params?: SqliteParams, options?: SqliteRunOptions): void;
}

/** Tables Tollgate owns in the database file; handlers' statements may read them but never write them. */
export const TOLLGATE_TABLES: readonly string[] = ['tokens', 'state', 'tollgate_meta'];

/**
 * First keywords accepted, checked before the statement is even prepared: SQLite runs some statements (several
 * PRAGMAs) at prepare time, and the store's connection must not be reconfigured by a handler.
 */
const WRITE_KEYWORDS = new Set(['INSERT', 'REPLACE', 'UPDATE', 'DELETE', 'WITH']);
const READ_KEYWORDS = new Set(['SELECT', 'WITH', 'VALUES']);

/** Prepared statements kept per SQL text (each of reads and writes); the least recently used go first. */
const STATEMENT_CACHE_SIZE = 256;

/** Added to each staged statement's measured size, as the core adds to each key-value state write. */
const ACTION_OVERHEAD_BYTES = 32;

// VDBE operands (sqlite3.c): OE_Rollback, the conflict resolution that ends the whole transaction, and
// OPFLAG_P2ISREG, set when an Open* opcode takes its root page from a register instead of P2.
const OE_ROLLBACK = 1;
const OPFLAG_P2ISREG = 0x10;

/** A write statement that passed the checks, at the schema version it was checked against. */
interface Vetted {
  readonly write: Database.Statement;
  /** `EXPLAIN <sql>` in raw mode: binding it checks parameters without running the statement. */
  readonly explain: Database.Statement;
  readonly schemaVersion: number;
}

/** One row of `EXPLAIN`, raw: addr, opcode, p1, p2, p3, p4, p5, comment. */
type Instruction = [number, string, number, number, number, unknown, number, unknown];

/** A staged statement. Only the store whose handle made it applies it. */
class StagedStatement implements StagedAction {
  constructor(
    readonly owner: SqliteOwnData,
    readonly sql: string,
    readonly args: readonly unknown[],
    readonly expectRows: number | undefined,
    readonly retryOnConflict: boolean,
    readonly bytes: number,
    readonly vetted: Vetted,
  ) {}
}

/**
 * The SQLite store's `ownData` capability (mode `staged`). See SqliteTx for what handlers get.
 *
 * How Tollgate's tables are protected: not by looking for table names in the SQL text (quoting, schema
 * prefixes, views and triggers defeat that), but by reading the statement's compiled program. `EXPLAIN <sql>`
 * lists the bytecode SQLite will run, trigger and foreign-key-action sub-programs included; every b-tree a
 * statement writes is opened by an `OpenWrite` on its root page (or emptied by `Clear`). A statement is refused if
 * it would write a root page of `tokens`, `state`, `tollgate_meta` or their indexes (read from sqlite_schema),
 * or of the schema table itself. SQLite's authorizer would be the other exact tool, but better-sqlite3 does not
 * expose it. The check holds for a schema version: a statement is checked again, inside the commit's transaction
 * (under the write lock, so nothing can change in between), if the schema changed since it was staged (a new
 * trigger could make a harmless statement write a token).
 */
export class SqliteOwnData implements StagedOwnData<SqliteTx> {
  readonly mode = 'staged' as const;
  private readonly writes = new Lru<Vetted>(STATEMENT_CACHE_SIZE);
  private readonly reads = new Lru<Database.Statement>(STATEMENT_CACHE_SIZE);
  private readonly schemaVersionQuery: Database.Statement;
  private readonly tollgatePagesQuery: Database.Statement;
  private tollgatePages: { schemaVersion: number; pages: ReadonlySet<number> } | undefined;

  constructor(
    private readonly db: Database.Database,
    private readonly ensureOpen: () => void,
  ) {
    this.schemaVersionQuery = db.prepare('PRAGMA schema_version').pluck();
    const names = TOLLGATE_TABLES.map((name) => `'${name}'`).join(', ');
    this.tollgatePagesQuery = db
      .prepare(`SELECT rootpage FROM main.sqlite_schema WHERE lower(tbl_name) IN (${names}) AND rootpage > 0`)
      .pluck();
  }

  open(): { handle: SqliteTx; staged(): readonly StagedAction[] } {
    const actions: StagedStatement[] = [];
    let taken = false;
    const handle: SqliteTx = {
      get: <T>(sql: string, params?: SqliteParams) => this.read(sql, params, 'get') as T | undefined,
      all: <T>(sql: string, params?: SqliteParams) => this.read(sql, params, 'all') as T[],
      run: (sql, params, options) => {
        if (taken) {
          throw new InvalidArgumentError(
            'this handler run is over (its commit was sent): stage statements while the handler runs',
            { statement: excerpt(sql) },
          );
        }
        actions.push(this.stage(sql, params, options));
      },
    };
    return {
      handle,
      staged: () => {
        taken = true;
        return Object.freeze([...actions]);
      },
    };
  }

  /** Refuses actions this store's handles did not make (another store's, or forged), before anything runs. */
  check(actions: readonly StagedAction[] | undefined): void {
    for (const action of actions ?? []) {
      if (!(action instanceof StagedStatement) || action.owner !== this) {
        throw new InvalidArgumentError(
          "a commit's own actions must come from this SQLite store's handle (ownData.open())",
        );
      }
    }
  }

  /**
   * Runs the staged statements, in order, inside the commit's transaction (or savepoint). Returns why the commit
   * must not happen, for the caller to roll back; throws what must fail more than this commit (lock contention,
   * or an error after which SQLite ended the whole transaction).
   */
  apply(actions: readonly StagedAction[] | undefined): CommitFailure | undefined {
    if (actions === undefined || actions.length === 0) return undefined;
    const schemaVersion = this.schemaVersion();
    for (const action of actions as readonly StagedStatement[]) {
      let changes: number;
      try {
        const vetted =
          action.vetted.schemaVersion === schemaVersion
            ? action.vetted
            : this.vet(action.sql, action.args, schemaVersion);
        changes = vetted.write.run(...action.args).changes;
      } catch (error) {
        if (!this.db.inTransaction || isBusy(error)) throw error;
        if (isConstraint(error)) {
          const item = `sqlite: ${excerpt(action.sql)} (${error.message})`;
          return { kind: 'own-condition-failed', item, retry: action.retryOnConflict };
        }
        return { kind: 'permanent', cause: ownStatementFailure(action.sql, error) };
      }
      if (action.expectRows !== undefined && changes !== action.expectRows) {
        return { kind: 'version-conflict', key: `sqlite: ${excerpt(action.sql)}` };
      }
    }
    return undefined;
  }

  private stage(
    sql: string,
    params: SqliteParams | undefined,
    options: SqliteRunOptions = {},
  ): StagedStatement {
    this.ensureOpen();
    checkSql(sql);
    const { expectRows, retryOnConflict = false } = options;
    if (typeof retryOnConflict !== 'boolean') {
      throw new InvalidArgumentError('retryOnConflict must be a boolean', { statement: excerpt(sql) });
    }
    if (expectRows !== undefined && !(Number.isSafeInteger(expectRows) && expectRows >= 0)) {
      throw new InvalidArgumentError('expectRows must be a non-negative integer', {
        statement: excerpt(sql),
        expectRows,
      });
    }
    // A copy: what commits is what was staged, even if the handler changes its objects afterwards.
    const { args, bytes } = snapshot(sql, params);
    const schemaVersion = this.schemaVersion();
    let vetted = this.writes.get(sql);
    if (vetted?.schemaVersion === schemaVersion) {
      bind(vetted.explain, sql, args); // parameters checked now, not at the commit
    } else {
      vetted = this.vet(sql, args, schemaVersion);
      this.writes.set(sql, vetted);
    }
    return new StagedStatement(
      this,
      sql,
      args,
      expectRows,
      retryOnConflict,
      bytes + ACTION_OVERHEAD_BYTES,
      vetted,
    );
  }

  /** Prepares a write statement and checks what its program would do; throws InvalidArgumentError if refused. */
  private vet(sql: string, args: readonly unknown[], schemaVersion: number): Vetted {
    const keyword = leadingKeyword(sql);
    if (!WRITE_KEYWORDS.has(keyword)) {
      throw refused(
        sql,
        `${keyword || 'it'} is not a write Tollgate stages (INSERT, REPLACE, UPDATE, DELETE)`,
      );
    }
    const write = prepareChecked(this.db, sql);
    if (write.readonly) throw refused(sql, 'it changes nothing; read with get() or all()');
    if (write.reader) {
      throw refused(
        sql,
        'it returns rows (RETURNING), which a staged statement cannot: it runs at the commit',
      );
    }
    const explain = prepareChecked(this.db, `EXPLAIN ${sql}`).raw(true);
    const program = bind(explain, sql, args, 'all') as Instruction[];
    const protectedPages = this.protectedPages(schemaVersion);
    for (const [, opcode, p1, p2, p3, , p5] of program) {
      if (opcode === 'OpenWrite' && p3 === 0 && ((p5 & OPFLAG_P2ISREG) !== 0 || protectedPages.has(p2))) {
        throw refused(sql, `it writes Tollgate's own tables (${TOLLGATE_TABLES.join(', ')}) or the schema`);
      }
      const emptied = (opcode === 'Clear' && p2 === 0) || (opcode === 'Destroy' && p3 === 0);
      if (emptied && protectedPages.has(p1)) {
        throw refused(sql, `it writes Tollgate's own tables (${TOLLGATE_TABLES.join(', ')}) or the schema`);
      }
      if ((opcode === 'Halt' || opcode === 'HaltIfNull') && p1 !== 0 && p2 === OE_ROLLBACK) {
        throw refused(
          sql,
          'its conflict resolution is ROLLBACK (OR ROLLBACK, ON CONFLICT ROLLBACK, RAISE(ROLLBACK)), which would ' +
            'end the transaction other hops share; use ABORT (the default), FAIL, IGNORE or REPLACE',
        );
      }
      // A deferred foreign key counts its violations on the connection (P1 set) and fails only at COMMIT; a
      // statement that can only resolve violations (P2 < 0, e.g. inserting a parent row) is harmless.
      if (opcode === 'FkCounter' && p1 !== 0 && p2 > 0) {
        throw refused(
          sql,
          'it is checked by a deferred foreign key, which fails only at COMMIT, for every hop of the group ' +
            'commit; make the foreign key immediate (NOT DEFERRABLE, the default)',
        );
      }
    }
    return { write, explain, schemaVersion };
  }

  /** Root pages of Tollgate's tables and their indexes, and of the schema table (page 1), at a schema version. */
  private protectedPages(schemaVersion: number): ReadonlySet<number> {
    if (this.tollgatePages?.schemaVersion !== schemaVersion) {
      const pages = new Set<number>([1, ...(this.tollgatePagesQuery.all() as number[])]);
      this.tollgatePages = { schemaVersion, pages };
    }
    return this.tollgatePages.pages;
  }

  private schemaVersion(): number {
    return this.schemaVersionQuery.get() as number;
  }

  private read(sql: string, params: SqliteParams | undefined, mode: 'get' | 'all'): unknown {
    this.ensureOpen();
    checkSql(sql);
    let statement = this.reads.get(sql);
    if (statement === undefined) {
      const keyword = leadingKeyword(sql);
      if (!READ_KEYWORDS.has(keyword)) {
        throw refused(sql, `${keyword || 'it'} is not a query; get() and all() run SELECT, WITH or VALUES`);
      }
      statement = prepareChecked(this.db, sql);
      if (!statement.reader || !statement.readonly) {
        throw refused(sql, 'get() and all() only read; stage writes with run()');
      }
      this.reads.set(sql, statement);
    }
    const args = params === undefined ? [] : Array.isArray(params) ? params : [params];
    try {
      return mode === 'get' ? statement.get(...args) : statement.all(...args);
    } catch (error) {
      if (error instanceof TypeError || error instanceof RangeError) {
        throw new InvalidArgumentError(`cannot bind the parameters of "${excerpt(sql)}": ${error.message}`, {
          statement: excerpt(sql),
        });
      }
      if (isBusy(error)) {
        throw new StoreUnavailableError(
          'SQLite database is locked',
          { statement: excerpt(sql) },
          { cause: error },
        );
      }
      throw new StoreFailureError(
        `query "${excerpt(sql)}" failed`,
        { statement: excerpt(sql) },
        { cause: error },
      );
    }
  }
}
