/**
 * A stand-in for the read-only part of a guard that telemetry uses (events, stats, servers,
 * degradation). The engine-backed end-to-end test in `e2e.test.ts` checks the same metrics
 * against a real guard; this one lets unit tests drive exact event sequences.
 */
import type { DegradationLevel, GuardEvent, GuardStats, ServerHealthView } from '../../src/jobs/guard-api.js';
import { JOB_STATUSES, type JobRecord, type JobStatus } from '../../src/jobs/types.js';
import type { MetricsSource } from '../../src/telemetry/metrics.js';

/** An event source with settable views. */
export class FakeGuardEvents implements MetricsSource {
  readonly listeners = new Set<(e: GuardEvent) => void>();
  byStatus: Partial<Record<JobStatus, number>> = {};
  views: ServerHealthView[] = [];
  level: DegradationLevel = 'full';
  serversCalls = 0;

  onEvent(listener: (e: GuardEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async stats(): Promise<GuardStats> {
    const byStatus = Object.fromEntries(JOB_STATUSES.map((s) => [s, this.byStatus[s] ?? 0])) as Record<JobStatus, number>;
    return {
      totalJobs: Object.values(byStatus).reduce((a, b) => a + b, 0),
      byStatus,
      totalErrors: 0,
      successfulRecoveries: 0,
      failedRecoveries: 0,
      recoveryRate: 0,
      retrySuccessRate: 0,
      errorDistribution: {},
      failuresByCode: {},
      byStrategy: {},
      degradation: this.level,
    };
  }

  async servers(): Promise<ServerHealthView[]> {
    this.serversCalls++;
    return this.views;
  }

  degradation(): DegradationLevel {
    return this.level;
  }

  /** Emits a state event for `job` (from its previous status). */
  state(job: JobRecord, from: JobStatus | null = null): void {
    this.emit({ type: 'state', jobId: job.id, from, to: job.status, at: job.updatedAt, job: structuredClone(job) });
  }

  emit(e: GuardEvent): void {
    for (const l of this.listeners) l(e);
  }
}

/** A server view with defaults. */
export function serverView(name: string, over: Partial<ServerHealthView> = {}): ServerHealthView {
  return {
    name,
    url: `http://${name}:8188`,
    healthy: true,
    latencyMs: 5,
    vramTotal: 8 * 2 ** 30,
    vramFree: 6 * 2 ** 30,
    queueRemaining: 0,
    breaker: 'closed',
    lastError: null,
    checkedAt: 1,
    tags: [],
    drained: false,
    ...over,
  };
}
