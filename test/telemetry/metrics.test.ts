import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobRecord } from '../../src/jobs/types.js';
import { createMetrics, type GuardMetrics } from '../../src/telemetry/metrics.js';
import { makeAttempt, makeJob, makeStep } from '../store/fixtures.js';
import { FakeGuardEvents, serverView } from './fake-guard.js';

type Labels = Record<string, string | number>;
/** The server `makeAttempt` records. */
const GPU = 'http://gpu-1:8188';

async function value(registry: Registry, name: string, labels: Labels = {}): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`metric ${name} is not registered`);
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, want]) => (v.labels as Labels)[k] === want) && Object.keys(v.labels).length === Object.keys(labels).length);
  return hit?.value;
}

describe('createMetrics', () => {
  let metrics: GuardMetrics | null = null;
  afterEach(() => {
    metrics?.close();
    metrics = null;
  });

  it('counts attempts, errors by code, recoveries and retries from job events, once each', async () => {
    const guard = new FakeGuardEvents();
    metrics = createMetrics(guard);
    const r = metrics.registry;
    const t0 = 1_700_000_000_000;

    // Job A: OOM on attempt 1, free_memory recovery, completes on attempt 2.
    let a: JobRecord = makeJob({ id: 'a', createdAt: t0 });
    guard.state(a);
    a = { ...a, status: 'running', attempts: [makeAttempt(1)] };
    guard.state(a, 'queued');
    const step = makeStep({ attempt: 1, code: 'COMFYUI_OOM', strategy: 'free_memory' });
    a = { ...a, status: 'recovering', attempts: [makeAttempt(1, { status: 'failed', code: 'COMFYUI_OOM' })], recoveryHistory: [step] };
    guard.state(a, 'running');
    guard.emit({ type: 'recovery', jobId: 'a', step, failedPromptId: 'p1', at: t0 + 1 });
    guard.emit({ type: 'recovery', jobId: 'a', step, failedPromptId: 'p1', at: t0 + 2 }); // the same step again: counted once
    a = { ...a, status: 'running', attempts: [...a.attempts, makeAttempt(2)], retryCount: 1 };
    guard.state(a, 'recovering');
    a = { ...a, status: 'completed', recoveryHistory: [{ ...step, success: true }], endedAt: t0 + 12_000, updatedAt: t0 + 12_000 };
    guard.state(a, 'running');
    guard.state(a, 'running'); // a repeated terminal event must not count twice

    // Job B: permanent error on its only attempt.
    let b: JobRecord = makeJob({ id: 'b', createdAt: t0 });
    b = { ...b, status: 'running', attempts: [makeAttempt(1)] };
    guard.state(b, 'queued');
    const bError = { code: 'COMFYUI_INVALID_PARAMETERS', category: 'permanent', message: 'bad', hint: 'fix', retryable: false };
    b = { ...b, status: 'failed', attempts: [makeAttempt(1, { status: 'failed', code: 'COMFYUI_INVALID_PARAMETERS' })], error: bError, endedAt: t0 + 500 };
    guard.state(b, 'running');

    // Job C: timed out before any attempt.
    const c: JobRecord = makeJob({
      id: 'c',
      createdAt: t0,
      status: 'timed_out',
      error: { code: 'COMFYUI_TIMEOUT', category: 'transient', message: 'late', hint: 'wait', retryable: true },
      endedAt: t0 + 700_000,
    });
    guard.state(c, 'queued');

    expect(await value(r, 'comfyguard_attempts_total')).toBe(3);
    expect(await value(r, 'comfyguard_errors_total', { code: 'COMFYUI_OOM', category: 'recoverable', server: GPU })).toBe(1);
    expect(await value(r, 'comfyguard_errors_total', { code: 'COMFYUI_INVALID_PARAMETERS', category: 'permanent', server: GPU })).toBe(1);
    expect(await value(r, 'comfyguard_errors_total', { code: 'COMFYUI_TIMEOUT', category: 'transient', server: '' })).toBe(1);
    expect(await value(r, 'comfyguard_recoveries_total', { strategy: 'free_memory', outcome: 'started' })).toBe(1);
    expect(await value(r, 'comfyguard_recoveries_total', { strategy: 'free_memory', outcome: 'succeeded' })).toBe(1);
    expect(await value(r, 'comfyguard_retries_total', { outcome: 'attempted' })).toBe(1);
    expect(await value(r, 'comfyguard_retries_total', { outcome: 'succeeded' })).toBe(1);
    expect(await value(r, 'comfyguard_retries_total', { outcome: 'exhausted' })).toBeUndefined();

    const text = await r.metrics();
    expect(text).toContain('comfyguard_job_duration_seconds_count{status="completed"} 1');
    expect(text).toContain('comfyguard_job_duration_seconds_sum{status="completed"} 12');
    expect(text).toContain('comfyguard_job_duration_seconds_count{status="failed"} 1');
    expect(text).toContain('comfyguard_job_duration_seconds_count{status="timed_out"} 1');
  });

  it('counts a retried job that ends failed as an exhausted retry', async () => {
    const guard = new FakeGuardEvents();
    metrics = createMetrics(guard);
    const step = makeStep({ strategy: 'retry', code: 'COMFYUI_SERVER_ERROR' });
    const job = makeJob({ id: 'x', status: 'recovering', attempts: [makeAttempt(1, { status: 'failed', code: 'COMFYUI_SERVER_ERROR' })], recoveryHistory: [step] });
    guard.state(job, 'running');
    guard.emit({ type: 'recovery', jobId: 'x', step, failedPromptId: 'p1', at: 1 });
    const error = { code: 'COMFYUI_SERVER_ERROR', category: 'transient', message: 'boom', hint: 'later', retryable: true };
    guard.state(
      {
        ...job,
        status: 'failed',
        attempts: [...job.attempts, makeAttempt(2, { status: 'failed', code: 'COMFYUI_SERVER_ERROR' })],
        recoveryHistory: [{ ...step, success: false }],
        error,
        endedAt: job.createdAt + 1000,
      },
      'running',
    );
    const r = metrics.registry;
    expect(await value(r, 'comfyguard_errors_total', { code: 'COMFYUI_SERVER_ERROR', category: 'transient', server: GPU })).toBe(2);
    expect(await value(r, 'comfyguard_retries_total', { outcome: 'exhausted' })).toBe(1);
    expect(await value(r, 'comfyguard_recoveries_total', { strategy: 'retry', outcome: 'failed' })).toBe(1);
  });

  it('refreshes job, server, breaker, queue and degradation gauges from the guard on scrape', async () => {
    const guard = new FakeGuardEvents();
    guard.byStatus = { queued: 2, running: 1, completed: 5 };
    guard.views = [serverView('big-gpu', { queueRemaining: 3 }), serverView('small-gpu', { healthy: false, breaker: 'open', queueRemaining: null })];
    guard.level = 'medium';
    metrics = createMetrics(guard);
    const r = metrics.registry;

    const text = await r.metrics();
    expect(text).toContain('comfyguard_jobs{status="queued"} 2');
    expect(text).toContain('comfyguard_jobs{status="completed"} 5');
    expect(text).toContain('comfyguard_jobs{status="failed"} 0');
    expect(text).toContain('comfyguard_server_healthy{server="big-gpu"} 1');
    expect(text).toContain('comfyguard_server_healthy{server="small-gpu"} 0');
    expect(text).toContain('comfyguard_breaker_state{server="small-gpu",state="open"} 1');
    expect(text).toContain('comfyguard_breaker_state{server="small-gpu",state="closed"} 0');
    expect(text).toContain('comfyguard_server_queue_depth{server="big-gpu"} 3');
    expect(text).not.toContain('comfyguard_server_queue_depth{server="small-gpu"}');
    expect(text).toContain('comfyguard_degradation_level 2');
    expect(guard.serversCalls).toBe(1);

    // A server that left the pool disappears from the gauges on the next scrape.
    guard.views = [serverView('big-gpu', { breaker: 'half_open' })];
    guard.byStatus = { completed: 8 };
    guard.level = 'full';
    const again = await r.metrics();
    expect(again).not.toContain('small-gpu');
    expect(again).toContain('comfyguard_breaker_state{server="big-gpu",state="half_open"} 1');
    expect(again).toContain('comfyguard_jobs{status="queued"} 0');
    expect(again).toContain('comfyguard_degradation_level 0');
  });

  it('keeps scraping when the guard cannot answer (closed guard)', async () => {
    const guard = new FakeGuardEvents();
    guard.stats = () => Promise.reject(new Error('guard closed'));
    guard.servers = () => Promise.reject(new Error('guard closed'));
    metrics = createMetrics(guard);
    await expect(metrics.registry.metrics()).resolves.toContain('comfyguard_degradation_level 0');
  });

  it('close() unsubscribes and takes its metrics out of a shared registry, leaving others', async () => {
    const guard = new FakeGuardEvents();
    const registry = new Registry();
    registry.registerMetric(new (await import('prom-client')).Counter({ name: 'app_requests_total', help: 'x', registers: [] }));
    metrics = createMetrics(guard, { registry, collectDefault: true });
    expect(await registry.metrics()).toContain('comfyguard_process_cpu_user_seconds_total');
    expect(guard.listeners.size).toBe(1);
    metrics.close();
    metrics.close();
    expect(guard.listeners.size).toBe(0);
    expect(registry.getSingleMetric('comfyguard_attempts_total')).toBeUndefined();
    expect(registry.getSingleMetric('app_requests_total')).toBeDefined();
  });
});

describe('operations metrics', () => {
  let metrics: GuardMetrics | null = null;
  afterEach(() => {
    metrics?.close();
    metrics = null;
  });

  it('observes time to failure, time to recovery, queue wait and each health check once', async () => {
    const guard = new FakeGuardEvents();
    metrics = createMetrics(guard);
    const r = metrics.registry;
    const t0 = 1_700_000_000_000;
    let job: JobRecord = makeJob({ id: 'q', createdAt: t0 });
    guard.state(job);
    guard.emit({ type: 'attempt_started', jobId: 'q', attempt: 1, server: GPU, promptId: 'p1', strategy: null, reattached: false, at: t0 + 2_000 });
    guard.emit({ type: 'attempt_settled', jobId: 'q', attempt: 1, server: GPU, promptId: 'p1', outcome: 'failed', code: 'COMFYUI_OOM', message: 'oom', durationMs: 3_000, at: t0 + 5_000 });
    job = { ...job, status: 'recovering', attempts: [makeAttempt(1, { status: 'failed', code: 'COMFYUI_OOM', endedAt: t0 + 5_000 })] };
    guard.state(job, 'running');
    guard.emit({ type: 'attempt_started', jobId: 'q', attempt: 2, server: GPU, promptId: 'p2', strategy: 'free_memory', reattached: false, at: t0 + 6_000 });
    job = { ...job, status: 'completed', attempts: [...job.attempts, makeAttempt(2, { status: 'completed' })], endedAt: t0 + 9_000, updatedAt: t0 + 9_000 };
    guard.state(job, 'running');
    // Every probe is one event, observed when it happens (scrapes in between change nothing).
    const check = (latencyMs: number | null, at: number) => guard.emit({ type: 'pool', change: { type: 'health_check', server: 'gpu', healthy: latencyMs !== null, latencyMs, at }, at });
    check(40, 10);
    await r.metrics();
    await r.metrics();
    check(null, 15); // a failed probe has no latency to observe
    check(80, 20);
    const text = await r.metrics();
    expect(text).toContain('comfyguard_time_to_failure_seconds_sum{code="COMFYUI_OOM"} 3');
    expect(text).toContain('comfyguard_time_to_recovery_seconds_sum 4');
    expect(text).toContain('comfyguard_queue_wait_seconds_sum 2');
    expect(text).toContain('comfyguard_queue_wait_seconds_count 1');
    expect(text).toContain('comfyguard_health_check_latency_seconds_count{server="gpu"} 2');
    expect(text).toMatch(/comfyguard_health_check_latency_seconds_sum\{server="gpu"\} 0\.12\d*/);
  });

  it('counts GPU-seconds of settled attempts: failed by server and code, succeeded, and saved by a resume', async () => {
    const guard = new FakeGuardEvents();
    metrics = createMetrics(guard);
    const base = { jobId: 'g', promptId: 'p', at: 0 };
    guard.emit({ ...base, type: 'attempt_started', attempt: 1, server: 'small', strategy: null, reattached: false });
    guard.emit({ ...base, type: 'attempt_settled', attempt: 1, server: 'small', outcome: 'failed', code: 'COMFYUI_OOM', message: null, durationMs: 4_000 });
    guard.emit({ ...base, type: 'attempt_started', attempt: 2, server: 'small', strategy: 'resume', reattached: false });
    guard.emit({ ...base, type: 'comfy', attempt: 2, server: 'small', message: { type: 'execution_cached', data: { nodes: ['1'], prompt_id: 'p' } } });
    guard.emit({ ...base, type: 'comfy', attempt: 2, server: 'small', message: { type: 'executing', data: { node: '2', prompt_id: 'p' } } });
    guard.emit({ ...base, type: 'attempt_settled', attempt: 2, server: 'small', outcome: 'completed', code: null, message: null, durationMs: 1_500 });
    guard.emit({ ...base, type: 'attempt_started', attempt: 3, server: 'big', strategy: null, reattached: false });
    guard.emit({ ...base, type: 'attempt_settled', attempt: 3, server: 'big', outcome: 'detached', code: null, message: null, durationMs: 9_000 });
    const r = metrics.registry;
    expect(await value(r, 'comfyguard_gpu_seconds_total', { outcome: 'failed', server: 'small', code: 'COMFYUI_OOM' })).toBe(4);
    expect(await value(r, 'comfyguard_gpu_seconds_total', { outcome: 'succeeded', server: 'small', code: '' })).toBe(1.5);
    expect(await value(r, 'comfyguard_gpu_seconds_total', { outcome: 'saved', server: 'small', code: '' })).toBe(2);
    // A detached attempt (comfyguard shut down; the prompt runs on) costs nothing yet.
    expect(await value(r, 'comfyguard_gpu_seconds_total', { outcome: 'succeeded', server: 'big', code: '' })).toBeUndefined();
  });
});
