import { IN_FLIGHT_STATUSES, LIVE_STATUSES, sourcesOf } from '../../core/token.js';
import { INSERT_COLUMNS, TOKEN_COLUMN_LIST, TOKEN_COLUMNS } from '../token-tuple.js';
import { INSERT_JSON, INSERT_SELECT, INSERT_TYPES } from './rows.js';

/* The SQL text of the store's own statements; the handlers' own SQL goes through ctx.tx instead. */

const LIVE = `('${LIVE_STATUSES.join("','")}')`;
const IN_FLIGHT = `('${IN_FLIGHT_STATUSES.join("','")}')`;
const ENDED = "('consumed','expired','revoked')";
const REVOCABLE = `('${sourcesOf('revoked').join("','")}')`;

/**
 * A setting that only a hop's own BEGIN sets, for its transaction alone (SET LOCAL ends with the transaction).
 * The hop sends its consume right behind BEGIN without waiting for BEGIN's answer; the consume matches only where
 * the setting is on, so that, were BEGIN ever refused, the consume would change nothing instead of committing on
 * its own.
 */
const HOP_OPEN = 'tollgate.hop_open';

/** Opens a hop's transaction (simple protocol: were BEGIN refused, the SET would not run). */
export const BEGIN_HOP = `BEGIN; SET LOCAL ${HOP_OPEN} = 'on'`;

export interface Statement {
  readonly name: string;
  readonly text: string;
}

export type Statements = ReturnType<typeof statements>;

/**
 * The row of one token, as scalar parameters from `$first` on. A single row costs less to encode, parse and plan
 * than the same row as one-element arrays to unnest: about 30 µs less CPU per statement, client and server
 * together, measured on one connection.
 */
function tokenRow(first: number): string {
  return INSERT_TYPES.map((type, i) => `$${first + i}::${type}${INSERT_JSON[i] ? '::json' : ''}`).join(', ');
}

/** One token, as one row of scalar parameters from `$first` on. */
function insertToken(s: string, first: number): string {
  return `INSERT INTO ${s}.tokens (${INSERT_COLUMNS}) VALUES (${tokenRow(first)})`;
}

/** One array parameter per column, one element per token: the same statement for any number of tokens. */
function insertTokens(s: string, first: number): string {
  return `INSERT INTO ${s}.tokens (${INSERT_COLUMNS})
    SELECT ${INSERT_SELECT}
    FROM unnest(${INSERT_TYPES.map((type, i) => `$${first + i}::${type}[]`).join(', ')}) AS t(${INSERT_COLUMNS})`;
}

/** How a stage statement takes its mints: none, one row of scalars, or one array per column. */
type MintShape = 'none' | 'one' | 'many';

/** The parts a stage statement has: each part costs the server its plan nodes even when it has no rows. */
export interface StageShape {
  /** State writes (the store's key-value table). */
  readonly writes: boolean;
  readonly mints: MintShape;
  /** An answer kept on the consumed token. */
  readonly answer: boolean;
}

const NO_KEYS = 'ARRAY[]::text[]';

/**
 * What a handler staged, as one statement with only the parts it needs. Its parameters, in order and only for
 * the parts present: the writes (key, value or NULL to delete, expected version or NULL for a blind write); the
 * tokens to mint, one parameter per insert column (scalars for 'one', arrays for 'many'); the consumed token
 * and its stored answer. Answers the keys whose conditional write held and the keys present that a delete at
 * version 0 expected absent. A token id already taken fails the statement (the primary key's unique violation),
 * which leaves the transaction unable to commit. Its parts touch distinct rows, so running them side by side is
 * safe.
 */
function stageText(s: string, { writes, mints, answer }: StageShape): string {
  const parts: string[] = [];
  let next = 1;
  let held = NO_KEYS;
  let present = NO_KEYS;
  if (writes) {
    parts.push(`w AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::integer[]) WITH ORDINALITY AS w(key, value, expected, n)
      ),
      put_blind AS (
        INSERT INTO ${s}.state AS st (key, value, version)
        SELECT key, value::json, 1 FROM w WHERE value IS NOT NULL AND expected IS NULL ORDER BY n
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = st.version + 1
      ),
      put_new AS (
        INSERT INTO ${s}.state (key, value, version)
        SELECT key, value::json, 1 FROM w WHERE value IS NOT NULL AND expected = 0 ORDER BY n
        ON CONFLICT (key) DO NOTHING RETURNING key
      ),
      put_at AS (
        UPDATE ${s}.state AS st SET value = w.value::json, version = st.version + 1 FROM w
        WHERE w.value IS NOT NULL AND w.expected > 0 AND st.key = w.key AND st.version = w.expected
        RETURNING st.key
      ),
      delete_blind AS (
        DELETE FROM ${s}.state AS st USING w WHERE w.value IS NULL AND w.expected IS NULL AND st.key = w.key
      ),
      delete_at AS (
        DELETE FROM ${s}.state AS st USING w
        WHERE w.value IS NULL AND w.expected > 0 AND st.key = w.key AND st.version = w.expected
        RETURNING st.key
      )`);
    next = 4;
    held =
      'ARRAY(SELECT key FROM put_new UNION ALL SELECT key FROM put_at UNION ALL SELECT key FROM delete_at)';
    present = `ARRAY(SELECT st.key FROM ${s}.state AS st JOIN w ON st.key = w.key
      WHERE w.value IS NULL AND w.expected = 0)`;
  }
  if (mints !== 'none') {
    const insert = mints === 'one' ? insertToken(s, next) : insertTokens(s, next);
    parts.push(`minted AS (${insert})`);
    next += INSERT_TYPES.length;
  }
  if (answer) {
    parts.push(
      `answered AS (UPDATE ${s}.tokens SET response = $${next + 1}::text::json WHERE id = $${next})`,
    );
  }
  const selected = `SELECT ${held}, ${present}`;
  return parts.length === 0 ? selected : `WITH ${parts.join(',\n      ')}\n      ${selected}`;
}

/** The stage statement of each shape, named by its parts and made on first use. */
function stageStatements(s: string, statement: (name: string, text: string) => Statement) {
  const made = new Map<string, Statement>();
  return (shape: StageShape): Statement => {
    const key = `${shape.writes ? 'writes_' : ''}${shape.mints}${shape.answer ? '_answer' : ''}`;
    let found = made.get(key);
    if (!found) {
      found = statement(`stage_${key}`, stageText(s, shape));
      made.set(key, found);
    }
    return found;
  };
}

/** Every statement the store sends, named so that each connection parses and plans it once. */
export function statements(s: string) {
  const statement = (name: string, text: string): Statement => ({ name: `tollgate_${name}`, text });
  const page = (column: string) =>
    `SELECT ${TOKEN_COLUMNS} FROM ${s}.tokens WHERE ${column} = $1 AND minted_at < $2
      AND (minted_at, id) > ($3, $4) ORDER BY minted_at, id LIMIT $5`;
  return {
    schemaVersion: statement('schema_version', `SELECT value FROM ${s}.meta WHERE key = 'schema_version'`),
    getToken: statement('get_token', `SELECT ${TOKEN_COLUMNS} FROM ${s}.tokens WHERE id = $1`),
    checkToken: statement(
      'check_token',
      `SELECT status, fingerprint, expires_at FROM ${s}.tokens WHERE id = $1`,
    ),
    existingIds: statement('existing_ids', `SELECT id FROM ${s}.tokens WHERE id = ANY($1::text[])`),
    mint: statement('mint', insertTokens(s, 1)),
    mintOne: statement('mint_one', insertToken(s, 1)),
    // Issuing: one token, unless its id is taken.
    issueOne: statement('issue_one', `${insertToken(s, 1)} ON CONFLICT (id) DO NOTHING RETURNING id`),
    // The conditional consume: exists, live, not expired, fingerprint matches. Under READ COMMITTED a concurrent
    // copy blocks on the row lock, then re-checks the condition on the committed row: it finds it consumed.
    // Tombstones drop payload and headers: the guarantee needs only the id and status.
    consume: statement(
      'consume',
      `UPDATE ${s}.tokens SET status = 'consumed', consumed_at = $2, consumed_by = $3, commit_id = $4,
        response = $5::json, retain_until = $6, payload = NULL, headers = NULL, lease_until = NULL
      WHERE id = $1 AND status IN ${LIVE} AND (expires_at IS NULL OR expires_at > $2)
        AND (fingerprint IS NULL OR fingerprint = $7)`,
    ),
    // The same consume, answering the token as it was before it: an interactive hop needs no read of its own.
    // It runs only inside a transaction BEGIN_HOP opened.
    consumeReading: statement(
      'consume_reading',
      `UPDATE ${s}.tokens SET status = 'consumed', consumed_at = $2, consumed_by = $3, commit_id = $4,
        response = $5::json, retain_until = $6, payload = NULL, headers = NULL, lease_until = NULL
      FROM (SELECT ${TOKEN_COLUMNS} FROM ${s}.tokens WHERE id = $1 FOR UPDATE) AS prior
      WHERE ${s}.tokens.id = prior.id AND current_setting('${HOP_OPEN}', true) = 'on'
        AND ${s}.tokens.status IN ${LIVE}
        AND (${s}.tokens.expires_at IS NULL OR ${s}.tokens.expires_at > $2)
        AND (${s}.tokens.fingerprint IS NULL OR ${s}.tokens.fingerprint = $7)
      RETURNING ${TOKEN_COLUMN_LIST.map((column) => `prior.${column}`).join(', ')}`,
    ),
    getState: statement('get_state', `SELECT value, version FROM ${s}.state WHERE key = $1`),
    // What a handler staged, as one statement of the shape it needs (see stage).
    stage: stageStatements(s, statement),
    // A row locked by a hop consuming it is skipped, not waited for: the hop ends it (consumed), or rolls back
    // and leaves it pending for the relay. Waiting would tie a sender to its receiver's handler.
    markDispatched: statement(
      'mark_dispatched',
      `UPDATE ${s}.tokens SET status = 'dispatched', dispatched_at = $2, lease_until = NULL
      WHERE status = 'pending' AND id IN (SELECT id FROM ${s}.tokens WHERE id = ANY($1::text[])
        AND status = 'pending' FOR UPDATE SKIP LOCKED)`,
    ),
    revoke: statement(
      'revoke',
      `UPDATE ${s}.tokens SET status = 'revoked', retain_until = $2, payload = NULL, headers = NULL,
        lease_until = NULL
      WHERE id = $1 AND status IN ${REVOCABLE} RETURNING ${TOKEN_COLUMNS}`,
    ),
    expire: statement(
      'expire',
      `UPDATE ${s}.tokens SET status = 'expired', retain_until = $1, payload = NULL, headers = NULL
      WHERE status = 'issued' AND id IN (SELECT id FROM ${s}.tokens WHERE status = 'issued'
        AND expires_at IS NOT NULL AND expires_at <= $2 LIMIT $3 FOR UPDATE SKIP LOCKED)`,
    ),
    // Rows another relay (or a hop's consume) holds are skipped, not waited for.
    claim: statement(
      'claim',
      `UPDATE ${s}.tokens SET lease_until = $5, attempts = attempts + 1
      WHERE id IN (SELECT id FROM ${s}.tokens WHERE status = 'pending' AND minted_at <= $1
          AND (lease_until IS NULL OR lease_until < $2) AND ($3::text IS NULL OR medium = $3)
        ORDER BY minted_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
      RETURNING ${TOKEN_COLUMNS}`,
    ),
    // Due scheduled tokens, earliest first, from the partial index tokens_due. Rows another relay (or a hop's
    // cancel) holds are skipped, not waited for: racing relays each take different tokens.
    claimDue: statement(
      'claim_due',
      `WITH due AS (
        SELECT id FROM ${s}.tokens WHERE status = 'scheduled' AND due_at <= $1
          AND ($4::text IS NULL OR medium = $4)
        ORDER BY due_at, id LIMIT $3 FOR UPDATE SKIP LOCKED
      )
      UPDATE ${s}.tokens AS t SET status = 'pending', lease_until = $2, attempts = t.attempts + 1
      FROM due WHERE t.id = due.id AND t.status = 'scheduled'
      RETURNING ${TOKEN_COLUMN_LIST.map((column) => `t.${column}`).join(', ')}`,
    ),
    byDue: statement(
      'by_due',
      `SELECT ${TOKEN_COLUMNS} FROM ${s}.tokens WHERE status = 'scheduled' AND due_at < $1 AND minted_at < $2
        AND (due_at, id) > ($3, $4) ORDER BY due_at, id LIMIT $5`,
    ),
    // A handler's cancels ($1 ids, $2 the status each was read in), inside its hop's transaction: a token that
    // moved on meanwhile is not in the answer, and the commit fails as a version conflict.
    revokeStaged: statement(
      'revoke_staged',
      `UPDATE ${s}.tokens AS t SET status = 'revoked', retain_until = $3, payload = NULL, headers = NULL,
        lease_until = NULL
      FROM unnest($1::text[], $2::text[]) AS r(id, expected)
      WHERE t.id = r.id AND t.status = r.expected RETURNING t.id`,
    ),
    // One token by id, whatever its age or lease; a hop consuming it holds its row, and the update then finds it
    // consumed.
    claimToken: statement(
      'claim_token',
      `UPDATE ${s}.tokens SET lease_until = $2, attempts = attempts + 1
      WHERE id = $1 AND status = 'pending' AND ($3::text IS NULL OR medium = $3) RETURNING ${TOKEN_COLUMNS}`,
    ),
    releaseLease: statement('release_lease', `UPDATE ${s}.tokens SET lease_until = NULL WHERE id = $1`),
    byStatus: statement('by_status', page('status')),
    byConversation: statement('by_conversation', page('conversation_id')),
    inFlight: statement(
      'in_flight',
      `SELECT count(*), min(minted_at) FILTER (WHERE status <> 'scheduled') FROM ${s}.tokens WHERE status IN ${IN_FLIGHT}`,
    ),
    statusCounts: statement('status_counts', `SELECT status, count(*) FROM ${s}.tokens GROUP BY status`),
    purge: statement(
      'purge',
      `DELETE FROM ${s}.tokens WHERE id IN (SELECT id FROM ${s}.tokens WHERE status IN ${ENDED}
        AND minted_at <= $1 AND retain_until IS NOT NULL AND retain_until <= $2 LIMIT $3 FOR UPDATE SKIP LOCKED)`,
    ),
  };
}
