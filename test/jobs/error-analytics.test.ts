import { describe, expect, it } from 'vitest';
import type { GuardEvent } from '../../src/jobs/events.js';
import type { JobRecord, JobStatus } from '../../src/jobs/types.js';
import { createErrorAnalytics } from '../../src/jobs/error-analytics.js';
import { tinyWorkflow } from '../server/helpers.js';
import { makeAttempt, makeJob, makeStep, ManualClock } from '../store/fixtures.js';
import { startRig } from './harness.js';

const T0 = 1_800_000_000_000;

function failed(jobId: string, attempt: number, code: string, at: number, durationMs = 4_000, message = `${code} happened`): GuardEvent {
  return { type: 'attempt_settled', jobId, attempt, server: 'gpu-1', promptId: `p-${jobId}-${attempt}`, outcome: 'failed', code, message, durationMs, at };
}

function ended(job: JobRecord, to: JobStatus, at: number): GuardEvent {
  return { type: 'state', jobId: job.id, from: 'running', to, at, job: { ...job, status: to, endedAt: at, updatedAt: at } };
}

describe('error analytics from the event stream', () => {
  it('counts errors per minute in a sliding window, by code and by category', () => {
    const clock = new ManualClock(T0);
    const a = createErrorAnalytics(null, { clock, windowMs: 60_000 });
    for (let i = 0; i < 6; i++) a.observe(failed(`j${i}`, 1, i % 2 ? 'COMFYUI_OOM' : 'COMFYUI_TIMEOUT', T0 + i * 1000));
    clock.current = T0 + 5_000;
    let s = a.snapshot();
    expect(s.errorsPerMinute).toBe(6);
    expect(s.byCode).toEqual({ COMFYUI_TIMEOUT: 3, COMFYUI_OOM: 3 });
    expect(s.byCategory).toEqual({ transient: 3, recoverable: 3 });
    clock.current = T0 + 62_500;
    s = a.snapshot();
    expect(s.window.errors).toBe(3);
    expect(s.totalErrors).toBe(6);
  });

  it('derives severity from how the job ended: retried away, recovered with a change, failed, fatal', () => {
    const clock = new ManualClock(T0);
    const a = createErrorAnalytics(null, { clock });
    const retriedAway = makeJob({ id: 'low', attempts: [makeAttempt(1), makeAttempt(2)], recoveryHistory: [makeStep({ strategy: 'retry', code: 'COMFYUI_TIMEOUT' })] });
    const changed = makeJob({ id: 'med', attempts: [makeAttempt(1), makeAttempt(2)], recoveryHistory: [makeStep({ strategy: 'reduce_batch', changes: [{ nodeId: '5', classType: 'EmptyLatentImage', input: 'batch_size', from: 4, to: 2 }] })] });
    const permanent = makeJob({ id: 'high', attempts: [makeAttempt(1)] });
    a.observe(failed('low', 1, 'COMFYUI_TIMEOUT', T0));
    a.observe(failed('med', 1, 'COMFYUI_OOM', T0));
    a.observe(failed('high', 1, 'COMFYUI_INVALID_PARAMETERS', T0));
    a.observe(failed('crit', 1, 'COMFYUI_DISK_FULL', T0, 100, 'No space left on device'));
    expect(a.snapshot().bySeverity).toEqual({ low: 0, medium: 0, high: 0, critical: 1, pending: 3 });
    a.observe(ended(retriedAway, 'completed', T0 + 10_000));
    a.observe(ended(changed, 'completed', T0 + 20_000));
    a.observe(ended(permanent, 'failed', T0 + 1_000));
    const s = a.snapshot();
    expect(s.bySeverity).toEqual({ low: 1, medium: 1, high: 1, critical: 1, pending: 0 });
    expect(s.recentCritical).toEqual([{ code: 'COMFYUI_DISK_FULL', jobId: 'crit', server: 'gpu-1', message: 'No space left on device', at: new Date(T0).toISOString() }]);
  });

  it('reports recovery rate per code next to seed 001 targets, retry success, and the mean times', () => {
    const clock = new ManualClock(T0);
    const a = createErrorAnalytics(null, { clock });
    // Four OOM jobs: three recover (75 %, under the 90 % target); one network job recovers (100 %).
    for (const [id, ok] of [['o1', true], ['o2', true], ['o3', true], ['o4', false]] as const) {
      a.observe(failed(id, 1, 'COMFYUI_OOM', T0, 2_000));
      a.observe(ended(makeJob({ id, attempts: [makeAttempt(1), makeAttempt(2)] }), ok ? 'completed' : 'failed', T0 + 6_000));
    }
    a.observe(failed('n1', 1, 'COMFYUI_CONNECTION_ERROR', T0, 8_000));
    a.observe(ended(makeJob({ id: 'n1', attempts: [makeAttempt(1), makeAttempt(2)] }), 'completed', T0 + 2_000));
    const s = a.snapshot();
    expect(s.recoveryByCode['COMFYUI_OOM']).toEqual({ jobs: 4, completed: 3, rate: 0.75, target: 0.9, meetsTarget: false });
    expect(s.recoveryByCode['COMFYUI_CONNECTION_ERROR']).toEqual({ jobs: 1, completed: 1, rate: 1, target: 0.95, meetsTarget: true });
    expect(s.recoveryByCode['COMFYUI_MODEL_MISSING']).toEqual({ jobs: 0, completed: 0, rate: 0, target: 0.75, meetsTarget: null });
    expect(s.retrySuccessRate).toBe(0.8);
    expect(s.meanTimeToFailureMs).toBe((4 * 2_000 + 8_000) / 5);
    expect(s.meanTimeToRecoveryMs).toBe((3 * 6_000 + 2_000) / 4);
  });

  it('lists the most common errors with their last message, most frequent first', () => {
    const a = createErrorAnalytics(null, { clock: new ManualClock(T0), top: 2 });
    a.observe(failed('a', 1, 'COMFYUI_OOM', T0, 1, 'first'));
    a.observe(failed('b', 1, 'COMFYUI_OOM', T0 + 1, 1, 'second'));
    a.observe(failed('c', 1, 'COMFYUI_TIMEOUT', T0 + 2));
    a.observe(failed('d', 1, 'COMFYUI_SERVER_ERROR', T0 + 3));
    const top = a.snapshot().topErrors;
    expect(top.map((t) => [t.code, t.count, t.lastMessage])).toEqual([
      ['COMFYUI_OOM', 2, 'second'],
      ['COMFYUI_SERVER_ERROR', 1, 'COMFYUI_SERVER_ERROR happened'],
    ]);
  });

  it('follows a source and stops when closed', () => {
    const listeners = new Set<(e: GuardEvent) => void>();
    const source = { onEvent: (l: (e: GuardEvent) => void) => (listeners.add(l), () => listeners.delete(l)) };
    const a = createErrorAnalytics(source, { clock: new ManualClock(T0) });
    for (const l of listeners) l(failed('x', 1, 'COMFYUI_OOM', T0));
    a.close();
    expect(listeners.size).toBe(0);
    expect(a.snapshot().totalErrors).toBe(1);
  });
});

describe('guard.stats() carries the error analytics', () => {
  it('counts an OOM that failed its job in stats().analytics; errorAnalytics: false (RECOVERY_STATISTICS_ENABLED=false) leaves them out', async () => {
    const on = await startRig([{ faults: 'oom=1' }], { maxRetries: 0, oomRetries: 0 });
    const off = await startRig([{}], { errorAnalytics: false });
    try {
      const { id } = await on.guard.submit(tinyWorkflow('analytics'));
      expect((await on.guard.wait(id)).status).toBe('failed');
      const stats = await on.guard.stats();
      expect(stats.analytics?.byCode).toEqual({ COMFYUI_OOM: 1 });
      expect(stats.analytics?.recoveryByCode['COMFYUI_OOM']).toMatchObject({ jobs: 1, completed: 0, target: 0.9, meetsTarget: false });
      const plain = await off.guard.stats();
      expect(plain.totalJobs).toBe(0);
      expect(plain).not.toHaveProperty('analytics');
    } finally {
      await Promise.all([on.close(), off.close()]);
    }
  });
});
