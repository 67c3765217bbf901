/**
 * The job state machine as a pure transition table. Every status change goes through
 * `assertTransition`, so an illegal move is a bug caught at once, not a corrupt row.
 */
import type { JobStatus } from './types.js';

const ALLOWED: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  queued: ['running', 'cancelled', 'failed', 'timed_out'],
  running: ['recovering', 'completed', 'failed', 'timed_out', 'cancelled', 'queued'],
  recovering: ['running', 'failed', 'timed_out', 'cancelled', 'queued'],
  // A manual retry puts a finished-but-unsuccessful job back in the queue.
  failed: ['queued'],
  timed_out: ['queued'],
  cancelled: ['queued'],
  completed: [],
};

/** Whether `from -> to` is a legal move. */
export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return ALLOWED[from].includes(to);
}

/** Statuses from which `to` can be reached (used for compare-and-set `from` lists). */
export function sourcesOf(to: JobStatus): JobStatus[] {
  return (Object.keys(ALLOWED) as JobStatus[]).filter((s) => ALLOWED[s].includes(to));
}

/** Throws if `from -> to` is illegal. */
export function assertTransition(from: JobStatus, to: JobStatus): void {
  if (!canTransition(from, to)) {
    throw new Error(`illegal job transition ${from} -> ${to}`);
  }
}
