/**
 * Telemetry over a real guard on a simulator: the metrics and webhooks a job actually produces.
 */
import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { txt2img } from '../../src/cli/demo/samples.js';
import { createGuard } from '../../src/jobs/guard.js';
import type { AnalyticsEvent, Guard } from '../../src/jobs/guard-api.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { createErrorSpikeAlert } from '../../src/telemetry/analytics.js';
import { createMetrics, type GuardMetrics } from '../../src/telemetry/metrics.js';
import { attachWebhooks, createWebhookNotifier, SIGNATURE_HEADER, type WebhookNotifier } from '../../src/telemetry/webhook.js';
import { startReceiver, type Receiver } from './receiver.js';

describe('telemetry on a real guard', () => {
  let sim: Simulator | null = null;
  let guard: Guard | null = null;
  let metrics: GuardMetrics | null = null;
  let notifier: WebhookNotifier | null = null;
  let rx: Receiver | null = null;
  afterEach(async () => {
    metrics?.close();
    await guard?.close();
    await notifier?.close();
    await rx?.close();
    await sim?.close();
    sim = guard = metrics = notifier = rx = null;
  });

  it('counts attempts, OOM recoveries and job outcomes, posts signed webhooks, and raises an error spike', async () => {
    sim = await startSimulator({ name: 'small', vram: '4GiB', stepMs: 1 });
    const events: AnalyticsEvent[] = [];
    const spikes: number[] = [];
    const spike = createErrorSpikeAlert({ windowMs: 60_000, threshold: 1, onAlert: (s) => spikes.push(s.count) });
    guard = await createGuard({
      servers: [{ url: sim.url, name: 'small' }],
      store: 'memory:',
      maxRetries: 12,
      retry: { baseMs: 10, capMs: 50 },
      cleanupIntervalMs: 0,
      progressThrottleMs: 0,
      analytics: [(e) => events.push(e), spike.sink],
    });
    metrics = createMetrics(guard);
    // Every attempt failure the guard reported, by (job, attempt): the final record alone can lose one
    // (seen: an attempt's status going back from failed to submitted; reported to the engine owner).
    const failures = new Map<string, string>();
    guard.onEvent((e) => {
      if (e.type === 'state') for (const a of e.job.attempts) if (a.code) failures.set(`${e.jobId}#${a.number}`, a.code);
    });
    rx = await startReceiver([200]);
    notifier = createWebhookNotifier({ secret: 'topsecret', outbound: { allowLoopback: true } });
    const detach = attachWebhooks(guard, notifier);

    const base = { ckpt: 'v1-5-pruned-emaonly.ckpt', width: 512, height: 512, batch: 1, steps: 5, seed: 1, prompt: 'x' };
    const ok = await guard.submit(txt2img(base), { webhookUrl: rx.url });
    const oom = await guard.submit(txt2img({ ...base, width: 1024, height: 1024, batch: 8, seed: 2 }), { webhookUrl: rx.url });
    const bad = await guard.submit(txt2img({ ...base, sampler: 'nope', seed: 3 }), { webhookUrl: rx.url });
    const jobs = await Promise.all([ok, oom, bad].map((j) => guard!.wait(j.id)));
    await notifier.onIdle();
    detach();
    spike.close();

    expect(jobs.map((j) => j.status)).toEqual(['completed', 'completed', 'failed']);
    const oomJob = jobs[1]!;
    const text = await metrics.registry.metrics();
    const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}"().]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);

    // Jobs share one small GPU, so any of them may hit OOM: expectations are summed over all jobs.
    const attempts = jobs.flatMap((j) => j.attempts);
    const steps = jobs.flatMap((j) => j.recoveryHistory);
    expect(oomJob.recoveryHistory.length).toBeGreaterThan(0);
    expect(value('comfyguard_attempts_total')).toBe(attempts.length);
    const oomFailures = [...failures.values()].filter((c) => c === 'COMFYUI_OOM').length;
    expect(oomFailures).toBeGreaterThanOrEqual(attempts.filter((a) => a.code === 'COMFYUI_OOM').length);
    expect(value('comfyguard_errors_total{code="COMFYUI_OOM",category="recoverable",server="small"}')).toBe(oomFailures);
    expect(value('comfyguard_errors_total{code="COMFYUI_INVALID_PARAMETERS",category="permanent",server="small"}')).toBe(1);
    // Per strategy that ran: failed steps counted (a series never incremented is absent, i.e. 0).
    for (const strategy of new Set(steps.map((x) => x.strategy))) {
      expect(value(`comfyguard_recoveries_total{strategy="${strategy}",outcome="failed"}`) || 0).toBe(steps.filter((x) => x.strategy === strategy && x.success === false).length);
    }
    expect(value('comfyguard_retries_total{outcome="attempted"}')).toBe(steps.length);
    expect(value('comfyguard_retries_total{outcome="succeeded"}')).toBe(jobs.filter((j) => j.status === 'completed' && j.recoveryHistory.length > 0).length);
    expect(value('comfyguard_jobs{status="completed"}')).toBe(2);
    expect(value('comfyguard_jobs{status="failed"}')).toBe(1);
    expect(value('comfyguard_job_duration_seconds_count{status="completed"}')).toBe(2);
    expect(value('comfyguard_server_healthy{server="small"}')).toBe(1);
    expect(value('comfyguard_breaker_state{server="small",state="closed"}')).toBe(1);
    expect(value('comfyguard_degradation_level')).toBeGreaterThanOrEqual(0);

    expect(rx.requests).toHaveLength(3);
    for (const req of rx.requests) {
      expect(req.headers[SIGNATURE_HEADER.toLowerCase()]).toBe(`sha256=${createHmac('sha256', 'topsecret').update(req.body).digest('hex')}`);
    }
    const bodies = rx.requests.map((r) => JSON.parse(r.body) as { id: string; status: string; attempts: number; error: { code: string } | null });
    const byId = new Map(bodies.map((b) => [b.id, b]));
    expect(byId.get(oom.id)).toMatchObject({ status: 'completed', attempts: oomJob.attempts.length, error: null });
    expect(byId.get(bad.id)).toMatchObject({ status: 'failed', error: { code: 'COMFYUI_INVALID_PARAMETERS' } });

    // The OOM (planned in one step) plus the permanent failure exceed a threshold of 1 error: one alert.
    expect(events.filter((e) => e.name === 'comfyui_retry_attempted').length).toBeGreaterThanOrEqual(1);
    expect(spikes).toHaveLength(1);
  });
});
