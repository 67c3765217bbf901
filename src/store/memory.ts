/**
 * In-process store for unit tests and the `memory:` URL. Rows are kept as JSON text, exactly as a
 * database would hold them, so callers get the same copy semantics (and the same serialisation
 * failures) as with a real backend. Nothing survives the process.
 */
import { isTerminal, type AttemptRecord, type Checkpoint, type JobRecord, type JobStatus, type RecoveryStep } from '../jobs/types.js';
import { systemClock, type Clock } from '../util/clock.js';
import { checkJob, parseJson } from './codec.js';
import type { CorruptJob, JobPage, JobQuery, JobStore, StoreStats } from './contract.js';
import { StoreError } from './errors.js';
import { addToStats, emptyStats, matchesQuery, newerFirst, normalizeQuery, toPage } from './query.js';
import {
  applyAttempt,
  applyPatch,
  applyProgress,
  applyRecoveryStep,
  applyTransition,
  assertAttempt,
  assertProgress,
  assertRecoveryStep,
  cleanPatch,
  stampEnd,
  statusList,
} from './record-ops.js';

export interface MemoryStoreOptions {
  /** @default systemClock */
  clock?: Clock;
  /**
   * The backing map (job id -> JSON text). Passing one lets a test simulate a damaged row the way
   * it would write one with a database driver.
   */
  rows?: Map<string, string>;
}

type Decoded = { ok: true; job: JobRecord } | { ok: false; corrupt: CorruptJob };

/** A JobStore held in a Map; every method behaves as the SQL and Redis stores do. */
export class MemoryStore implements JobStore {
  readonly #clock: Clock;
  readonly #rows: Map<string, string>;
  readonly #idempotency = new Map<string, string>();
  #state: 'new' | 'open' | 'closed' = 'new';

  constructor(opts: MemoryStoreOptions = {}) {
    this.#clock = opts.clock ?? systemClock;
    this.#rows = opts.rows ?? new Map();
  }

  /** Marks the store usable and indexes idempotency keys of rows passed in. */
  async init(): Promise<void> {
    if (this.#state === 'closed') throw this.#closedError('init');
    if (this.#state === 'open') return;
    for (const d of this.#all()) if (d.ok && d.job.idempotencyKey) this.#idempotency.set(d.job.idempotencyKey, d.job.id);
    this.#state = 'open';
  }

  /** Inserts a job, honouring its idempotency key. */
  async createJob(input: JobRecord): Promise<{ created: boolean; job: JobRecord }> {
    this.#assertOpen('createJob');
    const checked = checkJob(input);
    const job = checked.ok ? stampEnd(input, this.#clock.now()) : input;
    if (!checked.ok) throw new StoreError('STORE_INVALID_JOB', `createJob: invalid job ${String(job?.id)}: ${checked.error}`, { backend: 'memory', operation: 'createJob', jobId: job?.id });
    if (job.idempotencyKey) {
      const existingId = this.#idempotency.get(job.idempotencyKey);
      const existing = existingId === undefined ? undefined : this.#decode(existingId);
      if (existing?.ok) return { created: false, job: existing.job };
    }
    if (this.#rows.has(job.id)) throw new StoreError('STORE_DUPLICATE_JOB', `createJob: a job with id ${job.id} already exists`, { backend: 'memory', operation: 'createJob', jobId: job.id });
    const text = JSON.stringify(job);
    this.#rows.set(job.id, text);
    if (job.idempotencyKey) this.#idempotency.set(job.idempotencyKey, job.id);
    return { created: true, job: JSON.parse(text) as JobRecord };
  }

  /** The job, or null; a damaged row throws STORE_CORRUPT_ROW. */
  async getJob(id: string): Promise<JobRecord | null> {
    this.#assertOpen('getJob');
    if (!this.#rows.has(id)) return null;
    return this.#read(id, 'getJob');
  }

  /** Compare-and-set on status. */
  async transition(id: string, from: JobStatus | readonly JobStatus[], to: JobStatus, patch?: Partial<JobRecord>): Promise<JobRecord | null> {
    this.#assertOpen('transition');
    const clean = cleanPatch('memory', 'transition', id, patch);
    if (!this.#rows.has(id)) return null;
    const job = this.#read(id, 'transition');
    if (!statusList(from).includes(job.status)) return null;
    return this.#write(applyTransition(job, to, clean, this.#clock.now()));
  }

  /** Upserts an attempt by number. */
  async recordAttempt(id: string, attempt: AttemptRecord): Promise<void> {
    this.#assertOpen('recordAttempt');
    assertAttempt('memory', id, attempt);
    this.#write(applyAttempt(this.#mustRead(id, 'recordAttempt'), attempt, this.#clock.now()));
  }

  /** Appends or replaces the last recovery step. */
  async appendRecoveryStep(id: string, step: RecoveryStep, opts?: { replaceLast?: boolean }): Promise<void> {
    this.#assertOpen('appendRecoveryStep');
    assertRecoveryStep('memory', id, step);
    this.#write(applyRecoveryStep(this.#mustRead(id, 'appendRecoveryStep'), step, opts?.replaceLast === true, this.#clock.now()));
  }

  /** Sets progress and, when given, the checkpoint. */
  async updateProgress(id: string, progress: number, checkpoint?: Checkpoint): Promise<void> {
    this.#assertOpen('updateProgress');
    assertProgress('memory', id, progress, checkpoint);
    this.#write(applyProgress(this.#mustRead(id, 'updateProgress'), progress, checkpoint, this.#clock.now()));
  }

  /** Patches fields other than id and status. */
  async patchJob(id: string, patch: Partial<Omit<JobRecord, 'id' | 'status'>>): Promise<void> {
    this.#assertOpen('patchJob');
    const clean = cleanPatch('memory', 'patchJob', id, patch);
    this.#write(applyPatch(this.#mustRead(id, 'patchJob'), clean, this.#clock.now()));
  }

  /** Non-terminal jobs, oldest first; damaged rows are reported and skipped. */
  async listNonTerminal(): Promise<{ jobs: JobRecord[]; corrupt: CorruptJob[] }> {
    this.#assertOpen('listNonTerminal');
    const jobs: JobRecord[] = [];
    const corrupt: CorruptJob[] = [];
    for (const d of this.#all()) {
      if (!d.ok) corrupt.push(d.corrupt);
      else if (!isTerminal(d.job.status)) jobs.push(d.job);
    }
    jobs.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { jobs, corrupt };
  }

  /** Newest first, keyset-paginated. */
  async query(q: JobQuery): Promise<JobPage> {
    this.#assertOpen('query');
    const nq = normalizeQuery(q, 'memory');
    const matches: JobRecord[] = [];
    const corrupt: CorruptJob[] = [];
    for (const d of this.#all()) {
      if (!d.ok) corrupt.push(d.corrupt);
      else if (matchesQuery(d.job, nq)) matches.push(d.job);
    }
    matches.sort(newerFirst);
    const page = toPage(matches, nq.limit);
    return { jobs: page.items, nextCursor: page.nextCursor, ...(corrupt.length ? { corrupt } : {}) };
  }

  /** The job holding this idempotency key, if any. */
  async findByIdempotencyKey(key: string): Promise<JobRecord | null> {
    this.#assertOpen('findByIdempotencyKey');
    const id = this.#idempotency.get(key);
    if (id === undefined || !this.#rows.has(id)) return null;
    return this.#read(id, 'findByIdempotencyKey');
  }

  /** Aggregates over every readable row. */
  async stats(): Promise<StoreStats> {
    this.#assertOpen('stats');
    const stats = emptyStats();
    for (const d of this.#all()) if (d.ok) addToStats(stats, d.job);
    return stats;
  }

  /** Deletes terminal jobs that ended before `cutoff`. */
  async deleteTerminalBefore(cutoff: number): Promise<number> {
    this.#assertOpen('deleteTerminalBefore');
    let n = 0;
    for (const d of this.#all()) {
      if (!d.ok || !isTerminal(d.job.status) || d.job.endedAt === null || d.job.endedAt >= cutoff) continue;
      this.#rows.delete(d.job.id);
      if (d.job.idempotencyKey && this.#idempotency.get(d.job.idempotencyKey) === d.job.id) this.#idempotency.delete(d.job.idempotencyKey);
      n += 1;
    }
    return n;
  }

  /** Always healthy while open. */
  async ping(): Promise<void> {
    this.#assertOpen('ping');
  }

  /** Forgets nothing (the map may be shared) but refuses further calls. */
  async close(): Promise<void> {
    this.#state = 'closed';
  }

  #assertOpen(operation: string): void {
    if (this.#state === 'open') return;
    throw this.#state === 'new'
      ? new StoreError('STORE_CLOSED', `${operation}: the memory store was used before init()`, { backend: 'memory', operation })
      : this.#closedError(operation);
  }

  #closedError(operation: string): StoreError {
    return new StoreError('STORE_CLOSED', `${operation}: the memory store is closed`, { backend: 'memory', operation });
  }

  *#all(): Generator<Decoded> {
    for (const id of this.#rows.keys()) yield this.#decode(id);
  }

  #decode(id: string): Decoded {
    const parsed = parseJson(this.#rows.get(id), 'row');
    if (!parsed.ok) return { ok: false, corrupt: { id, error: parsed.error } };
    const checked = checkJob(parsed.value);
    if (!checked.ok) return { ok: false, corrupt: { id, error: checked.error } };
    return { ok: true, job: checked.value };
  }

  #read(id: string, operation: string): JobRecord {
    const d = this.#decode(id);
    if (!d.ok) throw new StoreError('STORE_CORRUPT_ROW', `${operation}: job ${id} cannot be read: ${d.corrupt.error}`, { backend: 'memory', operation, jobId: id });
    return d.job;
  }

  #mustRead(id: string, operation: string): JobRecord {
    if (!this.#rows.has(id)) throw new StoreError('STORE_JOB_NOT_FOUND', `${operation}: no job with id ${id}`, { backend: 'memory', operation, jobId: id });
    return this.#read(id, operation);
  }

  #write(job: JobRecord): JobRecord {
    const text = JSON.stringify(job);
    this.#rows.set(job.id, text);
    return JSON.parse(text) as JobRecord;
  }
}
