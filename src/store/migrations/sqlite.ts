/**
 * Versioned schema of the SQLite store. Migrations are append-only: never edit one that shipped,
 * add the next version. They live in a TS module because the build copies only .ts output to dist.
 */
export interface SqlMigration {
  version: number;
  name: string;
  sql: string;
}

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
];
