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
 * after the store's own bounded retries (see `./errors.ts`).
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
  /** Newest first. */
  query(q: JobQuery): Promise<JobPage>;
  findByIdempotencyKey(key: string): Promise<JobRecord | null>;
  stats(): Promise<StoreStats>;
  /** Deletes terminal jobs whose endedAt < cutoff (ms epoch). Returns how many. */
  deleteTerminalBefore(cutoff: number): Promise<number>;
  /** Cheap liveness check for health endpoints. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
