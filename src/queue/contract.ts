/**
 * The dispatch contract: which job runs next, and how many at once. The in-process dispatcher is the
 * default; BullMQ shares the work between several comfyguard processes through Redis.
 */

/** Runs one job to a terminal state (or until the signal aborts for shutdown). */
export type JobHandler = (jobId: string, signal: AbortSignal) => Promise<void>;

export interface Dispatcher {
  /** Starts delivering jobs to `handler`. */
  start(handler: JobHandler): Promise<void>;
  /** Queues a job; higher priority first, then first in first out. Enqueuing a queued id again is a no-op. */
  enqueue(jobId: string, priority: number): Promise<void>;
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
