/**
 * The dispatch contract: which job runs next, and how many at once. The in-process dispatcher is the
 * default; BullMQ shares the work between several comfyguard processes through Redis.
 */

/** Runs one job to a terminal state (or until the signal aborts for shutdown). */
export type JobHandler = (jobId: string, signal: AbortSignal) => Promise<void>;

export interface Dispatcher {
  /** Starts delivering jobs to `handler`. */
  start(handler: JobHandler): Promise<void>;
  /**
   * Queues a job; higher priority first, then first in first out. Enqueuing an id that is waiting
   * is a no-op. Enqueuing an id that is running (in any process) makes it run once more after the
   * current run ends, however many times it is asked, so a retry or cancel requested while a run
   * is finishing is never lost; the handler reads the job's state from the store and decides.
   */
  enqueue(jobId: string, priority: number): Promise<void>;
  /**
   * Queues many jobs in few round trips (restart recovery). Same order and dedupe rules as
   * `enqueue`, except that an id already running is left alone (no extra run).
   */
  enqueueMany(jobs: ReadonlyArray<{ id: string; priority: number }>): Promise<void>;
  /** Removes a job that has not started yet; true if it was removed. */
  remove(jobId: string): Promise<boolean>;
  /** Jobs waiting and running. */
  counts(): Promise<{ waiting: number; active: number }>;
  /** Resolves when nothing is waiting or running. */
  onIdle(): Promise<void>;
  /** Stops taking jobs; aborts running handlers' signals and waits for them. Idempotent. */
  close(): Promise<void>;
  readonly kind: 'in-process' | 'bullmq';
}
