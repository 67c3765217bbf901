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
 */
import type { GuardEvent } from '../jobs/events.js';

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

  /** Feeds one event (others than the ones above are ignored). */
  observe(e: GuardEvent): void {
    if (e.type === 'attempt_started') {
      this.#attempts.set(`${e.jobId}#${e.attempt}`, { cached: new Set(), executed: new Set() });
    } else if (e.type === 'comfy') {
      const seen = this.#attempts.get(`${e.jobId}#${e.attempt}`);
      if (!seen) return;
      const m = e.message;
      if (m.type === 'execution_cached') for (const n of m.data.nodes) seen.cached.add(n);
      else if (m.type === 'executing' && m.data.node !== null) seen.executed.add(m.data.node);
    } else if (e.type === 'attempt_settled') {
      if (e.outcome === 'detached' || e.outcome === 'cancelled') {
        this.#attempts.delete(`${e.jobId}#${e.attempt}`);
        return;
      }
      const seconds = Math.max(0, e.durationMs) / 1000;
      const key = `${e.jobId}#${e.attempt}`;
      const seen = this.#attempts.get(key);
      this.#attempts.delete(key);
      const ok = e.outcome === 'completed';
      const buckets = [this.#report.total, (this.#report.byJob[e.jobId] ??= zero()), (this.#report.byServer[e.server] ??= zero())];
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
      else this.#lastFailed.set(e.jobId, seconds);
    }
  }

  /** A copy of the totals so far. */
  report(): GoodputReport {
    return structuredClone(this.#report);
  }
}

/** Goodput of a recorded event list (a bench run, a replayed log). */
export function goodputOf(events: Iterable<GuardEvent>): GoodputReport {
  const acc = new GoodputAccumulator();
  for (const e of events) acc.observe(e);
  return acc.report();
}
