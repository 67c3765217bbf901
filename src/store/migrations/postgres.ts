/**
 * Versioned schema of the PostgreSQL store, applied at start in one transaction under an advisory
 * lock. Append-only: never edit a shipped migration, add the next version. `{{schema}}` is replaced
 * by the validated schema name. Kept as TS strings because the build copies only .ts output.
 */
import type { SqlMigration } from './sqlite.js';

export const POSTGRES_MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    name: 'create_jobs',
    sql: `
      CREATE TABLE {{schema}}.jobs (
        id                  text COLLATE "C" PRIMARY KEY,
        status              text NOT NULL CHECK (status IN ('queued','running','recovering','completed','failed','timed_out','cancelled')),
        workflow            jsonb NOT NULL,
        original_parameters jsonb NOT NULL,
        options             jsonb NOT NULL,
        priority            double precision NOT NULL DEFAULT 0,
        idempotency_key     text UNIQUE,
        progress            double precision NOT NULL DEFAULT 0,
        server              text,
        prompt_id           text,
        attempts            jsonb NOT NULL DEFAULT '[]',
        recovery_history    jsonb NOT NULL DEFAULT '[]',
        retry_count         integer NOT NULL DEFAULT 0,
        outputs             jsonb NOT NULL DEFAULT '[]',
        error               jsonb,
        error_code          text,
        error_message       text,
        last_checkpoint     jsonb,
        degraded            jsonb,
        created_at          bigint NOT NULL,
        updated_at          bigint NOT NULL,
        started_at          bigint,
        ended_at            bigint,
        write_token         text
      );
      COMMENT ON COLUMN {{schema}}.jobs.created_at IS 'ms since the epoch (as are updated_at, started_at, ended_at)';
      COMMENT ON COLUMN {{schema}}.jobs.write_token IS 'random token of the last write: makes a retried write after a lost connection idempotent';
      CREATE INDEX jobs_created_idx ON {{schema}}.jobs (created_at DESC, id DESC);
      CREATE INDEX jobs_status_created_idx ON {{schema}}.jobs (status, created_at DESC, id DESC);
      CREATE INDEX jobs_error_code_idx ON {{schema}}.jobs (error_code);
      CREATE INDEX jobs_ended_idx ON {{schema}}.jobs (ended_at) WHERE ended_at IS NOT NULL;
    `,
  },
];
