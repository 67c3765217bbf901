/**
 * The public surface of a guard: what a library user gets from `createGuard(options)`, and the only
 * thing `server/` and `cli/` use. Implemented in `jobs/guard.ts`.
 */
import type { ApiWorkflow } from '../comfy/types.js';
import type { JobQuery, JobPage } from '../store/contract.js';
import type { CleanupReport } from './cleanup.js';
import type { ErrorAnalyticsSnapshot } from './error-analytics.js';
import type { GuardEvent, JobEvent } from './events.js';
import type { LearnedMemory } from './learned-memory.js';
import type { JobOptions, JobParams, JobRecord, JobStatus } from './types.js';

export type { AttemptOutcome, ComfyExecutionMessage, GuardEvent, JobEvent, PoolChangeEvent } from './events.js';
export type { LearnedMemory, LearnedMemoryEntry } from './learned-memory.js';

/** Analytics events (names and fields are part of the contract). */
export type AnalyticsEvent =
  | { name: 'comfyui_retry_attempted'; promptId: string; attempt: number; errorType: string }
  | { name: 'comfyui_retry_succeeded'; promptId: string; attempt: number; totalRetries: number }
  | { name: 'comfyui_retry_exhausted'; promptId: string; totalRetries: number; finalError: string }
  | { name: 'job_submitted' | 'job_started' | 'job_completed' | 'job_failed' | 'job_cancelled' | 'job_timed_out'; jobId: string; [k: string]: unknown };

/** A receiver of analytics events. Sinks must not throw; errors are logged and dropped. */
export type AnalyticsSink = (event: AnalyticsEvent) => void;

export interface SubmitResult {
  id: string;
  status: JobStatus;
  /** false when an idempotency key matched an existing job. */
  created: boolean;
}

export type DegradationLevel = 'full' | 'high' | 'medium' | 'low' | 'minimal';

export interface ServerHealthView {
  name: string;
  url: string;
  healthy: boolean;
  latencyMs: number | null;
  vramTotal: number | null;
  vramFree: number | null;
  queueRemaining: number | null;
  breaker: 'closed' | 'open' | 'half_open' | 'isolated';
  lastError: string | null;
  checkedAt: number | null;
  tags: string[];
  /** Taken out of rotation by `drain`: running prompts finish, nothing new is sent. */
  drained: boolean;
}

export interface GuardStats {
  totalJobs: number;
  byStatus: Record<JobStatus, number>;
  totalErrors: number;
  successfulRecoveries: number;
  failedRecoveries: number;
  /** successfulRecoveries / (successful + failed), 0 when none. */
  recoveryRate: number;
  /** Share of terminal jobs that needed a retry and still ended completed. */
  retrySuccessRate: number;
  /** Every failed attempt by error code, including failures that recovery fixed. */
  errorDistribution: Record<string, number>;
  /** Jobs that ended failed or timed out, by their final error code. */
  failuresByCode: Record<string, number>;
  byStrategy: Record<string, { succeeded: number; failed: number; pending: number }>;
  degradation: DegradationLevel;
  /**
   * Error analytics of the events this process saw since it started (kept incrementally, no store
   * scan); absent when the guard's `errorAnalytics` option is false (RECOVERY_STATISTICS_ENABLED=false).
   */
  analytics?: ErrorAnalyticsSnapshot;
}

export interface Guard {
  /** Accepts a job and returns at once; the job is persisted before this resolves. */
  submit(workflow: ApiWorkflow, options?: JobOptions & { params?: JobParams }): Promise<SubmitResult>;
  get(id: string): Promise<JobRecord | null>;
  list(filter?: JobQuery): Promise<JobPage>;
  /** Resolves with the job once it is terminal. */
  wait(id: string, opts?: { signal?: AbortSignal }): Promise<JobRecord>;
  /** The job's events until it is terminal (the first is its current state, the last its terminal state). */
  progress(id: string, opts?: { signal?: AbortSignal }): AsyncIterable<JobEvent>;
  /** Starts a new attempt of a failed job from its original workflow. Refused for non-retryable codes unless forced. */
  retry(id: string, opts?: { force?: boolean }): Promise<JobRecord>;
  cancel(id: string): Promise<JobRecord>;
  /** Cancels every job, interrupts every server and clears their queues; leaves the guard paused until `resume()`. */
  emergencyStop(): Promise<{ cancelled: number; servers: number }>;
  /** Stops starting queued jobs (running ones go on, new submissions are accepted and wait). */
  pause(): void;
  /** Starts queued jobs again. */
  resume(): void;
  /** Whether the guard is paused. */
  isPaused(): boolean;
  /** Takes a server out of rotation (`on: false` puts it back); its running prompts finish. */
  drain(server: string, on?: boolean): void;
  /** The store's all-time totals, plus this process's error analytics (unless `errorAnalytics: false`). */
  stats(): Promise<GuardStats>;
  /** Health of every server (cached health checks). */
  servers(): Promise<ServerHealthView[]>;
  degradation(): DegradationLevel;
  /**
   * What the memory model learned, per (server, workflow shape): bounds on the real need as multiples
   * of the shape estimate, from OOMs and successes of every process sharing the store.
   */
  memoryModel(): Promise<LearnedMemory>;
  /** Stored jobs that cannot be read (damaged rows), with their ids; they are left out of stats and listed until deleted. */
  listCorrupt(): Promise<Array<{ id: string; error: string }>>;
  /** Removes one stored job (a damaged row, typically); true when it existed. A running job is cancelled first. */
  deleteJob(id: string): Promise<boolean>;
  /**
   * Deletes terminal jobs that ended more than `olderThanHours` ago; with `cleanupOutputs`, also
   * their output files where the server allows it, saying per job and file what could not be deleted.
   */
  cleanup(olderThanHours: number): Promise<CleanupReport>;
  /** Subscribes to the whole event stream (every job's events and the pool's); returns an unsubscribe function. */
  onEvent(listener: (e: GuardEvent) => void): () => void;
  /** Downloads an output file through the server that made it. */
  fetchOutput(server: string, file: { filename: string; subfolder?: string; type?: string }): Promise<{ contentType: string; data: Uint8Array }>;
  /** Stops accepting jobs, waits for in-flight work to reach a safe point, closes everything. */
  close(): Promise<void>;
}
