/**
 * What a session of `serve` or `demo` did, for the summary printed when it stops: jobs that ended
 * while it ran, completed, recovered (completed after at least one recovery step) and failed.
 */
import type { Guard } from '../jobs/guard-api.js';
import type { JobRecord } from '../jobs/types.js';

/** Counts of jobs that reached a terminal state in this process. */
export interface Tally {
  jobs: number;
  completed: number;
  recovered: number;
  failed: number;
  cancelled: number;
}

const TERMINAL = new Set(['completed', 'failed', 'timed_out', 'cancelled']);

/** Counts terminal jobs from the guard's events until `stop()`. */
export class SessionTally {
  readonly #seen = new Map<string, JobRecord['status']>();
  readonly #recovered = new Set<string>();
  readonly #off: () => void;

  constructor(guard: Pick<Guard, 'onEvent'>) {
    this.#off = guard.onEvent((e) => {
      if (e.type !== 'state' || !TERMINAL.has(e.to)) return;
      this.#seen.set(e.jobId, e.to);
      if (e.to === 'completed' && e.job.recoveryHistory.length > 0) this.#recovered.add(e.jobId);
    });
  }

  /** The counts so far. */
  counts(): Tally {
    const t: Tally = { jobs: this.#seen.size, completed: 0, recovered: this.#recovered.size, failed: 0, cancelled: 0 };
    for (const s of this.#seen.values()) {
      if (s === 'completed') t.completed++;
      else if (s === 'cancelled') t.cancelled++;
      else t.failed++;
    }
    return t;
  }

  stop(): void {
    this.#off();
  }
}

/** "6 jobs finished: 5 completed (2 after recovery), 1 failed". */
export function describeTally(t: Tally): string {
  if (t.jobs === 0) return 'no job finished';
  const parts = [`${t.completed} completed${t.recovered > 0 ? ` (${t.recovered} after recovery)` : ''}`];
  if (t.failed > 0) parts.push(`${t.failed} failed`);
  if (t.cancelled > 0) parts.push(`${t.cancelled} cancelled`);
  return `${t.jobs} job${t.jobs === 1 ? '' : 's'} finished: ${parts.join(', ')}`;
}
