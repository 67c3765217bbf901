/**
 * Goodput accounting: how much server time went into results and how much was lost. Fed with a
 * guard's events (`attempt_started`, `attempt_settled` with durationMs, and ComfyUI's
 * `execution_cached` / `executing` messages of each attempt), it keeps, per job, per error code
 * and per server:
 * - failed: seconds of attempts that ended in a failure (or were lost/interrupted);
 * - succeeded: seconds of the attempt that produced the result;
 * - saved: seconds a successful attempt did not spend because nodes came from the cache (a resume
 *   on the same server, or ComfyUI's cache across jobs), estimated as the share of the attempt's
 *   nodes served from the cache times the duration of the job's previous failed attempt (0 when
 *   there was none: a cache hit on a first attempt saves time we never measured).
 * Pure bookkeeping: no timers, no I/O. "GPU-seconds" are wall seconds of one server's queue slot.
 * What it keeps is what this process saw since it started (events are not replayed from the store);
 * `goodputOfJob` derives one job's figures from its stored attempts instead, for any process.
 */
import type { GuardEvent } from '../jobs/events.js';
import type { JobRecord } from '../jobs/types.js';

/** Seconds, summed. */
export interface GoodputTotals {
  failedSeconds: number;
  succeededSeconds: number;
  savedSeconds: number;
  attempts: number;
  failedAttempts: number;
}

export interface GoodputReport {
  total: GoodputTotals;
  byJob: Record<string, GoodputTotals>;
  /** Failed seconds by the error code of the failure (successes are not by code). */
  byCode: Record<string, GoodputTotals>;
  byServer: Record<string, GoodputTotals>;
}

/** What one settled attempt added (the increments a metrics counter needs). */
export interface GoodputEntry {
  jobId: string;
  server: string;
  /** The error code of a failed attempt; null for the successful one. */
  code: string | null;
  outcome: 'failed' | 'succeeded';
  seconds: number;
  savedSeconds: number;
}

export interface GoodputOptions {
  /** Keep `byJob` (off for long-lived aggregates that only need totals). @default true */
  perJob?: boolean;
  /** At most this many jobs are kept in `byJob` and in the resume bookkeeping; the oldest go first. @default 10_000 */
  maxJobs?: number;
}

const zero = (): GoodputTotals => ({ failedSeconds: 0, succeededSeconds: 0, savedSeconds: 0, attempts: 0, failedAttempts: 0 });

interface AttemptSeen {
  cached: Set<string>;
  executed: Set<string>;
}

/** Accumulates goodput from a guard's event stream. */
export class GoodputAccumulator {
  readonly #report: GoodputReport = { total: zero(), byJob: {}, byCode: {}, byServer: {} };
  readonly #attempts = new Map<string, AttemptSeen>();
  /** Duration of each job's last failed attempt, in seconds. */
  readonly #lastFailed = new Map<string, number>();
  /** Jobs in `byJob`, oldest first, so the map stays bounded in a long-lived process. */
  readonly #jobOrder = new Set<string>();
  readonly #perJob: boolean;
  readonly #maxJobs: number;

  constructor(opts: GoodputOptions = {}) {
    this.#perJob = opts.perJob ?? true;
    this.#maxJobs = opts.maxJobs ?? 10_000;
  }

  /** Feeds one event (others than the ones above are ignored); returns what a settled attempt added. */
  observe(e: GuardEvent): GoodputEntry | null {
    if (e.type === 'attempt_started') {
      // Attempts that never settle here (the process closed first) must not pile up.
      if (this.#attempts.size >= this.#maxJobs) this.#attempts.delete(this.#attempts.keys().next().value as string);
      this.#attempts.set(`${e.jobId}#${e.attempt}`, { cached: new Set(), executed: new Set() });
    } else if (e.type === 'comfy') {
      const seen = this.#attempts.get(`${e.jobId}#${e.attempt}`);
      if (!seen) return null;
      const m = e.message;
      if (m.type === 'execution_cached') for (const n of m.data.nodes) seen.cached.add(n);
      else if (m.type === 'executing' && m.data.node !== null) seen.executed.add(m.data.node);
    } else if (e.type === 'attempt_settled') {
      if (e.outcome === 'detached' || e.outcome === 'cancelled') {
        this.#attempts.delete(`${e.jobId}#${e.attempt}`);
        return null;
      }
      const seconds = Math.max(0, e.durationMs) / 1000;
      const key = `${e.jobId}#${e.attempt}`;
      const seen = this.#attempts.get(key);
      this.#attempts.delete(key);
      const ok = e.outcome === 'completed';
      const buckets = [this.#report.total, (this.#report.byServer[e.server] ??= zero())];
      if (this.#perJob) buckets.push(this.#jobBucket(e.jobId));
      if (!ok) buckets.push((this.#report.byCode[e.code ?? 'UNKNOWN'] ??= zero()));
      let saved = 0;
      if (ok && seen) {
        const nodes = seen.cached.size + [...seen.executed].filter((n) => !seen.cached.has(n)).length;
        const share = nodes > 0 ? seen.cached.size / nodes : 0;
        saved = share * (this.#lastFailed.get(e.jobId) ?? 0);
      }
      for (const b of buckets) {
        b.attempts += 1;
        if (ok) {
          b.succeededSeconds += seconds;
          b.savedSeconds += saved;
        } else {
          b.failedSeconds += seconds;
          b.failedAttempts += 1;
        }
      }
      if (ok) this.#lastFailed.delete(e.jobId);
      else {
        this.#lastFailed.delete(e.jobId);
        if (this.#lastFailed.size >= this.#maxJobs) this.#lastFailed.delete(this.#lastFailed.keys().next().value as string);
        this.#lastFailed.set(e.jobId, seconds);
      }
      return { jobId: e.jobId, server: e.server, code: ok ? null : (e.code ?? 'UNKNOWN'), outcome: ok ? 'succeeded' : 'failed', seconds, savedSeconds: saved };
    }
    return null;
  }

  #jobBucket(jobId: string): GoodputTotals {
    const have = this.#report.byJob[jobId];
    if (have) return have;
    if (this.#jobOrder.size >= this.#maxJobs) {
      const oldest = this.#jobOrder.values().next().value as string;
      this.#jobOrder.delete(oldest);
      delete this.#report.byJob[oldest];
    }
    this.#jobOrder.add(jobId);
    return (this.#report.byJob[jobId] = zero());
  }

  /** A copy of the totals so far. */
  report(): GoodputReport {
    return structuredClone(this.#report);
  }
}

const SETTLED: ReadonlySet<string> = new Set(['completed', 'failed', 'interrupted', 'lost']);

/**
 * One job's goodput from its stored attempts (any process can compute it, after a restart too):
 * failed and succeeded seconds from each ended attempt's start and end. `savedSeconds` is always 0
 * here: which nodes came from the cache is not stored with the attempt.
 * @example goodputOfJob(await guard.get(id)) // { failedSeconds: 4.2, succeededSeconds: 11, savedSeconds: 0, attempts: 2, failedAttempts: 1 }
 */
export function goodputOfJob(job: Pick<JobRecord, 'attempts'>): GoodputTotals {
  const t = zero();
  for (const a of job.attempts) {
    // Running attempts have not cost their full time yet; a cancelled one was the user's choice.
    if (a.endedAt === undefined || !SETTLED.has(a.status)) continue;
    const seconds = Math.max(0, a.endedAt - a.startedAt) / 1000;
    t.attempts += 1;
    if (a.status === 'completed') t.succeededSeconds += seconds;
    else {
      t.failedSeconds += seconds;
      t.failedAttempts += 1;
    }
  }
  return t;
}

/** Goodput of a recorded event list (a bench run, a replayed log). */
export function goodputOf(events: Iterable<GuardEvent>): GoodputReport {
  const acc = new GoodputAccumulator();
  for (const e of events) acc.observe(e);
  return acc.report();
}
