/**
 * The embedded default store: one SQLite file (WAL) through better-sqlite3. Calls are synchronous
 * under the hood, so a write has reached the file (and, with synchronous=FULL, the disk) when its
 * promise resolves. Read-modify-write operations run in BEGIN IMMEDIATE transactions so two
 * processes sharing the file cannot lose each other's updates.
 */
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { isTerminal, TERMINAL_STATUSES, type AttemptRecord, type Checkpoint, type JobRecord, type JobStatus, type RecoveryStep } from '../jobs/types.js';
import { systemClock, type Clock } from '../util/clock.js';
import { makeFolder } from '../util/make-folder.js';
import { checkJob } from './codec.js';
import type { CorruptJob, JobPage, JobQuery, JobStore, ServerBlock, StatusCounts, StoreStats, UnfinishedJob, UnfinishedPage } from './contract.js';
import { countsFromCounters, statsFromCounters } from './counters.js';
import { describeCause, StoreError } from './errors.js';
import { SQLITE_MIGRATIONS, UNFINISHED_INDEX_WHERE } from './migrations/sqlite.js';
import { decodeUnfinishedCursor, encodeUnfinishedCursor, normalizeQuery, toPage, UNFINISHED_ORDER, unfinishedLimit } from './query.js';
import {
  applyAttempt,
  applyRecoveryStep,
  assertAttempt,
  assertBlock,
  assertExtraNames,
  assertProgress,
  assertRecoveryStep,
  cleanPatch,
  metaText,
  stampEnd,
  statusList,
} from './record-ops.js';
import { columnValue, decodeRow, extraFields, JOB_COLUMNS, patchColumns, rowValues, splitDecoded, type DecodedRow } from './sql-columns.js';
import { decodeAttempts, encodeAttempts } from './workflow-diff.js';

export interface SqliteStoreOptions {
  /** File path, or `:memory:`. */
  path: string;
  /** @default systemClock */
  clock?: Clock;
  /**
   * FULL fsyncs the WAL on every commit, so a transition survives power loss once its call returns.
   * NORMAL fsyncs only at checkpoints: several times faster per write, never corrupts the file and
   * loses nothing when the process crashes, but a power loss or kernel panic can roll back the
   * last commits (jobs whose submit was acknowledged, or transitions that were reported).
   * @default 'FULL'
   */
  synchronous?: 'FULL' | 'NORMAL';
  /** How long a writer waits for another process's lock before failing. @default 5000 */
  busyTimeoutMs?: number;
}

type Row = Record<string, unknown>;
/** The columns of `UNFINISHED_PAGE_SQL`, typed by the table's STRICT declaration. */
interface SummaryRow {
  id: string;
  status: JobStatus;
  priority: number;
  created_at: number;
  server: string | null;
  prompt_id: string | null;
}

const NON_TERMINAL_SQL = `('queued','running','recovering')`;
const TERMINAL_SQL = `(${[...TERMINAL_STATUSES].map((s) => `'${s}'`).join(',')})`;
const INSERT_COLUMNS = [...JOB_COLUMNS.map((c) => c.column), 'error_code', 'error_message', 'extra'];
/**
 * One status's slice of the restart-recovery walk (exported for the query-plan test). INDEXED BY:
 * after an ANALYZE the planner may prefer a narrower index and read every table row, which is what
 * this query exists to avoid; migration 3 guarantees the index exists.
 */
export const UNFINISHED_PAGE_SQL = `SELECT id, status, priority, created_at, server, prompt_id FROM jobs INDEXED BY jobs_unfinished
  WHERE ${UNFINISHED_INDEX_WHERE} AND status = ? AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?`;

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
      if (path !== ':memory:' && !path.startsWith('file:')) makeFolder(dirname(path));
      db = new Database(path, { timeout: this.#opts.busyTimeoutMs });
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${this.#opts.synchronous}`);
      // Re-encodes an attempts array against a (possibly new) workflow: used by SET clauses that
      // write attempts or the workflow without reading the row into JS first.
      db.function('cg_attempts', { deterministic: true }, (attempts: unknown, oldBase: unknown, newBase: unknown) => {
        const parse = (x: unknown): unknown => (typeof x === 'string' ? JSON.parse(x) : null);
        return JSON.stringify(encodeAttempts(decodeAttempts(parse(attempts), parse(oldBase)), parse(newBase)));
      });
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
      assertExtraNames('sqlite', 'createJob', job.id, job);
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
      return splitDecoded(this.#decodeAll(db, rows));
    });
  }

  /** One page of unfinished jobs: a range scan of the covering index per status, no row decoded. */
  async listUnfinished(opts: { cursor?: string | null; limit?: number } = {}): Promise<UnfinishedPage> {
    return this.#run('listUnfinished', undefined, (db) => {
      const limit = unfinishedLimit(opts.limit);
      let pos = decodeUnfinishedCursor(opts.cursor, 'sqlite') ?? { status: 0, createdAt: -Infinity, id: '' };
      const jobs: UnfinishedJob[] = [];
      let last: { status: number; createdAt: number; id: string } | null = null;
      while (jobs.length < limit && pos.status < UNFINISHED_ORDER.length) {
        const after = Number.isFinite(pos.createdAt) ? pos.createdAt : Number.MIN_SAFE_INTEGER;
        const got = this.#stmt(db, UNFINISHED_PAGE_SQL).all(UNFINISHED_ORDER[pos.status], after, pos.id, limit - jobs.length) as SummaryRow[];
        for (const r of got) jobs.push({ id: r.id, status: r.status, priority: r.priority, createdAt: r.created_at, server: r.server, promptId: r.prompt_id });
        const tail = got[got.length - 1];
        if (tail) last = { status: pos.status, createdAt: tail.created_at, id: tail.id };
        if (jobs.length < limit) pos = { status: pos.status + 1, createdAt: -Infinity, id: '' };
      }
      const more = jobs.length === limit && last !== null;
      return { jobs, corrupt: [], nextCursor: more && last ? encodeUnfinishedCursor(last) : null };
    });
  }

  /** Quarantined rows, found unreadable by an earlier read. */
  async listCorrupt(): Promise<CorruptJob[]> {
    return this.#run('listCorrupt', undefined, (db) =>
      (this.#stmt(db, 'SELECT id, unreadable FROM jobs WHERE unreadable IS NOT NULL ORDER BY id').all() as Array<{ id: string; unreadable: string }>).map((r) => ({ id: r.id, error: r.unreadable })),
    );
  }

  /** Deletes one job by id, readable or not. */
  async deleteJob(id: string): Promise<boolean> {
    return this.#run('deleteJob', id, (db) => this.#stmt(db, 'DELETE FROM jobs WHERE id = ?').run(id).changes > 0);
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
      const { jobs, corrupt } = splitDecoded(this.#decodeAll(db, page.items.map((p) => p.row)));
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

  /** Aggregates from the counters the triggers keep (a few dozen rows, whatever the number of jobs). */
  async stats(): Promise<StoreStats> {
    return this.#run('stats', undefined, (db) => statsFromCounters(this.#counters(db, 'SELECT k, n FROM job_counters')));
  }

  /** Totals by status from the counters. */
  async countByStatus(): Promise<StatusCounts> {
    return this.#run('countByStatus', undefined, (db) => countsFromCounters(this.#counters(db, "SELECT k, n FROM job_counters WHERE k >= 's:' AND k < 's;'")));
  }

  /** Upserts a (server, workflow hash) block. */
  async blockServer(block: ServerBlock): Promise<void> {
    assertBlock('sqlite', block);
    await this.#run('blockServer', undefined, (db) =>
      this.#stmt(
        db,
        `INSERT INTO server_blocks (workflow_hash, server, code, reason, until) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (workflow_hash, server) DO UPDATE SET code = excluded.code, reason = excluded.reason, until = excluded.until`,
      ).run(block.workflowHash, block.server, block.code, block.reason, block.until),
    );
  }

  /** Blocks in force for a workflow hash; removes the expired ones. */
  async blockedServers(workflowHash: string, now: number): Promise<Array<Omit<ServerBlock, 'workflowHash'>>> {
    return this.#run('blockedServers', undefined, (db) => {
      const rows = this.#stmt(db, 'SELECT server, code, reason, until FROM server_blocks WHERE workflow_hash = ? ORDER BY server').all(workflowHash) as Array<Omit<ServerBlock, 'workflowHash'>>;
      const live = rows.filter((r) => r.until > now);
      if (live.length < rows.length) this.#stmt(db, 'DELETE FROM server_blocks WHERE workflow_hash = ? AND until <= ?').run(workflowHash, now);
      return live;
    });
  }

  /** A meta value, or null. */
  async getMeta(key: string): Promise<unknown> {
    return this.#run('getMeta', undefined, (db) => {
      const row = this.#stmt(db, 'SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
      return row ? (JSON.parse(row.value) as unknown) : null;
    });
  }

  /** Sets a meta value. */
  async setMeta(key: string, value: unknown): Promise<void> {
    const text = metaText('sqlite', key, value);
    await this.#run('setMeta', undefined, (db) => this.#stmt(db, 'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, text));
  }

  /** Meta entries under a prefix, by key. */
  async listMeta(prefix: string): Promise<Array<{ key: string; value: unknown }>> {
    return this.#run('listMeta', undefined, (db) =>
      (this.#stmt(db, 'SELECT key, value FROM meta WHERE substr(key, 1, length(?)) = ? ORDER BY key').all(prefix, prefix) as Array<{ key: string; value: string }>).map((r) => ({
        key: r.key,
        value: JSON.parse(r.value) as unknown,
      })),
    );
  }

  /** Deletes terminal jobs that ended before `cutoff`. */
  async deleteTerminal(ids: readonly string[], cutoff: number): Promise<string[]> {
    if (ids.length === 0) return [];
    return this.#run('deleteTerminal', undefined, (db) => {
      const rows = db.prepare(`DELETE FROM jobs WHERE id IN (${ids.map(() => '?').join(',')}) AND status IN ${TERMINAL_SQL} AND ended_at < ? RETURNING id`).all(...ids, cutoff) as Array<{ id: string }>;
      return rows.map((r) => r.id);
    });
  }

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

  /** Decodes rows; the unreadable ones are quarantined (left out of the counters, listed by listCorrupt). */
  #decodeAll(db: Database.Database, rows: Row[]): DecodedRow[] {
    return rows.map((r) => {
      const d = decodeRow(r, true);
      if (!d.ok) this.#quarantine(db, d.corrupt, r);
      return d;
    });
  }

  #quarantine(db: Database.Database, c: CorruptJob, row: Row): void {
    if (row.unreadable !== null && row.unreadable !== undefined) return;
    this.#stmt(db, 'UPDATE jobs SET unreadable = ? WHERE id = ? AND unreadable IS NULL').run(c.error || 'unreadable', c.id);
  }

  #counters(db: Database.Database, sql: string): Array<[string, number]> {
    return (this.#stmt(db, sql).all() as Array<{ k: string; n: number }>).map((r) => [r.k, r.n]);
  }

  #decodeOrThrow(row: Row, operation: string): JobRecord {
    const d = decodeRow(row, true);
    if (d.ok) return d.job;
    const db = this.#db;
    if (db) this.#quarantine(db, d.corrupt, row);
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
    if (patch.attempts !== undefined || patch.workflow !== undefined) {
      // Attempts stay in storage form against whichever workflow the row ends up with.
      const attempts = patch.attempts !== undefined ? '?' : 'attempts';
      const base = patch.workflow !== undefined ? '?' : 'workflow';
      sets.push(`attempts = cg_attempts(${attempts}, workflow, ${base})`);
      if (patch.attempts !== undefined) params.push(JSON.stringify(patch.attempts));
      if (patch.workflow !== undefined) params.push(JSON.stringify(patch.workflow));
      if (patch.workflow !== undefined) {
        sets.push('workflow = ?');
        params.push(JSON.stringify(patch.workflow));
      }
    }
    const extra = extraFields(patch);
    if (extra) {
      const names = Object.keys(extra);
      sets.push(`extra = json_set(coalesce(extra, '{}'), ${names.map((n) => `'$.${n}', json(?)`).join(', ')})`);
      params.push(...names.map((n) => JSON.stringify(extra[n])));
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
        this.#stmt(db, sql).run(...cols.map((f) => columnValue(f, f === 'attempts' ? encodeAttempts(next.attempts, next.workflow) : next[f])), id);
      });
      tx.immediate();
    });
  }
}


