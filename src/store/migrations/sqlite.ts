/**
 * Versioned schema of the SQLite store. Migrations are append-only: never edit one that shipped,
 * add the next version. They live in a TS module because the build copies only .ts output to dist.
 */
export interface SqlMigration {
  version: number;
  name: string;
  sql: string;
}

const TERMINAL = `('completed','failed','timed_out','cancelled')`;
/**
 * The condition of the partial index `jobs_unfinished`. A query uses that index only when its WHERE
 * repeats this text term for term (SQLite cannot prove `status = ?` implies an IN list). The unary
 * `+` keeps the IN list from being used as the index's equality constraint: once ANALYZE has run,
 * SQLite would otherwise loop over the three statuses and sort every remaining row on each page.
 */
export const UNFINISHED_INDEX_WHERE = `+status IN ('queued','running','recovering') AND unreadable IS NULL`;
const arr = (col: string) => `(CASE WHEN json_valid(${col}) AND json_type(${col}) = 'array' THEN ${col} ELSE '[]' END)`;

export const SQLITE_MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: 'create_jobs',
    sql: `
      CREATE TABLE jobs (
        id                  TEXT    NOT NULL PRIMARY KEY,
        status              TEXT    NOT NULL CHECK (status IN ('queued','running','recovering','completed','failed','timed_out','cancelled')),
        workflow            TEXT    NOT NULL,
        original_parameters TEXT    NOT NULL,
        options             TEXT    NOT NULL,
        priority            REAL    NOT NULL DEFAULT 0,
        idempotency_key     TEXT    UNIQUE,
        progress            REAL    NOT NULL DEFAULT 0,
        server              TEXT,
        prompt_id           TEXT,
        attempts            TEXT    NOT NULL DEFAULT '[]',
        recovery_history    TEXT    NOT NULL DEFAULT '[]',
        retry_count         INTEGER NOT NULL DEFAULT 0,
        outputs             TEXT    NOT NULL DEFAULT '[]',
        error               TEXT,
        error_code          TEXT,
        error_message       TEXT,
        last_checkpoint     TEXT,
        degraded            TEXT,
        created_at          INTEGER NOT NULL,
        updated_at          INTEGER NOT NULL,
        started_at          INTEGER,
        ended_at            INTEGER
      ) STRICT;
      CREATE INDEX jobs_status_created ON jobs (status, created_at, id);
      CREATE INDEX jobs_created ON jobs (created_at, id);
      CREATE INDEX jobs_error_code ON jobs (error_code) WHERE error_code IS NOT NULL;
      CREATE INDEX jobs_ended ON jobs (ended_at) WHERE ended_at IS NOT NULL;
    `,
  },
  {
    version: 2,
    name: 'counters_meta_blocks_extra',
    sql: `
      ALTER TABLE jobs ADD COLUMN extra TEXT;
      ALTER TABLE jobs ADD COLUMN unreadable TEXT;
      CREATE INDEX jobs_unreadable ON jobs (id) WHERE unreadable IS NOT NULL;
      CREATE TABLE job_counters (k TEXT NOT NULL PRIMARY KEY, n INTEGER NOT NULL) STRICT, WITHOUT ROWID;
      CREATE TABLE meta (key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL) STRICT, WITHOUT ROWID;
      CREATE TABLE server_blocks (
        workflow_hash TEXT NOT NULL,
        server        TEXT NOT NULL,
        code          TEXT NOT NULL,
        reason        TEXT NOT NULL,
        until         INTEGER NOT NULL,
        PRIMARY KEY (workflow_hash, server)
      ) STRICT, WITHOUT ROWID;
      ${countTriggers()}
      INSERT INTO job_counters (k, n)
        SELECT c.k, sum(c.n) FROM (${contributionOfTable()}) AS c WHERE true GROUP BY c.k HAVING sum(c.n) <> 0;
    `,
  },
  {
    version: 3,
    name: 'unfinished_covering_index',
    // Restart recovery reads (id, status, priority, created, server, prompt) of every unfinished
    // job: from this index alone, never from the table rows, whose workflow may spill into overflow
    // pages ahead of the columns wanted. Partial, so only unfinished readable jobs cost index space;
    // `unreadable` (always NULL here) is a column too, else SQLite does not see the index as covering.
    sql: `CREATE INDEX jobs_unfinished ON jobs (status, created_at, id, priority, server, prompt_id, unreadable) WHERE ${UNFINISHED_INDEX_WHERE};`,
  },
];


/**
 * The counters one row adds (see src/store/counters.ts for the same rules in JS), as a SELECT of
 * (k, n) rows. `r` is NEW or OLD inside a trigger. Damaged JSON counts as empty, never an error:
 * a trigger that threw would make the damaged row impossible to update or delete.
 */
function contributionOf(r: string): string {
  return [
    `SELECT 's:' || ${r}.status AS k, 1 AS n`,
    `SELECT 'e:' || ${r}.error_code, 1 WHERE ${r}.status IN ('failed','timed_out') AND ${r}.error_code IS NOT NULL`,
    `SELECT 't:retries', ${r}.retry_count WHERE ${r}.retry_count <> 0`,
    `SELECT 'rt:terminal', 1 WHERE ${r}.retry_count > 0 AND ${r}.status IN ${TERMINAL}`,
    `SELECT 'rt:completed', 1 WHERE ${r}.retry_count > 0 AND ${r}.status = 'completed'`,
    `SELECT 't:attempts', json_array_length(${arr(`${r}.attempts`)})`,
    `SELECT 'a:' || json_extract(value, '$.code'), 1 FROM json_each(${arr(`${r}.attempts`)}) WHERE json_type(value, '$.code') = 'text' AND json_extract(value, '$.code') <> ''`,
    `SELECT 'r:' || CASE json_type(value, '$.success') WHEN 'true' THEN 's' WHEN 'false' THEN 'f' ELSE 'p' END || ':' || json_extract(value, '$.strategy'), 1
       FROM json_each(${arr(`${r}.recovery_history`)}) WHERE json_type(value, '$.strategy') = 'text'`,
  ].join('\n UNION ALL ');
}

/** The same for every row of the table (the one-time backfill when the counters are created). */
function contributionOfTable(): string {
  return [
    `SELECT 's:' || status AS k, 1 AS n FROM jobs WHERE unreadable IS NULL`,
    `SELECT 'e:' || error_code, 1 FROM jobs WHERE unreadable IS NULL AND status IN ('failed','timed_out') AND error_code IS NOT NULL`,
    `SELECT 't:retries', retry_count FROM jobs WHERE unreadable IS NULL`,
    `SELECT 'rt:terminal', 1 FROM jobs WHERE unreadable IS NULL AND retry_count > 0 AND status IN ${TERMINAL}`,
    `SELECT 'rt:completed', 1 FROM jobs WHERE unreadable IS NULL AND retry_count > 0 AND status = 'completed'`,
    `SELECT 't:attempts', json_array_length(${arr('attempts')}) FROM jobs WHERE unreadable IS NULL`,
    `SELECT 'a:' || json_extract(e.value, '$.code'), 1 FROM jobs, json_each(${arr('jobs.attempts')}) AS e
       WHERE jobs.unreadable IS NULL AND json_type(e.value, '$.code') = 'text' AND json_extract(e.value, '$.code') <> ''`,
    `SELECT 'r:' || CASE json_type(e.value, '$.success') WHEN 'true' THEN 's' WHEN 'false' THEN 'f' ELSE 'p' END || ':' || json_extract(e.value, '$.strategy'), 1
       FROM jobs, json_each(${arr('jobs.recovery_history')}) AS e WHERE jobs.unreadable IS NULL AND json_type(e.value, '$.strategy') = 'text'`,
  ].join('\n UNION ALL ');
}

/** Triggers that keep job_counters in step with every insert, update and delete of a readable row. */
function countTriggers(): string {
  const upsert = (body: string) =>
    `INSERT INTO job_counters (k, n) SELECT d.k, sum(d.n) FROM (${body}) AS d WHERE true GROUP BY d.k HAVING sum(d.n) <> 0
       ON CONFLICT (k) DO UPDATE SET n = n + excluded.n;`;
  const plus = (r: string) => `SELECT c.k AS k, c.n AS n FROM (${contributionOf(r)}) AS c WHERE ${r}.unreadable IS NULL`;
  const minus = (r: string) => `SELECT c.k AS k, -c.n AS n FROM (${contributionOf(r)}) AS c WHERE ${r}.unreadable IS NULL`;
  return `
      CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN ${upsert(plus('NEW'))} END;
      CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN ${upsert(minus('OLD'))} END;
      CREATE TRIGGER jobs_count_update AFTER UPDATE OF status, error_code, retry_count, attempts, recovery_history, unreadable ON jobs
        BEGIN ${upsert(`${minus('OLD')} UNION ALL ${plus('NEW')}`)} END;`;
}
