/**
 * Error analytics computed incrementally from the guard's event stream: every failed attempt and
 * every terminal state updates a few counters, so reading the figures costs nothing per request
 * (no store scan). The figures cover what this process saw since it subscribed; the store's
 * totals (`guard.stats()`) cover all time.
 */
import { categoryOf, isCriticalCode, SEED_RECOVERY_TARGETS, type Severity } from '../errors/severity.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { GuardEvent } from './events.js';
import type { JobRecord, StrategyName } from './types.js';

export { categoryOf, isCriticalCode, SEED_RECOVERY_TARGETS, SEVERITIES, type Severity } from '../errors/severity.js';

/** Strategies that run the same workflow again: a job recovered only by these was "retried away". */
const UNCHANGED_STRATEGIES: ReadonlySet<StrategyName> = new Set<StrategyName>(['retry', 'resume', 'failover']);
const FAILED_OUTCOMES = new Set(['failed', 'lost', 'interrupted']);

export interface ErrorAnalyticsOptions {
  clock?: Clock;
  /** Window of `errorsPerMinute`. @default 600_000 (10 min) */
  windowMs?: number;
  /** Recent critical errors kept. @default 20 */
  recentCritical?: number;
  /** Rows of `topErrors`. @default 10 */
  top?: number;
  /** Jobs followed at once (older ones are dropped, their later outcome then uncounted). @default 10_000 */
  maxTrackedJobs?: number;
}

/** What `snapshot()` returns; every rate is 0..1, every time in ms. */
export interface ErrorAnalyticsSnapshot {
  since: string;
  window: { ms: number; errors: number };
  errorsPerMinute: number;
  totalErrors: number;
  byCode: Record<string, number>;
  byCategory: Record<string, number>;
  /** Errors by severity; errors of jobs still running are `pending` until the job ends. */
  bySeverity: Record<Severity | 'pending', number>;
  topErrors: Array<{ code: string; category: string; count: number; lastMessage: string | null; lastAt: string }>;
  recentCritical: Array<{ code: string; jobId: string; server: string; message: string | null; at: string }>;
  /** Per code: jobs hit by it that ended, how many still completed, and seed 001's target where it has one. */
  recoveryByCode: Record<string, { jobs: number; completed: number; rate: number; target: number | null; meetsTarget: boolean | null }>;
  retrySuccessRate: number;
  retriedJobs: number;
  /** Mean run time of a failed attempt, start to failure. */
  meanTimeToFailureMs: number | null;
  /** Mean time from a job's first error to its completion, over recovered jobs. */
  meanTimeToRecoveryMs: number | null;
}

export interface ErrorAnalytics {
  /** Feed one event (the guard's `onEvent` listener). */
  observe(e: GuardEvent): void;
  snapshot(): ErrorAnalyticsSnapshot;
  /** Unsubscribes when it was attached to a source. Idempotent. */
  close(): void;
}

interface JobErrors {
  codes: Set<string>;
  firstErrorAt: number;
  /** Severity-less errors waiting for the job's outcome. */
  pending: number;
}

/**
 * Follows `source`'s events (or, without a source, whatever is passed to `observe`).
 *
 * @example
 * const analytics = createErrorAnalytics(guard);
 * app.get('/errors', () => analytics.snapshot());
 */
export function createErrorAnalytics(source: { onEvent(l: (e: GuardEvent) => void): () => void } | null, opts: ErrorAnalyticsOptions = {}): ErrorAnalytics {
  const clock = opts.clock ?? systemClock;
  const windowMs = opts.windowMs ?? 600_000;
  const maxCritical = opts.recentCritical ?? 20;
  const topN = opts.top ?? 10;
  const maxJobs = opts.maxTrackedJobs ?? 10_000;
  const since = clock.now();

  // Sliding window: per-second buckets, oldest first; trimmed on write and read.
  const buckets: Array<{ sec: number; n: number }> = [];
  let inWindow = 0;
  let total = 0;
  const byCode = new Map<string, { count: number; lastMessage: string | null; lastAt: number }>();
  const byCategory: Record<string, number> = {};
  const bySeverity: Record<Severity | 'pending', number> = { low: 0, medium: 0, high: 0, critical: 0, pending: 0 };
  const critical: ErrorAnalyticsSnapshot['recentCritical'] = [];
  const recovery = new Map<string, { jobs: number; completed: number }>();
  const jobs = new Map<string, JobErrors>();
  const failureTime = { sum: 0, n: 0 };
  const recoveryTime = { sum: 0, n: 0 };
  const retried = { ended: 0, completed: 0 };

  const trim = (now: number) => {
    const oldest = Math.floor((now - windowMs) / 1000);
    while (buckets.length > 0 && buckets[0]!.sec <= oldest) inWindow -= buckets.shift()!.n;
  };

  const onFailure = (jobId: string, code: string, server: string, message: string | null, durationMs: number, at: number) => {
    total++;
    const sec = Math.floor(at / 1000);
    const last = buckets.at(-1);
    if (last && last.sec === sec) last.n++;
    else buckets.push({ sec, n: 1 });
    inWindow++;
    trim(clock.now());
    const row = byCode.get(code) ?? { count: 0, lastMessage: null, lastAt: at };
    row.count++;
    row.lastAt = at;
    if (message) row.lastMessage = message;
    byCode.set(code, row);
    const category = categoryOf(code);
    byCategory[category] = (byCategory[category] ?? 0) + 1;
    failureTime.sum += Math.max(0, durationMs);
    failureTime.n++;
    let j = jobs.get(jobId);
    if (!j) {
      j = { codes: new Set(), firstErrorAt: at, pending: 0 };
      jobs.set(jobId, j);
      if (jobs.size > maxJobs) {
        const oldest = jobs.entries().next().value;
        if (oldest) {
          bySeverity.pending -= oldest[1].pending;
          jobs.delete(oldest[0]);
        }
      }
    }
    j.codes.add(code);
    if (isCriticalCode(code)) {
      bySeverity.critical++;
      critical.push({ code, jobId, server, message, at: new Date(at).toISOString() });
      if (critical.length > maxCritical) critical.shift();
    } else {
      j.pending++;
      bySeverity.pending++;
    }
  };

  const onTerminal = (job: JobRecord) => {
    if (job.status === 'cancelled') {
      const j = jobs.get(job.id);
      if (j) bySeverity.pending -= j.pending;
      jobs.delete(job.id);
      return;
    }
    if (job.attempts.length > 1) {
      retried.ended++;
      if (job.status === 'completed') retried.completed++;
    }
    const j = jobs.get(job.id);
    // A job that failed before any attempt ran (rejected at submit) counts its error here.
    if (!j && job.status !== 'completed' && job.error && job.attempts.length === 0) {
      onFailure(job.id, job.error.code, '', job.error.message, 0, job.endedAt ?? job.updatedAt);
      return onTerminal(job);
    }
    if (!j) return;
    jobs.delete(job.id);
    const ok = job.status === 'completed';
    const changed = job.recoveryHistory.some((s) => !UNCHANGED_STRATEGIES.has(s.strategy) || s.changes.length > 0);
    const severity: Severity = ok ? (changed ? 'medium' : 'low') : 'high';
    bySeverity.pending -= j.pending;
    bySeverity[severity] += j.pending;
    for (const code of j.codes) {
      const r = recovery.get(code) ?? { jobs: 0, completed: 0 };
      r.jobs++;
      if (ok) r.completed++;
      recovery.set(code, r);
    }
    if (ok) {
      recoveryTime.sum += Math.max(0, (job.endedAt ?? job.updatedAt) - j.firstErrorAt);
      recoveryTime.n++;
    }
  };

  const observe = (e: GuardEvent) => {
    if (e.type === 'attempt_settled') {
      if (FAILED_OUTCOMES.has(e.outcome) && e.code) onFailure(e.jobId, e.code, e.server, e.message, e.durationMs, e.at);
    } else if (e.type === 'state' && e.from !== null && e.from !== e.to && isEnded(e.to)) {
      onTerminal(e.job);
    }
  };

  const unsubscribe = source?.onEvent((e) => {
    try {
      observe(e);
    } catch {
      // Analytics must never break the guard's event delivery.
    }
  });

  return {
    observe,
    snapshot() {
      trim(clock.now());
      const recoveryByCode: ErrorAnalyticsSnapshot['recoveryByCode'] = {};
      for (const code of new Set([...recovery.keys(), ...Object.keys(SEED_RECOVERY_TARGETS)])) {
        const r = recovery.get(code) ?? { jobs: 0, completed: 0 };
        const target = SEED_RECOVERY_TARGETS[code]?.target ?? null;
        const rate = r.jobs === 0 ? 0 : r.completed / r.jobs;
        recoveryByCode[code] = { ...r, rate, target, meetsTarget: target === null || r.jobs === 0 ? null : rate >= target };
      }
      const top = [...byCode.entries()]
        .sort((a, b) => b[1].count - a[1].count || b[1].lastAt - a[1].lastAt)
        .slice(0, topN)
        .map(([code, r]) => ({ code, category: categoryOf(code), count: r.count, lastMessage: r.lastMessage, lastAt: new Date(r.lastAt).toISOString() }));
      return {
        since: new Date(since).toISOString(),
        window: { ms: windowMs, errors: inWindow },
        errorsPerMinute: inWindow / (windowMs / 60_000),
        totalErrors: total,
        byCode: Object.fromEntries([...byCode.entries()].map(([c, r]) => [c, r.count])),
        byCategory: { ...byCategory },
        bySeverity: { ...bySeverity },
        topErrors: top,
        recentCritical: [...critical].reverse(),
        recoveryByCode,
        retrySuccessRate: retried.ended === 0 ? 0 : retried.completed / retried.ended,
        retriedJobs: retried.ended,
        meanTimeToFailureMs: failureTime.n === 0 ? null : failureTime.sum / failureTime.n,
        meanTimeToRecoveryMs: recoveryTime.n === 0 ? null : recoveryTime.sum / recoveryTime.n,
      };
    },
    close() {
      unsubscribe?.();
    },
  };
}

function isEnded(s: string): boolean {
  return s === 'completed' || s === 'failed' || s === 'timed_out' || s === 'cancelled';
}
