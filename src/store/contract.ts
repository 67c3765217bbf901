/**
 * The persistence contract, in domain terms. SQLite, PostgreSQL and Redis implement it and one
 * conformance suite runs against each. Every write is durable when its promise resolves.
 *
 * Common rules: every write sets `updatedAt` to the store clock's now (unless the patch sets it);
 * a job that reaches (or is created in) a terminal state without `endedAt` gets `endedAt = now`;
 * `id`, `createdAt` and `idempotencyKey` are fixed at creation (patch values for them are
 * ignored, so a whole record may be passed as a patch); writes to an unknown
 * job throw `StoreError` `STORE_JOB_NOT_FOUND`; invalid records or patches throw
 * `STORE_INVALID_JOB` and write nothing; an unreachable database surfaces as `STORE_UNAVAILABLE`
 * after the store's own bounded retries (see `./errors.ts`). Record fields the store does not know
 * (added to JobRecord later) are stored and read back untouched, in records and in patches.
 * Attempts are stored as the nodes they change against the job's workflow (see `./workflow-diff.ts`);
 * callers always see whole workflows.
 */
import type { AttemptRecord, Checkpoint, JobRecord, JobStatus, RecoveryStep } from '../jobs/types.js';

export interface JobQuery {
  status?: JobStatus | JobStatus[];
  /** createdAt >= since (ms epoch) */
  since?: number;
  /** createdAt < until (ms epoch) */
  until?: number;
  /** @default 50, max 1000 */
  limit?: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
}

export interface JobPage {
  jobs: JobRecord[];
  nextCursor: string | null;
  /** Rows on this page that could not be read back; they are skipped, not fatal. */
  corrupt?: CorruptJob[];
}

/** A row that could not be read back (bad JSON, half-written). Reported, never fatal. */
export interface CorruptJob {
  id: string;
  error: string;
}

/** Jobs by status, read from counters kept with every write (cost independent of the number of jobs). */
export interface StatusCounts {
  total: number;
  byStatus: Record<JobStatus, number>;
}

/** A (server, workflow hash) pair no job should be sent to until `until` (ms epoch). */
export interface ServerBlock {
  server: string;
  workflowHash: string;
  /** Error code that caused the block, e.g. `COMFYUI_MISSING_NODE`. */
  code: string;
  reason: string;
  until: number;
}

/**
 * What restart recovery needs to queue an unfinished job again, read from indexed columns without
 * decoding the record (its workflow, attempts and history are read when the job runs).
 */
export interface UnfinishedJob {
  id: string;
  status: JobStatus;
  priority: number;
  createdAt: number;
  /** The server and prompt of its current attempt, when it has one. */
  server: string | null;
  promptId: string | null;
}

/** One page of unfinished jobs for restart recovery. */
export interface UnfinishedPage {
  jobs: UnfinishedJob[];
  /**
   * Unreadable rows met on this page (also quarantined: see `listCorrupt`). A store that reads
   * only indexed columns meets none here: a damaged row is quarantined when the job is read to run.
   */
  corrupt: CorruptJob[];
  /** Pass back to get the next page; null after the last. */
  nextCursor: string | null;
}

export interface StoreStats {
  total: number;
  byStatus: Record<JobStatus, number>;
  /** Count of jobs by final error code (failed/timed_out jobs). */
  errorsByCode: Record<string, number>;
  /** Failed attempts by error code (every failure, including those recovered from). */
  attemptErrorsByCode: Record<string, number>;
  /** Terminal jobs that needed at least one retry, and how many of them completed. */
  retriedJobs: { terminal: number; completed: number };
  /** Recovery steps by strategy and outcome. */
  recoveries: Record<string, { succeeded: number; failed: number; pending: number }>;
  totalAttempts: number;
  totalRetries: number;
}

export interface JobStore {
  /** Connects, creates or migrates the schema. Idempotent. */
  init(): Promise<void>;
  /**
   * Inserts a new job. With an idempotency key that already exists, inserts nothing and returns
   * the existing job with `created: false`.
   */
  createJob(job: JobRecord): Promise<{ created: boolean; job: JobRecord }>;
  getJob(id: string): Promise<JobRecord | null>;
  /**
   * Compare-and-set on status: applies `patch` and sets `status = to` only if the job's status is
   * one of `from`. Returns the updated job, or null if another writer won (or the job is unknown).
   */
  transition(id: string, from: JobStatus | readonly JobStatus[], to: JobStatus, patch?: Partial<JobRecord>): Promise<JobRecord | null>;
  /** Inserts or replaces the attempt with the same number; also sets the job's server/promptId. */
  recordAttempt(id: string, attempt: AttemptRecord): Promise<void>;
  /** Appends a recovery step, or replaces the last one when `replaceLast` (to record its outcome). */
  appendRecoveryStep(id: string, step: RecoveryStep, opts?: { replaceLast?: boolean }): Promise<void>;
  updateProgress(id: string, progress: number, checkpoint?: Checkpoint): Promise<void>;
  /** Generic patch for fields without a domain method (outputs, error, retryCount...). No status change. */
  patchJob(id: string, patch: Partial<Omit<JobRecord, 'id' | 'status'>>): Promise<void>;
  /** Every job not in a terminal state, oldest first; unreadable rows are reported in `corrupt`. */
  listNonTerminal(): Promise<{ jobs: JobRecord[]; corrupt: CorruptJob[] }>;
  /**
   * Unfinished jobs one page at a time (running, then recovering, then queued; oldest first within
   * each), as summaries, so restart recovery never holds every job in memory nor decodes records it
   * only queues. Each page costs O(log n + limit). Rows already quarantined may be left out
   * (`listCorrupt` lists them). Jobs that change status while paging may be missed or seen twice; callers dedupe.
   * @param opts.limit @default 500, max 5000
   */
  listUnfinished(opts?: { cursor?: string | null; limit?: number }): Promise<UnfinishedPage>;
  /**
   * Rows a read has found unreadable (bad JSON, wrong shape), with their id and what is wrong.
   * Such rows are quarantined when first met: left out of `stats()` and `countByStatus()` from then
   * on, listed here until `deleteJob` removes them. A damaged unfinished job is listed here once
   * restart recovery or the run that reads it has met it.
   */
  listCorrupt(): Promise<CorruptJob[]>;
  /** Deletes one job whatever its state or readability (an operator's removal of a damaged row). True if it existed. */
  deleteJob(id: string): Promise<boolean>;
  /** Newest first. */
  query(q: JobQuery): Promise<JobPage>;
  findByIdempotencyKey(key: string): Promise<JobRecord | null>;
  /**
   * Aggregates over every readable job. Read from counters the store keeps in step with each
   * write, so its cost does not grow with the number of stored jobs.
   */
  stats(): Promise<StoreStats>;
  /** The cheapest stats path: totals by status only (for health checks and queue views). */
  countByStatus(): Promise<StatusCounts>;
  /** Records (or replaces) a block of `server` for one workflow hash until `until`. */
  blockServer(block: ServerBlock): Promise<void>;
  /** Blocks for a workflow hash still in force at `now`; expired ones are ignored (and removed). */
  blockedServers(workflowHash: string, now: number): Promise<Array<Omit<ServerBlock, 'workflowHash'>>>;
  /** A small persistent value (instance identity, learned data), or null when unset. */
  getMeta(key: string): Promise<unknown>;
  /** Sets a JSON-serialisable value; `null` is stored as null (use it to clear). */
  setMeta(key: string, value: unknown): Promise<void>;
  /** Every key starting with `prefix`, sorted by key. */
  listMeta(prefix: string): Promise<Array<{ key: string; value: unknown }>>;
  /** Deletes terminal jobs whose endedAt < cutoff (ms epoch). Returns how many. */
  deleteTerminalBefore(cutoff: number): Promise<number>;
  /**
   * Deletes those of `ids` that are still terminal with endedAt < cutoff, each checked and deleted
   * atomically (a job retried meanwhile is kept); returns the ids it deleted. Cleanup that also
   * deletes output files uses it, so outputs go only with their record. At most 1000 ids a call.
   */
  deleteTerminal(ids: readonly string[], cutoff: number): Promise<string[]>;
  /** Cheap liveness check for health endpoints. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
