/**
 * Statistics as counters. Every backend keeps a table (or hash) of named counters in step with its
 * writes, so `stats()` reads a few dozen numbers instead of scanning every job. This module says
 * what one job adds to the counters (JS backends apply it directly; the SQL backends express the
 * same rules in triggers, see `./migrations/*`) and turns the counters back into StoreStats.
 *
 * Counter names: `s:<status>` jobs by status, `e:<code>` final error of failed/timed-out jobs,
 * `a:<code>` failed attempts, `r:<s|f|p>:<strategy>` recovery steps by outcome, `t:attempts`,
 * `t:retries`, `rt:terminal` / `rt:completed` terminal jobs that needed a retry.
 */
import { JOB_STATUSES, TERMINAL_STATUSES, type JobRecord, type JobStatus } from '../jobs/types.js';
import type { StatusCounts, StoreStats } from './contract.js';
import { addRecovery, emptyStats, ERROR_STATUSES } from './query.js';

function add(out: Map<string, number>, key: string, n = 1): void {
  if (n !== 0) out.set(key, (out.get(key) ?? 0) + n);
}

/** What one readable job adds to the counters. */
export function statContribution(job: JobRecord): Map<string, number> {
  const out = new Map<string, number>();
  add(out, `s:${job.status}`);
  if (ERROR_STATUSES.includes(job.status) && job.error) add(out, `e:${job.error.code}`);
  add(out, 't:attempts', job.attempts.length);
  add(out, 't:retries', job.retryCount);
  for (const a of job.attempts) if (a.code) add(out, `a:${a.code}`);
  for (const step of job.recoveryHistory) add(out, `r:${step.success === true ? 's' : step.success === false ? 'f' : 'p'}:${step.strategy}`);
  if (job.retryCount > 0 && TERMINAL_STATUSES.has(job.status)) {
    add(out, 'rt:terminal');
    if (job.status === 'completed') add(out, 'rt:completed');
  }
  return out;
}

/** `next - prev` per counter, zeros left out (either side may be null: created, deleted). */
export function contributionDelta(prev: JobRecord | null, next: JobRecord | null): Map<string, number> {
  const out = new Map<string, number>();
  if (prev) for (const [k, n] of statContribution(prev)) add(out, k, -n);
  if (next) for (const [k, n] of statContribution(next)) add(out, k, n);
  for (const [k, n] of out) if (n === 0) out.delete(k);
  return out;
}

/** StoreStats from counter values; unknown counter names are ignored. */
export function statsFromCounters(counters: Iterable<[string, number]>): StoreStats {
  const stats = emptyStats();
  for (const [key, raw] of counters) {
    const n = Number(raw);
    if (!Number.isFinite(n) || n === 0) continue;
    const colon = key.indexOf(':');
    const kind = key.slice(0, colon);
    const rest = key.slice(colon + 1);
    if (kind === 's') {
      if ((JOB_STATUSES as readonly string[]).includes(rest)) {
        stats.byStatus[rest as JobStatus] += n;
        stats.total += n;
      }
    } else if (kind === 'e') stats.errorsByCode[rest] = n;
    else if (kind === 'a') stats.attemptErrorsByCode[rest] = n;
    else if (kind === 'r') addRecovery(stats, rest.slice(2), rest[0] === 's' ? true : rest[0] === 'f' ? false : null, n);
    else if (key === 't:attempts') stats.totalAttempts = n;
    else if (key === 't:retries') stats.totalRetries = n;
    else if (key === 'rt:terminal') stats.retriedJobs.terminal = n;
    else if (key === 'rt:completed') stats.retriedJobs.completed = n;
  }
  return stats;
}

/** Totals by status from counter values. */
export function countsFromCounters(counters: Iterable<[string, number]>): StatusCounts {
  const { total, byStatus } = statsFromCounters([...counters].filter(([k]) => k.startsWith('s:')));
  return { total, byStatus };
}
