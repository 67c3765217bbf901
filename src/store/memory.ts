/**
 * In-process store for unit tests and the `memory:` URL. Rows are kept as JSON text, exactly as a
 * database would hold them, so callers get the same copy semantics (and the same serialisation
 * failures) as with a real backend. Nothing survives the process.
 */
import { isTerminal, type AttemptRecord, type Checkpoint, type JobRecord, type JobStatus, type RecoveryStep } from '../jobs/types.js';
import { systemClock, type Clock } from '../util/clock.js';
import { checkJob, parseJson } from './codec.js';
import type { CorruptJob, JobPage, JobQuery, JobStore, ServerBlock, StatusCounts, StoreStats, UnfinishedJob, UnfinishedPage } from './contract.js';
import { contributionDelta, countsFromCounters, statsFromCounters } from './counters.js';
import { StoreError } from './errors.js';
import { decodeUnfinishedCursor, encodeUnfinishedCursor, matchesQuery, newerFirst, normalizeQuery, toPage, UNFINISHED_ORDER, unfinishedLimit, unfinishedSummary } from './query.js';
import { decodeDoc, encodeDoc } from './workflow-diff.js';
import {
  applyAttempt,
  applyPatch,
  applyProgress,
  applyRecoveryStep,
  applyTransition,
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

export interface MemoryStoreOptions {
  /** @default systemClock */
  clock?: Clock;
  /**
   * The backing map (job id -> JSON text). Passing one lets a test simulate a damaged row the way
   * it would write one with a database driver.
   */
  rows?: Map<string, string>;
  /** The backing meta map (key -> JSON text); pass the same one to simulate a reopen. */
  meta?: Map<string, string>;
  /** The backing server blocks (workflow hash -> server -> block); pass the same one to simulate a reopen. */
  blocks?: Map<string, Map<string, Omit<ServerBlock, 'workflowHash'>>>;
}

type Decoded = { ok: true; job: JobRecord } | { ok: false; corrupt: CorruptJob };

/** A JobStore held in a Map; every method behaves as the SQL and Redis stores do. */
export class MemoryStore implements JobStore {
  readonly #clock: Clock;
  readonly #rows: Map<string, string>;
  readonly #idempotency = new Map<string, string>();
  readonly #counters = new Map<string, number>();
  readonly #quarantined = new Map<string, string>();
  readonly #meta: Map<string, string>;
  readonly #blocks: Map<string, Map<string, Omit<ServerBlock, 'workflowHash'>>>;
  /** Bumped on every write; the unfinished-walk snapshot is rebuilt when it changed. */
  #version = 0;
  #unfinished: { version: number; list: Array<{ status: number; createdAt: number; id: string }> } | null = null;
  #state: 'new' | 'open' | 'closed' = 'new';

  constructor(opts: MemoryStoreOptions = {}) {
    this.#clock = opts.clock ?? systemClock;
    this.#rows = opts.rows ?? new Map();
    this.#meta = opts.meta ?? new Map();
    this.#blocks = opts.blocks ?? new Map();
  }

  /** Marks the store usable and indexes idempotency keys of rows passed in. */
  async init(): Promise<void> {
    if (this.#state === 'closed') throw this.#closedError('init');
    if (this.#state === 'open') return;
    for (const d of this.#all()) {
      if (!d.ok) continue;
      if (d.job.idempotencyKey) this.#idempotency.set(d.job.idempotencyKey, d.job.id);
      this.#count(null, d.job);
    }
    this.#state = 'open';
  }

  /** Inserts a job, honouring its idempotency key. */
  async createJob(input: JobRecord): Promise<{ created: boolean; job: JobRecord }> {
    this.#assertOpen('createJob');
    const checked = checkJob(input);
    const job = checked.ok ? stampEnd(input, this.#clock.now()) : input;
    if (!checked.ok) throw new StoreError('STORE_INVALID_JOB', `createJob: invalid job ${String(job?.id)}: ${checked.error}`, { backend: 'memory', operation: 'createJob', jobId: job?.id });
    assertExtraNames('memory', 'createJob', job.id, job);
    if (job.idempotencyKey) {
      const existingId = this.#idempotency.get(job.idempotencyKey);
      const existing = existingId === undefined ? undefined : this.#decode(existingId);
      if (existing?.ok) return { created: false, job: existing.job };
    }
    if (this.#rows.has(job.id)) throw new StoreError('STORE_DUPLICATE_JOB', `createJob: a job with id ${job.id} already exists`, { backend: 'memory', operation: 'createJob', jobId: job.id });
    const stored = this.#write(null, job);
    if (job.idempotencyKey) this.#idempotency.set(job.idempotencyKey, job.id);
    return { created: true, job: stored };
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
    return this.#write(job, applyTransition(job, to, clean, this.#clock.now()));
  }

  /** Upserts an attempt by number. */
  async recordAttempt(id: string, attempt: AttemptRecord): Promise<void> {
    this.#assertOpen('recordAttempt');
    assertAttempt('memory', id, attempt);
    const job = this.#mustRead(id, 'recordAttempt');
    this.#write(job, applyAttempt(job, attempt, this.#clock.now()));
  }

  /** Appends or replaces the last recovery step. */
  async appendRecoveryStep(id: string, step: RecoveryStep, opts?: { replaceLast?: boolean }): Promise<void> {
    this.#assertOpen('appendRecoveryStep');
    assertRecoveryStep('memory', id, step);
    const job = this.#mustRead(id, 'appendRecoveryStep');
    this.#write(job, applyRecoveryStep(job, step, opts?.replaceLast === true, this.#clock.now()));
  }

  /** Sets progress and, when given, the checkpoint. */
  async updateProgress(id: string, progress: number, checkpoint?: Checkpoint): Promise<void> {
    this.#assertOpen('updateProgress');
    assertProgress('memory', id, progress, checkpoint);
    const job = this.#mustRead(id, 'updateProgress');
    this.#write(job, applyProgress(job, progress, checkpoint, this.#clock.now()));
  }

  /** Patches fields other than id and status. */
  async patchJob(id: string, patch: Partial<Omit<JobRecord, 'id' | 'status'>>): Promise<void> {
    this.#assertOpen('patchJob');
    const clean = cleanPatch('memory', 'patchJob', id, patch);
    const job = this.#mustRead(id, 'patchJob');
    this.#write(job, applyPatch(job, clean, this.#clock.now()));
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

  /** Unfinished jobs a page at a time, from a sorted snapshot rebuilt only after writes. */
  async listUnfinished(opts: { cursor?: string | null; limit?: number } = {}): Promise<UnfinishedPage> {
    this.#assertOpen('listUnfinished');
    const limit = unfinishedLimit(opts.limit);
    const after = decodeUnfinishedCursor(opts.cursor, 'memory');
    const list = this.#unfinishedSnapshot();
    let lo = 0;
    if (after) {
      // First entry strictly after the cursor (binary search over the sorted snapshot).
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        const e = list[mid];
        if (e && compareWalk(e, after) <= 0) lo = mid + 1;
        else hi = mid;
      }
    }
    const slice = list.slice(lo, lo + limit);
    const jobs: UnfinishedJob[] = [];
    const corrupt: CorruptJob[] = [];
    for (const e of slice) {
      if (!this.#rows.has(e.id)) continue;
      const d = this.#decode(e.id);
      if (d.ok) jobs.push(unfinishedSummary(d.job));
      else corrupt.push(d.corrupt);
    }
    const last = slice[slice.length - 1];
    return { jobs, corrupt, nextCursor: lo + limit < list.length && last ? encodeUnfinishedCursor(last) : null };
  }

  /** Rows a read found unreadable. */
  async listCorrupt(): Promise<CorruptJob[]> {
    this.#assertOpen('listCorrupt');
    return [...this.#quarantined].filter(([id]) => this.#rows.has(id)).map(([id, error]) => ({ id, error })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Deletes one job by id, readable or not. */
  async deleteJob(id: string): Promise<boolean> {
    this.#assertOpen('deleteJob');
    if (!this.#rows.has(id)) return false;
    const d = this.#quarantined.has(id) ? null : this.#decode(id);
    if (d?.ok) {
      this.#count(d.job, null);
      if (d.job.idempotencyKey && this.#idempotency.get(d.job.idempotencyKey) === id) this.#idempotency.delete(d.job.idempotencyKey);
    }
    this.#rows.delete(id);
    this.#quarantined.delete(id);
    this.#version++;
    return true;
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

  /** Aggregates from counters kept with every write. */
  async stats(): Promise<StoreStats> {
    this.#assertOpen('stats');
    return statsFromCounters(this.#counters);
  }

  /** Totals by status. */
  async countByStatus(): Promise<StatusCounts> {
    this.#assertOpen('countByStatus');
    return countsFromCounters(this.#counters);
  }

  /** Records a block. */
  async blockServer(block: ServerBlock): Promise<void> {
    this.#assertOpen('blockServer');
    assertBlock('memory', block);
    const { workflowHash, ...rest } = block;
    let m = this.#blocks.get(workflowHash);
    if (!m) this.#blocks.set(workflowHash, (m = new Map()));
    m.set(block.server, { server: rest.server, code: rest.code, reason: rest.reason, until: rest.until });
  }

  /** Blocks in force at `now`; forgets expired ones. */
  async blockedServers(workflowHash: string, now: number): Promise<Array<Omit<ServerBlock, 'workflowHash'>>> {
    this.#assertOpen('blockedServers');
    const m = this.#blocks.get(workflowHash);
    if (!m) return [];
    for (const [server, b] of m) if (b.until <= now) m.delete(server);
    if (m.size === 0) this.#blocks.delete(workflowHash);
    return [...m.values()].sort((a, b) => (a.server < b.server ? -1 : a.server > b.server ? 1 : 0)).map((b) => ({ ...b }));
  }

  /** A meta value, or null. */
  async getMeta(key: string): Promise<unknown> {
    this.#assertOpen('getMeta');
    const text = this.#meta.get(key);
    return text === undefined ? null : (JSON.parse(text) as unknown);
  }

  /** Sets a meta value. */
  async setMeta(key: string, value: unknown): Promise<void> {
    this.#assertOpen('setMeta');
    this.#meta.set(key, metaText('memory', key, value));
  }

  /** Meta entries under a prefix, by key. */
  async listMeta(prefix: string): Promise<Array<{ key: string; value: unknown }>> {
    this.#assertOpen('listMeta');
    return [...this.#meta]
      .filter(([k]) => k.startsWith(prefix))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, text]) => ({ key, value: JSON.parse(text) as unknown }));
  }

  /** Deletes those of `ids` still terminal and ended before `cutoff`; returns them. */
  async deleteTerminal(ids: readonly string[], cutoff: number): Promise<string[]> {
    this.#assertOpen('deleteTerminal');
    const wanted = new Set(ids);
    const out: string[] = [];
    for (const d of this.#all()) {
      if (!d.ok || !wanted.has(d.job.id) || !isTerminal(d.job.status) || d.job.endedAt === null || d.job.endedAt >= cutoff) continue;
      this.#count(d.job, null);
      this.#rows.delete(d.job.id);
      this.#version++;
      if (d.job.idempotencyKey && this.#idempotency.get(d.job.idempotencyKey) === d.job.id) this.#idempotency.delete(d.job.idempotencyKey);
      out.push(d.job.id);
    }
    return out;
  }

  /** Deletes terminal jobs that ended before `cutoff`. */
  async deleteTerminalBefore(cutoff: number): Promise<number> {
    this.#assertOpen('deleteTerminalBefore');
    let n = 0;
    for (const d of this.#all()) {
      if (!d.ok || !isTerminal(d.job.status) || d.job.endedAt === null || d.job.endedAt >= cutoff) continue;
      this.#count(d.job, null);
      this.#rows.delete(d.job.id);
      this.#version++;
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
    const checked = parsed.ok ? checkJob(decodeDoc(parsed.value)) : parsed;
    if (checked.ok) return { ok: true, job: checked.value };
    // A damaged row is quarantined when first met: listed by listCorrupt, never counted.
    if (!this.#quarantined.has(id)) this.#quarantined.set(id, checked.error);
    return { ok: false, corrupt: { id, error: checked.error } };
  }

  #count(prev: JobRecord | null, next: JobRecord | null): void {
    for (const [k, n] of contributionDelta(prev, next)) {
      const v = (this.#counters.get(k) ?? 0) + n;
      if (v === 0) this.#counters.delete(k);
      else this.#counters.set(k, v);
    }
  }

  #unfinishedSnapshot(): Array<{ status: number; createdAt: number; id: string }> {
    if (this.#unfinished?.version === this.#version) return this.#unfinished.list;
    const list: Array<{ status: number; createdAt: number; id: string }> = [];
    for (const d of this.#all()) {
      // Damaged rows keep their place in the walk (by the id) so recovery reports them.
      const status = d.ok ? (UNFINISHED_ORDER as readonly string[]).indexOf(d.job.status) : UNFINISHED_ORDER.length - 1;
      if (status >= 0) list.push({ status, createdAt: d.ok ? d.job.createdAt : 0, id: d.ok ? d.job.id : d.corrupt.id });
    }
    list.sort(compareWalk);
    this.#unfinished = { version: this.#version, list };
    return list;
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

  #write(prev: JobRecord | null, job: JobRecord): JobRecord {
    this.#rows.set(job.id, JSON.stringify(encodeDoc(job)));
    this.#count(prev, job);
    this.#version++;
    // A copy through JSON, as a database round trip would give.
    return JSON.parse(JSON.stringify(job)) as JobRecord;
  }
}

/** Order of the unfinished walk: status group, then (createdAt, id) ascending. */
function compareWalk(a: { status: number; createdAt: number; id: string }, b: { status: number; createdAt: number; id: string }): number {
  return a.status - b.status || a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
