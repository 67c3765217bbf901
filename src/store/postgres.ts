/**
 * PostgreSQL store (pg Pool) for several comfyguard processes sharing one database. Every write is
 * a single statement, so it is atomic and durable at COMMIT; every write carries a fresh
 * `write_token`, which makes a retry after a lost connection safe: if the first try did commit,
 * the retry finds its own token and reports success instead of applying the change twice.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { isTerminal, TERMINAL_STATUSES, type AttemptRecord, type Checkpoint, type JobRecord, type JobStatus, type RecoveryStep } from '../jobs/types.js';
import { sleep, systemClock, type Clock } from '../util/clock.js';
import { checkJob } from './codec.js';
import type { CorruptJob, JobPage, JobQuery, JobStore, ServerBlock, StatusCounts, StoreStats, UnfinishedJob, UnfinishedPage } from './contract.js';
import { countsFromCounters, statsFromCounters } from './counters.js';
import { describeCause, redactUrl, StoreError } from './errors.js';
import { POSTGRES_MIGRATIONS } from './migrations/postgres.js';
import { decodeUnfinishedCursor, encodeUnfinishedCursor, normalizeQuery, toPage, UNFINISHED_ORDER, unfinishedLimit } from './query.js';
import { assertAttempt, assertBlock, assertExtraNames, assertProgress, assertRecoveryStep, cleanPatch, metaText, stampEnd, statusList } from './record-ops.js';
import { decodeRow, extraFields, JOB_COLUMNS, patchColumns, rowValues, splitDecoded, type DecodedRow } from './sql-columns.js';

export interface PostgresStoreOptions {
  /** `postgres://user:pass@host:port/db`. */
  connectionString: string;
  /** PostgreSQL schema holding `jobs` and `schema_migrations`. @default 'comfyguard' */
  schema?: string;
  /** @default systemClock */
  clock?: Clock;
  /** @default 10 */
  poolSize?: number;
  /** Shown in pg_stat_activity, so operators (and tests) can find our connections. @default 'comfyguard' */
  applicationName?: string;
  /** Bound on getting a connection. @default 10_000 */
  connectTimeoutMs?: number;
  /** Bound on one query, so a black-holed connection cannot hang a call. @default 30_000 */
  queryTimeoutMs?: number;
  /** Extra tries after a connection-level failure. @default 3 */
  retries?: number;
  /** First retry delay, doubled each time. @default 100 */
  retryDelayMs?: number;
  /** Errors that happen outside any call (an idle connection was killed). @default ignored */
  onError?: (err: StoreError) => void;
}

type Row = Record<string, unknown>;
type Resolved = Required<Omit<PostgresStoreOptions, 'onError'>> & Pick<PostgresStoreOptions, 'onError'>;

const NON_TERMINAL = ['queued', 'running', 'recovering'];
const TERMINAL = [...TERMINAL_STATUSES];
const INSERT_COLUMNS = [...JOB_COLUMNS.map((c) => c.column), 'error_code', 'error_message', 'extra'];
const JSON_COLUMNS = new Set([...JOB_COLUMNS.filter((c) => c.json).map((c) => c.column), 'extra']);

/** SQLSTATE classes and Node codes that mean "the connection, not the statement, failed". */
const CONNECTION_CODES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const CONNECTION_MESSAGES = [/connection terminated/i, /timeout exceeded when trying to connect/i, /not queryable/i, /query read timeout/i, /connection timeout/i, /terminating connection/i];

/** True when `e` is a lost or refused connection (worth retrying on a fresh connection). */
export function isPgConnectionError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
  if (e instanceof AggregateError && e.errors.some(isPgConnectionError)) return true;
  return CONNECTION_MESSAGES.some((re) => re.test(e.message));
}

/** `host:port/db` of a connection string, without credentials. */
function describeTarget(connectionString: string): string {
  try {
    const u = new URL(connectionString);
    return `${u.hostname || 'localhost'}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return redactUrl(connectionString);
  }
}

/** PostgreSQL-backed JobStore. */
export class PostgresStore implements JobStore {
  readonly #o: Resolved;
  readonly #s: string;
  readonly #target: string;
  #pool: pg.Pool | null = null;
  #state: 'new' | 'open' | 'closed' = 'new';
  #closing: Promise<void> | null = null;
  #initializing: Promise<void> | null = null;

  constructor(opts: PostgresStoreOptions) {
    this.#o = {
      schema: 'comfyguard',
      clock: systemClock,
      poolSize: 10,
      applicationName: 'comfyguard',
      connectTimeoutMs: 10_000,
      queryTimeoutMs: 30_000,
      retries: 3,
      retryDelayMs: 100,
      ...opts,
    };
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(this.#o.schema)) {
      throw new StoreError('STORE_BAD_URL', `PostgreSQL schema name ${JSON.stringify(this.#o.schema)} must be lower-case letters, digits and _`, { backend: 'postgres' });
    }
    this.#s = `"${this.#o.schema}"`;
    this.#target = describeTarget(opts.connectionString);
  }

  /** The application_name of this store's connections (visible in pg_stat_activity). */
  get applicationName(): string {
    return this.#o.applicationName;
  }

  /** Opens the pool and applies pending migrations (serialised across processes by an advisory lock). */
  init(): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(this.#closedError('init'));
    // Memoised: concurrent callers share one connect; a failed init can be retried.
    this.#initializing ??= this.#open().catch((e: unknown) => {
      this.#initializing = null;
      throw e;
    });
    return this.#initializing;
  }

  async #open(): Promise<void> {
    const pool = new pg.Pool({
      connectionString: this.#o.connectionString,
      max: this.#o.poolSize,
      application_name: this.#o.applicationName,
      connectionTimeoutMillis: this.#o.connectTimeoutMs,
      query_timeout: this.#o.queryTimeoutMs,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
    });
    // Without a listener, an idle client killed by the server (restart, pg_terminate_backend)
    // emits 'error' on the pool and crashes the process. The pool already discards that client.
    pool.on('error', (err) => {
      this.#o.onError?.(new StoreError('STORE_UNAVAILABLE', `an idle PostgreSQL connection to ${this.#target} was lost: ${describeCause(err)}`, { backend: 'postgres', cause: err }));
    });
    this.#pool = pool;
    try {
      await this.#withRetry('init', undefined, () => this.#migrate(pool));
    } catch (e) {
      this.#pool = null;
      await pool.end().catch(() => undefined);
      throw e;
    }
    this.#state = 'open';
  }

  async #migrate(pool: pg.Pool): Promise<void> {
    const client = await pool.connect();
    let failed: unknown;
    try {
      await client.query('BEGIN');
      // Two processes starting together: the second waits here, then sees the versions applied.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`comfyguard.migrations.${this.#o.schema}`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.#s}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${this.#s}.schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const applied = new Set((await client.query<{ version: number }>(`SELECT version FROM ${this.#s}.schema_migrations`)).rows.map((r) => r.version));
      for (const m of POSTGRES_MIGRATIONS) {
        if (applied.has(m.version)) continue;
        try {
          await client.query(m.sql.replaceAll('{{schema}}', this.#s));
        } catch (e) {
          if (isPgConnectionError(e)) throw e;
          throw new StoreError('STORE_MIGRATION_FAILED', `init: PostgreSQL migration ${m.version} (${m.name}) failed on ${this.#target}: ${describeCause(e)}`, { backend: 'postgres', operation: 'init', cause: e });
        }
        await client.query(`INSERT INTO ${this.#s}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      }
      await client.query('COMMIT');
    } catch (e) {
      failed = e;
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release(failed instanceof Error && isPgConnectionError(failed) ? failed : undefined);
    }
  }

  /** Inserts a job; a repeated idempotency key returns the job that holds it. */
  async createJob(input: JobRecord): Promise<{ created: boolean; job: JobRecord }> {
    const checked = checkJob(input);
    const job = checked.ok ? stampEnd(input, this.#o.clock.now()) : input;
    if (!checked.ok) throw new StoreError('STORE_INVALID_JOB', `createJob: invalid job ${String(job?.id)}: ${checked.error}`, { backend: 'postgres', operation: 'createJob', jobId: job?.id });
    assertExtraNames('postgres', 'createJob', job.id, job);
    const token = randomUUID();
    const values = rowValues(job);
    const cols = [...INSERT_COLUMNS, 'write_token'];
    const params = [...INSERT_COLUMNS.map((c) => values[c]), token];
    const placeholders = cols.map((c, i) => `$${i + 1}${JSON_COLUMNS.has(c) ? '::jsonb' : ''}`);
    const insert = `INSERT INTO ${this.#s}.jobs (${cols.join(', ')}) VALUES (${placeholders.join(', ')}) ON CONFLICT DO NOTHING RETURNING *`;
    return this.#withRetry('createJob', job.id, async () => {
      // A conflicting idempotency key can vanish between the INSERT and the SELECT (cleanup); try again then.
      for (let round = 0; round < 3; round++) {
        const inserted = (await this.#q(insert, params)).rows[0];
        if (inserted) return { created: true, job: this.#decodeOrThrow(inserted, 'createJob') };
        if (job.idempotencyKey) {
          const holder = (await this.#q(`SELECT * FROM ${this.#s}.jobs WHERE idempotency_key = $1`, [job.idempotencyKey])).rows[0];
          if (holder) return { created: holder.write_token === token, job: this.#decodeOrThrow(holder, 'createJob') };
        }
        const same = (await this.#q(`SELECT write_token FROM ${this.#s}.jobs WHERE id = $1`, [job.id])).rows[0];
        if (same?.write_token === token) return { created: true, job: (await this.#getOrNull(job.id, 'createJob')) ?? job };
        if (same) throw new StoreError('STORE_DUPLICATE_JOB', `createJob: a job with id ${job.id} already exists`, { backend: 'postgres', operation: 'createJob', jobId: job.id });
      }
      throw new StoreError('STORE_ERROR', `createJob: job ${job.id} kept conflicting with a job being deleted`, { backend: 'postgres', operation: 'createJob', jobId: job.id });
    });
  }

  /** The job, or null; a damaged row throws STORE_CORRUPT_ROW. */
  async getJob(id: string): Promise<JobRecord | null> {
    return this.#withRetry('getJob', id, () => this.#getOrNull(id, 'getJob'));
  }

  /** Compare-and-set on status in one UPDATE ... RETURNING. */
  async transition(id: string, from: JobStatus | readonly JobStatus[], to: JobStatus, patch?: Partial<JobRecord>): Promise<JobRecord | null> {
    const clean = cleanPatch('postgres', 'transition', id, patch);
    const token = randomUUID();
    const { sets, params } = this.#setClause(clean, this.#o.clock.now(), isTerminal(to) ? 'always' : 'never', token);
    params.push(to, id, statusList(from));
    const n = params.length;
    const sql = `UPDATE ${this.#s}.jobs SET ${sets.join(', ')}, status = $${n - 2} WHERE id = $${n - 1} AND status = ANY($${n}::text[]) AND write_token IS DISTINCT FROM $1 RETURNING *`;
    return this.#withRetry('transition', id, async () => {
      const row = (await this.#q(sql, params)).rows[0];
      if (row) return this.#decodeOrThrow(row, 'transition');
      // Lost the race, unknown job, or our own earlier try committed before its connection died.
      const current = (await this.#q(`SELECT * FROM ${this.#s}.jobs WHERE id = $1`, [id])).rows[0];
      return current?.write_token === token ? this.#decodeOrThrow(current, 'transition') : null;
    });
  }

  /** Upserts an attempt by number (in SQL, so concurrent writers never lose one). */
  async recordAttempt(id: string, attempt: AttemptRecord): Promise<void> {
    assertAttempt('postgres', id, attempt);
    const sql = `
      UPDATE ${this.#s}.jobs SET
        attempts = CASE
          WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(attempts) AS e WHERE e->'number' = $2::jsonb->'number')
          THEN (SELECT jsonb_agg(CASE WHEN t.e->'number' = $2::jsonb->'number' THEN ${this.#s}.cg_encode_attempt($2::jsonb, workflow) ELSE t.e END ORDER BY t.i)
                FROM jsonb_array_elements(attempts) WITH ORDINALITY AS t(e, i))
          ELSE attempts || jsonb_build_array(${this.#s}.cg_encode_attempt($2::jsonb, workflow))
        END,
        server = $3, prompt_id = $4, updated_at = $5, write_token = $6
      WHERE id = $1 AND jsonb_typeof(attempts) = 'array'`;
    await this.#arrayWrite('recordAttempt', id, sql, [id, JSON.stringify(attempt), attempt.server, attempt.promptId, this.#o.clock.now(), randomUUID()], 'attempts');
  }

  /** Appends a recovery step, or replaces the last one. */
  async appendRecoveryStep(id: string, step: RecoveryStep, opts?: { replaceLast?: boolean }): Promise<void> {
    assertRecoveryStep('postgres', id, step);
    const value = opts?.replaceLast
      ? `CASE WHEN jsonb_array_length(recovery_history) = 0 THEN jsonb_build_array($2::jsonb) ELSE jsonb_set(recovery_history, '{-1}', $2::jsonb) END`
      : `recovery_history || jsonb_build_array($2::jsonb)`;
    // The token guard stops a retried append from adding the step twice.
    const sql = `UPDATE ${this.#s}.jobs SET recovery_history = ${value}, updated_at = $3, write_token = $4
      WHERE id = $1 AND jsonb_typeof(recovery_history) = 'array' AND write_token IS DISTINCT FROM $4`;
    await this.#arrayWrite('appendRecoveryStep', id, sql, [id, JSON.stringify(step), this.#o.clock.now(), randomUUID()], 'recovery_history');
  }

  /** Sets progress and, when given, the checkpoint. */
  async updateProgress(id: string, progress: number, checkpoint?: Checkpoint): Promise<void> {
    assertProgress('postgres', id, progress, checkpoint);
    await this.#update('updateProgress', id, checkpoint === undefined ? { progress } : { progress, checkpoint });
  }

  /** Patches fields other than id and status. */
  async patchJob(id: string, patch: Partial<Omit<JobRecord, 'id' | 'status'>>): Promise<void> {
    await this.#update('patchJob', id, cleanPatch('postgres', 'patchJob', id, patch));
  }

  /** Non-terminal jobs, oldest first; damaged rows are reported and skipped. */
  async listNonTerminal(): Promise<{ jobs: JobRecord[]; corrupt: CorruptJob[] }> {
    return this.#withRetry('listNonTerminal', undefined, async () => {
      const { rows } = await this.#q(`SELECT * FROM ${this.#s}.jobs WHERE status = ANY($1::text[]) ORDER BY created_at, id`, [NON_TERMINAL]);
      return splitDecoded(await this.#decodeAll(rows));
    });
  }

  /** One page of unfinished jobs: an index range scan per status, so each page costs the same. */
  async listUnfinished(opts: { cursor?: string | null; limit?: number } = {}): Promise<UnfinishedPage> {
    const limit = unfinishedLimit(opts.limit);
    const start = decodeUnfinishedCursor(opts.cursor, 'postgres');
    return this.#withRetry('listUnfinished', undefined, async () => {
      let pos = start ?? { status: 0, createdAt: Number.MIN_SAFE_INTEGER, id: '' };
      const jobs: UnfinishedJob[] = [];
      let last: { status: number; createdAt: number; id: string } | null = null;
      while (jobs.length < limit && pos.status < UNFINISHED_ORDER.length) {
        // Summary columns only: the JSON columns (TOASTed when large) are never fetched or decoded.
        const got = (
          await this.#q(
            `SELECT id, status, priority, created_at, server, prompt_id FROM ${this.#s}.jobs
             WHERE status = $1 AND unreadable IS NULL AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4`,
            [UNFINISHED_ORDER[pos.status], pos.createdAt, pos.id, limit - jobs.length],
          )
        ).rows;
        for (const r of got) {
          jobs.push({ id: String(r.id), status: r.status as JobStatus, priority: Number(r.priority), createdAt: Number(r.created_at), server: (r.server as string | null) ?? null, promptId: (r.prompt_id as string | null) ?? null });
        }
        const tail = got[got.length - 1];
        if (tail) last = { status: pos.status, createdAt: Number(tail.created_at), id: String(tail.id) };
        if (jobs.length < limit) pos = { status: pos.status + 1, createdAt: Number.MIN_SAFE_INTEGER, id: '' };
      }
      return { jobs, corrupt: [], nextCursor: jobs.length === limit && last ? encodeUnfinishedCursor(last) : null };
    });
  }

  /** Quarantined rows, found unreadable by an earlier read. */
  async listCorrupt(): Promise<CorruptJob[]> {
    return this.#withRetry('listCorrupt', undefined, async () => {
      const { rows } = await this.#q(`SELECT id, unreadable FROM ${this.#s}.jobs WHERE unreadable IS NOT NULL ORDER BY id`, []);
      return rows.map((r) => ({ id: String(r.id), error: String(r.unreadable) }));
    });
  }

  /** Deletes one job by id, readable or not. */
  async deleteJob(id: string): Promise<boolean> {
    return this.#withRetry('deleteJob', id, async () => ((await this.#q(`DELETE FROM ${this.#s}.jobs WHERE id = $1`, [id])).rowCount ?? 0) > 0);
  }

  /** Newest first with keyset pagination on (created_at, id). */
  async query(q: JobQuery): Promise<JobPage> {
    const nq = normalizeQuery(q, 'postgres');
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (nq.statuses) where.push(`status = ANY(${p(nq.statuses)}::text[])`);
    if (nq.since !== null) where.push(`created_at >= ${p(nq.since)}`);
    if (nq.until !== null) where.push(`created_at < ${p(nq.until)}`);
    if (nq.after) where.push(`(created_at, id) < (${p(nq.after.createdAt)}, ${p(nq.after.id)})`);
    const sql = `SELECT * FROM ${this.#s}.jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ${p(nq.limit + 1)}`;
    return this.#withRetry('query', undefined, async () => {
      const { rows } = await this.#q(sql, params);
      const page = toPage(
        rows.map((r) => ({ createdAt: Number(r.created_at), id: String(r.id), row: r })),
        nq.limit,
      );
      const { jobs, corrupt } = splitDecoded(await this.#decodeAll(page.items.map((x) => x.row)));
      return { jobs, nextCursor: page.nextCursor, ...(corrupt.length ? { corrupt } : {}) };
    });
  }

  /** The job holding this idempotency key, if any. */
  async findByIdempotencyKey(key: string): Promise<JobRecord | null> {
    return this.#withRetry('findByIdempotencyKey', undefined, async () => {
      const row = (await this.#q(`SELECT * FROM ${this.#s}.jobs WHERE idempotency_key = $1`, [key])).rows[0];
      return row ? this.#decodeOrThrow(row, 'findByIdempotencyKey') : null;
    });
  }

  /** Aggregates from the counters the trigger keeps (a few dozen rows, whatever the number of jobs). */
  async stats(): Promise<StoreStats> {
    return this.#withRetry('stats', undefined, async () => statsFromCounters(await this.#counters('')));
  }

  /** Totals by status from the counters. */
  async countByStatus(): Promise<StatusCounts> {
    return this.#withRetry('countByStatus', undefined, async () => countsFromCounters(await this.#counters(`WHERE k LIKE 's:%'`)));
  }

  /** Upserts a (server, workflow hash) block. */
  async blockServer(block: ServerBlock): Promise<void> {
    assertBlock('postgres', block);
    await this.#withRetry('blockServer', undefined, () =>
      this.#q(
        `INSERT INTO ${this.#s}.server_blocks (workflow_hash, server, code, reason, until) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (workflow_hash, server) DO UPDATE SET code = excluded.code, reason = excluded.reason, until = excluded.until`,
        [block.workflowHash, block.server, block.code, block.reason, block.until],
      ),
    );
  }

  /** Blocks in force for a workflow hash; removes the expired ones. */
  async blockedServers(workflowHash: string, now: number): Promise<Array<Omit<ServerBlock, 'workflowHash'>>> {
    return this.#withRetry('blockedServers', undefined, async () => {
      const { rows } = await this.#q(`SELECT server, code, reason, until FROM ${this.#s}.server_blocks WHERE workflow_hash = $1 ORDER BY server`, [workflowHash]);
      const all = rows.map((r) => ({ server: String(r.server), code: String(r.code), reason: String(r.reason), until: Number(r.until) }));
      const live = all.filter((r) => r.until > now);
      if (live.length < all.length) await this.#q(`DELETE FROM ${this.#s}.server_blocks WHERE workflow_hash = $1 AND until <= $2`, [workflowHash, now]);
      return live;
    });
  }

  /** A meta value, or null. */
  async getMeta(key: string): Promise<unknown> {
    return this.#withRetry('getMeta', undefined, async () => {
      const row = (await this.#q(`SELECT value FROM ${this.#s}.meta WHERE key = $1`, [key])).rows[0];
      return row ? (row.value as unknown) : null;
    });
  }

  /** Sets a meta value. */
  async setMeta(key: string, value: unknown): Promise<void> {
    const text = metaText('postgres', key, value);
    await this.#withRetry('setMeta', undefined, () =>
      this.#q(`INSERT INTO ${this.#s}.meta (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [key, text]),
    );
  }

  /** Meta entries under a prefix, by key. */
  async listMeta(prefix: string): Promise<Array<{ key: string; value: unknown }>> {
    return this.#withRetry('listMeta', undefined, async () => {
      const { rows } = await this.#q(`SELECT key, value FROM ${this.#s}.meta WHERE left(key, length($1)) = $1 ORDER BY key`, [prefix]);
      return rows.map((r) => ({ key: String(r.key), value: r.value as unknown }));
    });
  }

  /** Deletes those of `ids` still terminal and ended before `cutoff`; returns them. */
  async deleteTerminal(ids: readonly string[], cutoff: number): Promise<string[]> {
    if (ids.length === 0) return [];
    return this.#withRetry('deleteTerminal', undefined, async () => {
      const r = await this.#q(`DELETE FROM ${this.#s}.jobs WHERE id = ANY($1::text[]) AND status = ANY($2::text[]) AND ended_at < $3 RETURNING id`, [[...ids], TERMINAL, cutoff]);
      return (r.rows as Array<{ id: string }>).map((x) => x.id);
    });
  }

  /** Deletes terminal jobs that ended before `cutoff`. */
  async deleteTerminalBefore(cutoff: number): Promise<number> {
    return this.#withRetry('deleteTerminalBefore', undefined, async () => {
      const r = await this.#q(`DELETE FROM ${this.#s}.jobs WHERE status = ANY($1::text[]) AND ended_at < $2`, [TERMINAL, cutoff]);
      return r.rowCount ?? 0;
    });
  }

  /** Runs `SELECT 1` on a pooled connection. */
  async ping(): Promise<void> {
    await this.#withRetry('ping', undefined, () => this.#q('SELECT 1', []));
  }

  /** Ends the pool, waiting for calls in flight; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#state = 'closed';
      const pool = this.#pool;
      this.#pool = null;
      await pool?.end();
    })();
    return this.#closing;
  }

  #closedError(operation: string): StoreError {
    return new StoreError('STORE_CLOSED', `${operation}: the PostgreSQL store is closed`, { backend: 'postgres', operation });
  }

  async #q(sql: string, params: unknown[]): Promise<pg.QueryResult<Row>> {
    const pool = this.#pool;
    if (!pool) throw this.#closedError('query');
    return pool.query<Row>(sql, params);
  }

  /**
   * Runs `fn`, retrying connection-level failures with doubling delays on the store's clock, and
   * turns whatever is left into a StoreError. Every statement the store runs is safe to repeat.
   */
  async #withRetry<T>(operation: string, jobId: string | undefined, fn: () => Promise<T>): Promise<T> {
    if (operation !== 'init' && this.#state !== 'open') {
      throw this.#state === 'closed' ? this.#closedError(operation) : new StoreError('STORE_CLOSED', `${operation}: the PostgreSQL store was used before init()`, { backend: 'postgres', operation });
    }
    const ids = jobId === undefined ? {} : { jobId };
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (e instanceof StoreError) throw e;
        if (this.#state === 'closed') throw this.#closedError(operation);
        if (!isPgConnectionError(e)) {
          throw new StoreError('STORE_ERROR', `${operation}: PostgreSQL at ${this.#target} failed: ${describeCause(e)}`, { backend: 'postgres', operation, ...ids, cause: e });
        }
        if (attempt >= this.#o.retries) {
          throw new StoreError('STORE_UNAVAILABLE', `${operation}: PostgreSQL at ${this.#target} is unreachable after ${attempt + 1} tries: ${describeCause(e)}`, {
            backend: 'postgres',
            operation,
            ...ids,
            cause: e,
          });
        }
        await sleep(this.#o.clock, this.#o.retryDelayMs * 2 ** attempt);
      }
    }
  }

  async #getOrNull(id: string, operation: string): Promise<JobRecord | null> {
    const row = (await this.#q(`SELECT * FROM ${this.#s}.jobs WHERE id = $1`, [id])).rows[0];
    return row ? this.#decodeOrThrow(row, operation) : null;
  }

  /** Decodes rows; the unreadable ones are quarantined (left out of the counters, listed by listCorrupt). */
  async #decodeAll(rows: Row[]): Promise<DecodedRow[]> {
    const out = rows.map((r) => decodeRow(r, false));
    for (let i = 0; i < out.length; i++) {
      const d = out[i];
      if (d && !d.ok) await this.#quarantine(d.corrupt, rows[i] ?? {});
    }
    return out;
  }

  async #quarantine(c: CorruptJob, row: Row): Promise<void> {
    if (row.unreadable !== null && row.unreadable !== undefined) return;
    await this.#q(`UPDATE ${this.#s}.jobs SET unreadable = $2 WHERE id = $1 AND unreadable IS NULL`, [c.id, c.error || 'unreadable']);
  }

  async #counters(where: string): Promise<Array<[string, number]>> {
    const { rows } = await this.#q(`SELECT k, sum(n)::float8 AS n FROM ${this.#s}.job_counters ${where} GROUP BY k`, []);
    return rows.map((r) => [String(r.k), Number(r.n)]);
  }

  #decodeOrThrow(row: Row, operation: string): JobRecord {
    const d = decodeRow(row, false);
    if (d.ok) return d.job;
    void this.#quarantine(d.corrupt, row).catch(() => undefined);
    throw new StoreError('STORE_CORRUPT_ROW', `${operation}: job ${d.corrupt.id} cannot be read: ${d.corrupt.error}`, { backend: 'postgres', operation, jobId: d.corrupt.id });
  }

  /** SET clause: `$1` is always the write token; patch columns, updated_at and the terminal endedAt stamp follow. */
  #setClause(patch: Partial<JobRecord>, now: number, terminal: 'always' | 'never' | 'current', token: string): { sets: string[]; params: unknown[] } {
    const params: unknown[] = [token];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    const sets = ['write_token = $1'];
    for (const [column, value] of patchColumns(patch)) {
      if (column === 'updated_at' || column === 'ended_at') continue;
      sets.push(`${column} = ${p(value)}${JSON_COLUMNS.has(column) ? '::jsonb' : ''}`);
    }
    if (patch.attempts !== undefined || patch.workflow !== undefined) {
      // Attempts stay in storage form against whichever workflow the row ends up with.
      const attempts = patch.attempts !== undefined ? `${p(JSON.stringify(patch.attempts))}::jsonb` : 'attempts';
      const base = patch.workflow !== undefined ? `${p(JSON.stringify(patch.workflow))}::jsonb` : 'workflow';
      sets.push(`attempts = ${this.#s}.cg_attempts(${attempts}, workflow, ${base})`);
      if (patch.workflow !== undefined) sets.push(`workflow = ${base}`);
    }
    const extra = extraFields(patch);
    if (extra) sets.push(`extra = coalesce(extra, '{}'::jsonb) || ${p(JSON.stringify(extra))}::jsonb`);
    sets.push(`updated_at = ${p(patch.updatedAt ?? now)}`);
    const ended = patch.endedAt !== undefined ? `${p(patch.endedAt)}::bigint` : 'ended_at';
    if (terminal === 'always') sets.push(`ended_at = coalesce(${ended}, ${p(now)}::bigint)`);
    else if (terminal === 'current') sets.push(`ended_at = CASE WHEN status = ANY(${p(TERMINAL)}::text[]) THEN coalesce(${ended}, ${p(now)}::bigint) ELSE ${ended} END`);
    else if (patch.endedAt !== undefined) sets.push(`ended_at = ${ended}`);
    return { sets, params };
  }

  async #update(operation: string, id: string, patch: Partial<JobRecord>): Promise<void> {
    const { sets, params } = this.#setClause(patch, this.#o.clock.now(), 'current', randomUUID());
    params.push(id);
    const sql = `UPDATE ${this.#s}.jobs SET ${sets.join(', ')} WHERE id = $${params.length}`;
    await this.#withRetry(operation, id, async () => {
      const r = await this.#q(sql, params);
      if (r.rowCount === 0) throw new StoreError('STORE_JOB_NOT_FOUND', `${operation}: no job with id ${id}`, { backend: 'postgres', operation, jobId: id });
    });
  }

  /** Runs an UPDATE on a JSON array column; when it matches nothing, finds out why. `$1` = id, last param = token. */
  async #arrayWrite(operation: string, id: string, sql: string, params: unknown[], column: string): Promise<void> {
    const token = params[params.length - 1];
    await this.#withRetry(operation, id, async () => {
      const r = await this.#q(sql, params);
      if (r.rowCount !== 0) return;
      const row = (await this.#q(`SELECT write_token, jsonb_typeof(${column}) AS kind FROM ${this.#s}.jobs WHERE id = $1`, [id])).rows[0];
      if (!row) throw new StoreError('STORE_JOB_NOT_FOUND', `${operation}: no job with id ${id}`, { backend: 'postgres', operation, jobId: id });
      if (row.write_token === token) return;
      throw new StoreError('STORE_CORRUPT_ROW', `${operation}: job ${id} cannot be updated: column ${column} holds ${String(row.kind)}, not an array`, { backend: 'postgres', operation, jobId: id });
    });
  }
}
