/**
 * The guard's statistics, derived from the store's aggregates. Pure, so tests and fakes compute
 * the same figures the guard reports.
 */
import type { StoreStats } from '../store/contract.js';
import type { DegradationLevel, GuardStats } from './guard-api.js';

/** GuardStats from store aggregates and the pool's degradation level. */
export function guardStatsFrom(s: StoreStats, degradation: DegradationLevel): GuardStats {
  let ok = 0;
  let bad = 0;
  for (const v of Object.values(s.recoveries)) {
    ok += v.succeeded;
    bad += v.failed;
  }
  return {
    totalJobs: s.total,
    byStatus: s.byStatus,
    totalErrors: Object.values(s.attemptErrorsByCode).reduce((a, b) => a + b, 0),
    successfulRecoveries: ok,
    failedRecoveries: bad,
    recoveryRate: ok + bad === 0 ? 0 : ok / (ok + bad),
    retrySuccessRate: s.retriedJobs.terminal === 0 ? 0 : s.retriedJobs.completed / s.retriedJobs.terminal,
    errorDistribution: s.attemptErrorsByCode,
    failuresByCode: s.errorsByCode,
    byStrategy: s.recoveries,
    degradation,
  };
}
