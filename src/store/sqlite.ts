/**
 * The embedded default store: one SQLite file (WAL) through better-sqlite3. Calls are synchronous
 * under the hood, so a write has reached the file (and, with synchronous=FULL, the disk) when its
 * promise resolves. Read-modify-write operations run in BEGIN IMMEDIATE transactions so two
 * processes sharing the file cannot lose each other's updates.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { isTerminal, TERMINAL_STATUSES, type AttemptRecord, type Checkpoint, type JobRecord, type JobStatus, type RecoveryStep } from '../jobs/types.js';
import { systemClock, type Clock } from '../util/clock.js';
import { checkJob } from './codec.js';
import type { CorruptJob, JobPage, JobQuery, JobStore, StoreStats } from './contract.js';
import { describeCause, StoreError } from './errors.js';
import { SQLITE_MIGRATIONS } from './migrations/sqlite.js';
import { addRecovery, emptyStats, ERROR_STATUSES, normalizeQuery, toPage } from './query.js';
import {
  applyAttempt,
  applyRecoveryStep,
  assertAttempt,
  assertProgress,
  assertRecoveryStep,
  cleanPatch,
  stampEnd,
  statusList,
} from './record-ops.js';
import { columnValue, decodeRow, JOB_COLUMNS, patchColumns, rowValues, splitDecoded } from './sql-columns.js';

export interface SqliteStoreOptions {
  /** File path, or `:memory:`. */
  path: string;
  /** @default systemClock */
  clock?: Clock;
  /**
   * FULL fsyncs the WAL on every commit, so a transition survives power loss once its call returns.
   * NORMAL is faster but can lose the last commits on power loss (never on a process crash).
   * @default 'FULL'
   */
  synchronous?: 'FULL' | 'NORMAL';
  /** How long a writer waits for another process's lock before failing. @default 5000 */
  busyTimeoutMs?: number;
}

type Row = Record<string, unknown>;

const NON_TERMINAL_SQL = `('queued','running','recovering')`;
const TERMINAL_SQL = `(${[...TERMINAL_STATUSES].map((s) => `'${s}'`).join(',')})`;
const INSERT_COLUMNS = [...JOB_COLUMNS.map((c) => c.column), 'error_code', 'error_message'];

/** SQLite-backed JobStore. */
export class SqliteStore implements JobStore {
  readonly #opts: Required<SqliteStoreOptions>;
  #db: Database.Database | null = null;
  #closed = false;
  readonly #statements = new Map<string, Database.Statement>();

  constructor(opts: SqliteStoreOptions) {
    this.#opts = { clock: systemClock, synchronous: 'FULL', busyTimeoutMs: 5000, ...opts };
  }

  /** The file this store writes. */
  get path(): string {
    return this.#opts.path;
  }

  /** The connection's effective durability settings, for diagnostics (`doctor`) and tests. */
  async settings(): Promise<{ path: string; journalMode: string; synchronous: string }> {
    return this.#run('settings', undefined, (db) => {
      const sync = Number(db.pragma('synchronous', { simple: true }));
      return { path: this.#opts.path, journalMode: String(db.pragma('journal_mode', { simple: true })), synchronous: ['OFF', 'NORMAL', 'FULL', 'EXTRA'][sync] ?? String(sync) };
    });
  }

  /** Opens the file (creating its folder), sets WAL and durability, applies migrations. */
  async init(): Promise<void> {
    if (this.#closed) throw this.#closedError('init');
    if (this.#db) return;
    const { path } = this.#opts;
    let db: Database.Database | undefined;
    try {
      if (path !== ':memory:' && !path.startsWith('file:')) mkdirSync(dirname(path), { recursive: true });
      db = new Database(path, { timeout: this.#opts.busyTimeoutMs });
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${this.#opts.synchronous}`);
      this.#migrate(db);
    } catch (e) {
      db?.close();
      if (e instanceof StoreError) throw e;
      throw new StoreError('STORE_UNAVAILABLE', `init: cannot open SQLite database ${path}: ${describeCause(e)}`, { backend: 'sqlite', operation: 'init', cause: e });
    }
    this.#db = db;
  }

  #migrate(db: Database.Database): void {
    const run = db.transaction(() => {
      db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
      const applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as Array<{ version: number }>).map((r) => r.version));
      for (const m of SQLITE_MIGRATIONS) {
        if (applied.has(m.version)) continue;
        try {
          db.exec(m.sql);
        } catch (e) {
          throw new StoreError('STORE_MIGRATION_FAILED', `init: SQLite migration ${m.version} (${m.name}) failed: ${describeCause(e)}`, { backend: 'sqlite', operation: 'init', cause: e });
        }
        db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, this.#opts.clock.now());
      }
    });
    // IMMEDIATE takes the write lock first, so two processes starting together migrate one at a time.
    run.immediate();
  }

  /** Inserts a job; an existing idempotency key returns that job instead. */
  async createJob(input: JobRecord): Promise<{ created: boolean; job: JobRecord }> {
    return this.#run('createJob', input?.id, (db) => {
      const checked = checkJob(input);
      const job = checked.ok ? stampEnd(input, this.#opts.clock.now()) : input;
      if (!checked.ok) throw new StoreError('STORE_INVALID_JOB', `createJob: invalid job ${String(job?.id)}: ${checked.error}`, { backend: 'sqlite', operation: 'createJob', jobId: job?.id });
      const tx = db.transaction(() => {
        if (job.idempotencyKey) {
          const existing = this.#stmt(db, 'SELECT * FROM jobs WHERE idempotency_key = ?').get(job.idempotencyKey) as Row | undefined;
          if (existing) return { created: false, job: this.#decodeOrThrow(existing, 'createJob') };
        }
        const values = rowValues(job);
        const sql = `INSERT INTO jobs (${INSERT_COLUMNS.join(', ')}) VALUES (${INSERT_COLUMNS.map(() => '?').join(', ')}) ON CONFLICT (id) DO NOTHING`;
        const info = this.#stmt(db, sql).run(...INSERT_COLUMNS.map((c) => values[c] as unknown));
        if (info.changes === 0) throw new StoreError('STORE_DUPLICATE_JOB', `createJob: a job with id ${job.id} already exists`, { backend: 'sqlite', operation: 'createJob', jobId: job.id });
        return { created: true, job: this.#decodeOrThrow(this.#getRow(db, job.id) ?? {}, 'createJob') };
      });
      return tx.immediate();
    });
  }

  /** The job, or null; a damaged row throws STORE_CORRUPT_ROW. */
  async getJob(id: string): Promise<JobRecord | null> {
    return this.#run('getJob', id, (db) => {
      const row = this.#getRow(db, id);
      return row ? this.#decodeOrThrow(row, 'getJob') : null;
    });
  }

  /** Compare-and-set on status in one UPDATE ... RETURNING. */
  async transition(id: string, from: JobStatus | readonly JobStatus[], to: JobStatus, patch?: Partial<JobRecord>): Promise<JobRecord | null> {
    return this.#run('transition', id, (db) => {
      const clean = cleanPatch('sqlite', 'transition', id, patch);
      const froms = statusList(from);
      const now = this.#opts.clock.now();
      const { sets, params } = this.#setClause(clean, now, isTerminal(to) ? 'always' : 'never');
      sets.unshift('status = ?');
      params.unshift(to);
      const sql = `UPDATE jobs SET ${sets.join(', ')} WHERE id = ? AND status IN (${froms.map(() => '?').join(', ')}) RETURNING *`;
      const row = this.#stmt(db, sql).get(...params, id, ...froms) as Row | undefined;
      return row ? this.#decodeOrThrow(row, 'transition') : null;
    });
  }

  /** Upserts an attempt by number and sets the job's server and prompt id. */
  async recordAttempt(id: string, attempt: AttemptRecord): Promise<void> {
    assertAttempt('sqlite', id, attempt);
    await this.#readModifyWrite('recordAttempt', id, (job, now) => applyAttempt(job, attempt, now), ['attempts', 'server', 'promptId']);
  }

  /** Appends a recovery step, or replaces the last one. */
  async appendRecoveryStep(id: string, step: RecoveryStep, opts?: { replaceLast?: boolean }): Promise<void> {
    assertRecoveryStep('sqlite', id, step);
    await this.#readModifyWrite('appendRecoveryStep', id, (job, now) => applyRecoveryStep(job, step, opts?.replaceLast === true, now), ['recoveryHistory']);
  }

  /** Sets progress and, when given, the checkpoint. */
  async updateProgress(id: string, progress: number, checkpoint?: Checkpoint): Promise<void> {
    assertProgress('sqlite', id, progress, checkpoint);
    await this.#update('updateProgress', id, checkpoint === undefined ? { progress } : { progress, checkpoint });
  }

  /** Patches fields other than id and status. */
  async patchJob(id: string, patch: Partial<Omit<JobRecord, 'id' | 'status'>>): Promise<void> {
    const clean = cleanPatch('sqlite', 'patchJob', id, patch);
    await this.#update('patchJob', id, clean);
  }

  /** Non-terminal jobs, oldest first; damaged rows are reported and skipped. */
  async listNonTerminal(): Promise<{ jobs: JobRecord[]; corrupt: CorruptJob[] }> {
    return this.#run('listNonTerminal', undefined, (db) => {
      const rows = this.#stmt(db, `SELECT * FROM jobs WHERE status IN ${NON_TERMINAL_SQL} ORDER BY created_at, id`).all() as Row[];
      return splitDecoded(rows.map((r) => decodeRow(r, true)));
    });
  }

  /** Newest first with keyset pagination on (created_at, id). */
  async query(q: JobQuery): Promise<JobPage> {
    return this.#run('query', undefined, (db) => {
      const nq = normalizeQuery(q, 'sqlite');
      const where: string[] = [];
      const params: unknown[] = [];
      if (nq.statuses) {
        where.push(`status IN (${nq.statuses.map(() => '?').join(', ')})`);
        params.push(...nq.statuses);
      }
      if (nq.since !== null) {
        where.push('created_at >= ?');
        params.push(nq.since);
      }
      if (nq.until !== null) {
        where.push('created_at < ?');
        params.push(nq.until);
      }
      if (nq.after) {
        where.push('(created_at, id) < (?, ?)');
        params.push(nq.after.createdAt, nq.after.id);
      }
      const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`;
      const rows = this.#stmt(db, sql).all(...params, nq.limit + 1) as Row[];
      const page = toPage(
        rows.map((r) => ({ createdAt: Number(r.created_at), id: String(r.id), row: r })),
        nq.limit,
      );
      const { jobs, corrupt } = splitDecoded(page.items.map((p) => decodeRow(p.row, true)));
      return { jobs, nextCursor: page.nextCursor, ...(corrupt.length ? { corrupt } : {}) };
    });
  }

  /** The job holding this idempotency key, if any. */
  async findByIdempotencyKey(key: string): Promise<JobRecord | null> {
    return this.#run('findByIdempotencyKey', undefined, (db) => {
      const row = this.#stmt(db, 'SELECT * FROM jobs WHERE idempotency_key = ?').get(key) as Row | undefined;
      return row ? this.#decodeOrThrow(row, 'findByIdempotencyKey') : null;
    });
  }

  /** Aggregates computed by SQLite; JSON that does not parse is left out, not fatal. */
  async stats(): Promise<StoreStats> {
    return this.#run('stats', undefined, (db) => {
      const stats = emptyStats();
      for (const r of this.#stmt(db, 'SELECT status, count(*) AS n FROM jobs GROUP BY status').all() as Array<{ status: JobStatus; n: number }>) {
        stats.byStatus[r.status] = r.n;
        stats.total += r.n;
      }
      const errorSql = `SELECT error_code, count(*) AS n FROM jobs WHERE status IN (${ERROR_STATUSES.map((s) => `'${s}'`).join(',')}) AND error_code IS NOT NULL GROUP BY error_code`;
      for (const r of this.#stmt(db, errorSql).all() as Array<{ error_code: string; n: number }>) stats.errorsByCode[r.error_code] = r.n;
      const stepsSql = `
        SELECT json_extract(e.value, '$.strategy') AS strategy, json_extract(e.value, '$.success') AS success, count(*) AS n
        FROM jobs, json_each(${jsonArrayOrEmpty('recovery_history')}) AS e
        WHERE json_extract(e.value, '$.strategy') IS NOT NULL
        GROUP BY 1, 2`;
      for (const r of this.#stmt(db, stepsSql).all() as Array<{ strategy: string; success: number | null; n: number }>) {
        addRecovery(stats, r.strategy, r.success === null ? null : r.success === 1, r.n);
      }
      const totals = this.#stmt(db, `SELECT coalesce(sum(json_array_length(${jsonArrayOrEmpty('attempts')})), 0) AS attempts, coalesce(sum(retry_count), 0) AS retries FROM jobs`).get() as {
        attempts: number;
        retries: number;
      };
      stats.totalAttempts = totals.attempts;
      stats.totalRetries = totals.retries;
      const attemptErrorsSql = `
        SELECT json_extract(e.value, '$.code') AS code, count(*) AS n
        FROM jobs, json_each(${jsonArrayOrEmpty('attempts')}) AS e
        WHERE json_extract(e.value, '$.code') IS NOT NULL
        GROUP BY 1`;
      for (const r of this.#stmt(db, attemptErrorsSql).all() as Array<{ code: string; n: number }>) stats.attemptErrorsByCode[r.code] = r.n;
      const retried = this.#stmt(
        db,
        `SELECT count(*) AS terminal, coalesce(sum(CASE WHEN status = 'completed' THEN 1 ELSE 0 END), 0) AS completed FROM jobs WHERE retry_count > 0 AND status IN ${TERMINAL_SQL}`,
      ).get() as { terminal: number; completed: number };
      stats.retriedJobs = { terminal: retried.terminal, completed: retried.completed };
      return stats;
    });
  }

  /** Deletes terminal jobs that ended before `cutoff`. */
  async deleteTerminalBefore(cutoff: number): Promise<number> {
    return this.#run('deleteTerminalBefore', undefined, (db) => this.#stmt(db, `DELETE FROM jobs WHERE status IN ${TERMINAL_SQL} AND ended_at < ?`).run(cutoff).changes);
  }

  /** Runs a trivial query. */
  async ping(): Promise<void> {
    await this.#run('ping', undefined, (db) => this.#stmt(db, 'SELECT 1').get());
  }

  /** Closes the file; idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#statements.clear();
    const db = this.#db;
    this.#db = null;
    db?.close();
  }

  /** Runs one operation, normalising whatever the driver throws. */
  async #run<T>(operation: string, jobId: string | undefined, fn: (db: Database.Database) => T): Promise<T> {
    const db = this.#db;
    if (!db) throw this.#closed ? this.#closedError(operation) : new StoreError('STORE_CLOSED', `${operation}: the SQLite store was used before init()`, { backend: 'sqlite', operation });
    try {
      return fn(db);
    } catch (e) {
      if (e instanceof StoreError) throw e;
      const code = (e as { code?: unknown }).code;
      const busy = code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
      throw new StoreError(busy ? 'STORE_UNAVAILABLE' : 'STORE_ERROR', `${operation}: SQLite ${busy ? 'database is locked by another writer' : 'failed'}: ${describeCause(e)}`, {
        backend: 'sqlite',
        operation,
        ...(jobId === undefined ? {} : { jobId }),
        cause: e,
      });
    }
  }

  #closedError(operation: string): StoreError {
    return new StoreError('STORE_CLOSED', `${operation}: the SQLite store is closed`, { backend: 'sqlite', operation });
  }

  #stmt(db: Database.Database, sql: string): Database.Statement {
    let s = this.#statements.get(sql);
    if (!s) {
      s = db.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  #getRow(db: Database.Database, id: string): Row | undefined {
    return this.#stmt(db, 'SELECT * FROM jobs WHERE id = ?').get(id) as Row | undefined;
  }

  #decodeOrThrow(row: Row, operation: string): JobRecord {
    const d = decodeRow(row, true);
    if (d.ok) return d.job;
    throw new StoreError('STORE_CORRUPT_ROW', `${operation}: job ${d.corrupt.id} cannot be read: ${d.corrupt.error}`, { backend: 'sqlite', operation, jobId: d.corrupt.id });
  }

  /**
   * SET clause for a patch plus updated_at and the terminal endedAt stamp. `terminal`: 'always'
   * for a transition into a terminal state, 'current' to look at the row's status.
   */
  #setClause(patch: Partial<JobRecord>, now: number, terminal: 'always' | 'never' | 'current'): { sets: string[]; params: unknown[] } {
    const sets: string[] = [];
    const params: unknown[] = [];
    for (const [column, value] of patchColumns(patch)) {
      if (column === 'updated_at' || column === 'ended_at') continue;
      sets.push(`${column} = ?`);
      params.push(value);
    }
    sets.push('updated_at = ?');
    params.push(patch.updatedAt ?? now);
    const ended = patch.endedAt !== undefined ? '?' : 'ended_at';
    const endedParams = patch.endedAt !== undefined ? [patch.endedAt] : [];
    if (terminal === 'always') {
      sets.push(`ended_at = coalesce(${ended}, ?)`);
      params.push(...endedParams, now);
    } else if (terminal === 'current') {
      sets.push(`ended_at = CASE WHEN status IN ${TERMINAL_SQL} THEN coalesce(${ended}, ?) ELSE ${ended} END`);
      params.push(...endedParams, now, ...endedParams);
    } else if (patch.endedAt !== undefined) {
      sets.push('ended_at = ?');
      params.push(patch.endedAt);
    }
    return { sets, params };
  }

  async #update(operation: string, id: string, patch: Partial<JobRecord>): Promise<void> {
    await this.#run(operation, id, (db) => {
      const { sets, params } = this.#setClause(patch, this.#opts.clock.now(), 'current');
      const info = this.#stmt(db, `UPDATE jobs SET ${sets.join(', ')} WHERE id = ?`).run(...params, id);
      if (info.changes === 0) throw new StoreError('STORE_JOB_NOT_FOUND', `${operation}: no job with id ${id}`, { backend: 'sqlite', operation, jobId: id });
    });
  }

  /** Reads the job, applies `change` in JS and writes back the changed fields, in one IMMEDIATE transaction. */
  async #readModifyWrite(operation: string, id: string, change: (job: JobRecord, now: number) => JobRecord, fields: Array<keyof JobRecord>): Promise<void> {
    await this.#run(operation, id, (db) => {
      const tx = db.transaction(() => {
        const row = this.#getRow(db, id);
        if (!row) throw new StoreError('STORE_JOB_NOT_FOUND', `${operation}: no job with id ${id}`, { backend: 'sqlite', operation, jobId: id });
        const next = change(this.#decodeOrThrow(row, operation), this.#opts.clock.now());
        const cols = [...fields, 'updatedAt' as const];
        const sql = `UPDATE jobs SET ${cols.map((f) => `${JOB_COLUMNS.find((c) => c.field === f)?.column ?? f} = ?`).join(', ')} WHERE id = ?`;
        this.#stmt(db, sql).run(...cols.map((f) => columnValue(f, next[f])), id);
      });
      tx.immediate();
    });
  }
}

/** Wraps a column so json_each/json_array_length never see malformed or non-array JSON. */
function jsonArrayOrEmpty(column: string): string {
  return `CASE WHEN json_valid(${column}) THEN CASE WHEN json_type(${column}) = 'array' THEN ${column} ELSE '[]' END ELSE '[]' END`;
}
