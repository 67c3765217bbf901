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
  {
    version: 2,
    name: 'counters_meta_blocks_extra_attempt_diffs',
    sql: `
      ALTER TABLE {{schema}}.jobs ADD COLUMN extra jsonb, ADD COLUMN unreadable text;
      COMMENT ON COLUMN {{schema}}.jobs.extra IS 'record fields without a column of their own, carried through untouched';
      COMMENT ON COLUMN {{schema}}.jobs.unreadable IS 'set when a read found the row damaged: quarantined, left out of job_counters';
      CREATE INDEX jobs_unreadable_idx ON {{schema}}.jobs (id) WHERE unreadable IS NOT NULL;
      CREATE TABLE {{schema}}.meta (key text COLLATE "C" PRIMARY KEY, value jsonb NOT NULL);
      CREATE TABLE {{schema}}.server_blocks (
        workflow_hash text NOT NULL,
        server        text NOT NULL,
        code          text NOT NULL,
        reason        text NOT NULL,
        until         bigint NOT NULL,
        PRIMARY KEY (workflow_hash, server)
      );
      -- Counters are split over 8 slots (one per connection, by backend pid) so concurrent writers
      -- rarely wait on the same counter row; readers sum the slots.
      CREATE TABLE {{schema}}.job_counters (k text NOT NULL, slot integer NOT NULL, n bigint NOT NULL, PRIMARY KEY (k, slot));

      CREATE FUNCTION {{schema}}.cg_arr(jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS
        $$ SELECT CASE WHEN jsonb_typeof($1) = 'array' THEN $1 ELSE '[]'::jsonb END $$;

      -- What one row adds to the counters; the same rules as src/store/counters.ts.
      CREATE FUNCTION {{schema}}.cg_contrib(text, text, integer, jsonb, jsonb) RETURNS TABLE (k text, n bigint) LANGUAGE sql IMMUTABLE AS $$
        SELECT 's:' || $1, 1::bigint
        UNION ALL SELECT 'e:' || $2, 1 WHERE $1 IN ('failed','timed_out') AND $2 IS NOT NULL
        UNION ALL SELECT 't:retries', $3 WHERE $3 <> 0
        UNION ALL SELECT 'rt:terminal', 1 WHERE $3 > 0 AND $1 IN ('completed','failed','timed_out','cancelled')
        UNION ALL SELECT 'rt:completed', 1 WHERE $3 > 0 AND $1 = 'completed'
        UNION ALL SELECT 't:attempts', jsonb_array_length({{schema}}.cg_arr($4))
        UNION ALL SELECT 'a:' || (e->>'code'), 1 FROM jsonb_array_elements({{schema}}.cg_arr($4)) AS e
          WHERE jsonb_typeof(e->'code') = 'string' AND e->>'code' <> ''
        UNION ALL SELECT 'r:' || CASE WHEN e->'success' = 'true'::jsonb THEN 's' WHEN e->'success' = 'false'::jsonb THEN 'f' ELSE 'p' END || ':' || (e->>'strategy'), 1
          FROM jsonb_array_elements({{schema}}.cg_arr($5)) AS e WHERE jsonb_typeof(e->'strategy') = 'string'
      $$;

      CREATE FUNCTION {{schema}}.cg_count() RETURNS trigger LANGUAGE plpgsql AS $f$
      BEGIN
        -- Keys in a fixed order, so two transactions never lock counter rows in opposite orders.
        IF TG_OP = 'INSERT' THEN
          IF NEW.unreadable IS NULL THEN
            INSERT INTO {{schema}}.job_counters AS t (k, slot, n)
              SELECT c.k, pg_backend_pid() % 8, sum(c.n) FROM {{schema}}.cg_contrib(NEW.status, NEW.error_code, NEW.retry_count, NEW.attempts, NEW.recovery_history) AS c
              GROUP BY c.k HAVING sum(c.n) <> 0 ORDER BY c.k
              ON CONFLICT (k, slot) DO UPDATE SET n = t.n + excluded.n;
          END IF;
        ELSIF TG_OP = 'DELETE' THEN
          IF OLD.unreadable IS NULL THEN
            INSERT INTO {{schema}}.job_counters AS t (k, slot, n)
              SELECT c.k, pg_backend_pid() % 8, -sum(c.n) FROM {{schema}}.cg_contrib(OLD.status, OLD.error_code, OLD.retry_count, OLD.attempts, OLD.recovery_history) AS c
              GROUP BY c.k HAVING sum(c.n) <> 0 ORDER BY c.k
              ON CONFLICT (k, slot) DO UPDATE SET n = t.n + excluded.n;
          END IF;
        ELSE
          INSERT INTO {{schema}}.job_counters AS t (k, slot, n)
            SELECT d.k, pg_backend_pid() % 8, sum(d.n) FROM (
              SELECT c.k, -c.n AS n FROM {{schema}}.cg_contrib(OLD.status, OLD.error_code, OLD.retry_count, OLD.attempts, OLD.recovery_history) AS c WHERE OLD.unreadable IS NULL
              UNION ALL
              SELECT c.k, c.n FROM {{schema}}.cg_contrib(NEW.status, NEW.error_code, NEW.retry_count, NEW.attempts, NEW.recovery_history) AS c WHERE NEW.unreadable IS NULL
            ) AS d
            GROUP BY d.k HAVING sum(d.n) <> 0 ORDER BY d.k
            ON CONFLICT (k, slot) DO UPDATE SET n = t.n + excluded.n;
        END IF;
        RETURN NULL;
      END
      $f$;
      CREATE TRIGGER jobs_count AFTER INSERT OR DELETE OR UPDATE OF status, error_code, retry_count, attempts, recovery_history, unreadable
        ON {{schema}}.jobs FOR EACH ROW EXECUTE FUNCTION {{schema}}.cg_count();
      INSERT INTO {{schema}}.job_counters (k, slot, n)
        SELECT c.k, 0, sum(c.n) FROM {{schema}}.jobs AS j
        CROSS JOIN LATERAL {{schema}}.cg_contrib(j.status, j.error_code, j.retry_count, j.attempts, j.recovery_history) AS c
        WHERE j.unreadable IS NULL GROUP BY c.k HAVING sum(c.n) <> 0;

      -- Attempts in storage form: the nodes that differ from the job's workflow (src/store/workflow-diff.ts).
      CREATE FUNCTION {{schema}}.cg_encode_attempt(a jsonb, base jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN jsonb_typeof(a) = 'object' AND jsonb_typeof(a->'workflow') = 'object' AND jsonb_typeof(base) = 'object' AND NOT a ? 'wd'
          THEN (a - 'workflow') || jsonb_build_object('wd', jsonb_build_object(
            'set', coalesce((SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(a->'workflow') AS e WHERE e.value IS DISTINCT FROM base->e.key), '{}'::jsonb),
            'drop', coalesce((SELECT jsonb_agg(k) FROM jsonb_object_keys(base) AS k WHERE NOT (a->'workflow') ? k), '[]'::jsonb)))
          ELSE a END
      $$;
      CREATE FUNCTION {{schema}}.cg_decode_attempt(a jsonb, base jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN jsonb_typeof(a) = 'object' AND jsonb_typeof(a->'wd') = 'object' AND NOT a ? 'workflow' AND jsonb_typeof(base) = 'object'
          THEN (a - 'wd') || jsonb_build_object('workflow',
            (base - ARRAY(SELECT jsonb_array_elements_text({{schema}}.cg_arr(a->'wd'->'drop'))))
            || CASE WHEN jsonb_typeof(a->'wd'->'set') = 'object' THEN a->'wd'->'set' ELSE '{}'::jsonb END)
          ELSE a END
      $$;
      CREATE FUNCTION {{schema}}.cg_attempts(arr jsonb, old_base jsonb, new_base jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN jsonb_typeof(arr) = 'array'
          THEN coalesce((SELECT jsonb_agg({{schema}}.cg_encode_attempt({{schema}}.cg_decode_attempt(t.e, old_base), new_base) ORDER BY t.i)
                         FROM jsonb_array_elements(arr) WITH ORDINALITY AS t(e, i)), '[]'::jsonb)
          ELSE arr END
      $$;
    `,
  },
];
