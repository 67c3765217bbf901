/**
 * Stats, health and metrics over real HTTP, from a real guard whose jobs succeeded, failed and
 * recovered on real simulators.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/server/job-view.js';
import { createMetrics, type GuardMetrics } from '../../src/telemetry/metrics.js';
import { listen, postJson, tinyWorkflow, waitFor } from './helpers.js';
import { startServiceRig, type ServiceRig } from './rig.js';

async function runToEnd(url: string, workflow: unknown): Promise<JobView> {
  const res = await postJson(`${url}/api/jobs`, { workflow });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  return waitFor(async () => {
    const job = (await (await fetch(`${url}/api/jobs/${id}`)).json()) as JobView;
    return ['completed', 'failed', 'timed_out', 'cancelled'].includes(job.status) ? job : null;
  }, `job ${id} to end`);
}

const invalid = {
  '1': { class_type: 'EmptyImage', inputs: { width: 0, height: 64, batch_size: 1, color: 0 } },
  '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'bad' } },
};

describe('stats after a success, a permanent failure and a recovered OOM', () => {
  let rig: ServiceRig;
  let metrics: GuardMetrics;
  let oomSeen = false;
  const jobs: JobView[] = [];

  beforeAll(async () => {
    rig = await startServiceRig([
      {
        nodeGate: () => {
          // The first OOM-planned prompt lifts the fault for the ones after it.
          if (!oomSeen && rig.sims[0]!.getFaults() !== '') {
            oomSeen = true;
            rig.sims[0]!.setFaults('');
          }
        },
      },
    ]);
    metrics = createMetrics(rig.guard);
    jobs.push(await runToEnd(rig.url, tinyWorkflow('ok')));
    jobs.push(await runToEnd(rig.url, invalid));
    rig.sims[0]!.setFaults('oom=1');
    jobs.push(await runToEnd(rig.url, tinyWorkflow('oom')));
  });

  afterAll(async () => {
    metrics?.close();
    await rig?.close();
  });

  it('ran the three jobs as planned', () => {
    expect(jobs.map((j) => j.status)).toEqual(['completed', 'failed', 'completed']);
    expect(jobs[2]!.recoveryHistory).toHaveLength(1);
  });

  it('GET /api/stats has totals, recovery figures and the error distribution', async () => {
    const res = await fetch(`${rig.url}/api/stats`);
    expect(res.status).toBe(200);
    const s = (await res.json()) as Record<string, unknown>;
    expect(s).toMatchObject({
      totalJobs: 3,
      byStatus: { completed: 2, failed: 1, queued: 0, running: 0 },
      successfulRecoveries: 1,
      failedRecoveries: 0,
      recoveryRate: 1,
      // Every failed attempt counts, also the OOM that recovery fixed; failures count jobs.
      errorDistribution: { COMFYUI_INVALID_PARAMETERS: 1, COMFYUI_OOM: 1 },
      failuresByCode: { COMFYUI_INVALID_PARAMETERS: 1 },
      totalErrors: 2,
      // The one job that needed a retry completed.
      retrySuccessRate: 1,
      degradation: expect.any(String),
    });
    expect(Object.keys(s).sort()).toEqual(
      ['analytics', 'byStatus', 'degradation', 'goodput', 'errorDistribution', 'failuresByCode', 'failedRecoveries', 'recoveryRate', 'retrySuccessRate', 'successfulRecoveries', 'totalErrors', 'totalJobs'].sort(),
    );
  });

  it('GET /api/stats carries error analytics from the event stream: by code, category, severity, recovery per code', async () => {
    const { analytics } = (await (await fetch(`${rig.url}/api/stats`)).json()) as { analytics: Record<string, unknown> & { recoveryByCode: Record<string, unknown> } };
    expect(analytics).toMatchObject({
      totalErrors: 2,
      byCode: { COMFYUI_INVALID_PARAMETERS: 1, COMFYUI_OOM: 1 },
      byCategory: { permanent: 1, recoverable: 1 },
      // The OOM was recovered with a change (or retried away); the invalid parameters failed.
      bySeverity: { high: 1, critical: 0, pending: 0 },
      retrySuccessRate: 1,
      retriedJobs: 1,
    });
    expect(analytics.recoveryByCode['COMFYUI_OOM']).toEqual({ jobs: 1, completed: 1, rate: 1, target: 0.9, meetsTarget: true });
    expect(analytics.recoveryByCode['COMFYUI_INVALID_PARAMETERS']).toEqual({ jobs: 1, completed: 0, rate: 0, target: null, meetsTarget: null });
    const detailed = (await (await fetch(`${rig.url}/api/stats/detailed`)).json()) as { analytics: { totalErrors: number } };
    expect(detailed.analytics.totalErrors).toBe(2);
  });

  it('GET /api/stats carries goodput: GPU-seconds failed by code and server, and succeeded; each job view its own from its attempts', async () => {
    type Totals = { failedSeconds: number; succeededSeconds: number; savedSeconds: number; attempts: number; failedAttempts: number };
    const { goodput } = (await (await fetch(`${rig.url}/api/stats`)).json()) as { goodput: { since: string; total: Totals; goodput: number; byCode: Record<string, Totals>; byServer: Record<string, Totals> } };
    // Four attempts settled: ok, invalid (failed), the OOM (failed) and its recovery (ok).
    expect(goodput.total).toMatchObject({ attempts: 4, failedAttempts: 2 });
    expect(Object.keys(goodput.byCode).sort()).toEqual(['COMFYUI_INVALID_PARAMETERS', 'COMFYUI_OOM']);
    expect(goodput.byCode['COMFYUI_OOM']).toMatchObject({ attempts: 1, failedAttempts: 1, succeededSeconds: 0 });
    expect(goodput.byServer['sim-0']).toMatchObject({ attempts: 4, failedAttempts: 2 });
    expect(goodput.total.succeededSeconds).toBeGreaterThan(0);
    expect(goodput.goodput).toBeCloseTo(goodput.total.succeededSeconds / (goodput.total.succeededSeconds + goodput.total.failedSeconds), 10);
    expect(Date.parse(goodput.since)).toBeLessThanOrEqual(Date.now());
    const detailed = (await (await fetch(`${rig.url}/api/stats/detailed`)).json()) as { goodput: { total: Totals } };
    expect(detailed.goodput.total.attempts).toBe(4);
    const recovered = (await (await fetch(`${rig.url}/api/jobs/${jobs[2]!.id}`)).json()) as { goodput: Totals };
    expect(recovered.goodput).toMatchObject({ attempts: 2, failedAttempts: 1, savedSeconds: 0 });
    expect(recovered.goodput.succeededSeconds).toBeGreaterThan(0);
  });

  it('GET /api/stats/detailed adds per-strategy, per-server and over-time figures', async () => {
    const d = (await (await fetch(`${rig.url}/api/stats/detailed?hours=6`)).json()) as {
      byStrategy: Record<string, { succeeded: number; failed: number; pending: number }>;
      byServer: Record<string, { attempts: number; completed: number; failed: number; errors: Record<string, number>; healthy: boolean | null; breaker: string | null }>;
      overTime: Array<{ start: string; submitted: number; completed: number; failed: number; recoveries: number }>;
      window: { hours: number; bucketMinutes: number; sampledJobs: number; truncated: boolean };
      totalJobs: number;
    };
    expect(d.totalJobs).toBe(3);
    const strategy = jobs[2]!.recoveryHistory[0]!.strategy;
    expect(d.byStrategy[strategy]).toMatchObject({ succeeded: 1, failed: 0 });
    expect(d.byServer['sim-0']).toMatchObject({ attempts: 4, completed: 2, failed: 2, errors: { COMFYUI_INVALID_PARAMETERS: 1, COMFYUI_OOM: 1 }, healthy: true, breaker: expect.any(String) });
    expect(d.window).toEqual({ hours: 6, bucketMinutes: 60, sampledJobs: 3, truncated: false });
    expect(d.overTime).toHaveLength(6);
    const total = d.overTime.reduce((a, b) => ({ submitted: a.submitted + b.submitted, completed: a.completed + b.completed, failed: a.failed + b.failed, recoveries: a.recoveries + b.recoveries }), { submitted: 0, completed: 0, failed: 0, recoveries: 0 });
    expect(total).toEqual({ submitted: 3, completed: 2, failed: 1, recoveries: 1 });
    expect(Date.parse(d.overTime[1]!.start) - Date.parse(d.overTime[0]!.start)).toBe(3_600_000);
  });

  it('GET /metrics serves the telemetry registry in Prometheus text', async () => {
    // A second app over the same guard, with metrics.
    const withMetrics = await listen({ guard: rig.guard, metrics, dashboard: false });
    try {
      const res = await fetch(`${withMetrics.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await res.text();
      expect(text).toMatch(/^# HELP comfyguard_/m);
      for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) expect(line).toMatch(/^comfyguard_/);
      expect(text).toMatch(/^comfyguard_gpu_seconds_total\{outcome="failed",server="sim-0",code="COMFYUI_OOM"\} [\d.e-]+$/m);
      expect(text).toMatch(/^comfyguard_gpu_seconds_total\{outcome="succeeded",server="sim-0",code=""\} [\d.e-]+$/m);
    } finally {
      await withMetrics.close();
    }
    const without = await fetch(`${rig.url}/metrics`);
    expect(without.status).toBe(404);
    expect(((await without.json()) as { error: { code: string } }).error.code).toBe('METRICS_DISABLED');
  });
});

describe('health', () => {
  let rig: ServiceRig;
  beforeAll(async () => {
    rig = await startServiceRig([{ vram: '24GiB' }, { vram: '8GiB' }]);
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('reports comfyguard, the store, the queue and every server', async () => {
    const res = await fetch(`${rig.url}/api/health`);
    expect(res.status).toBe(200);
    const h = (await res.json()) as { status: string; comfyguard: { status: string; version: string; uptimeSeconds: number }; store: { status: string; latencyMs: number }; queue: { status: string; queued: number; running: number }; servers: Array<{ name: string; status: string }> };
    expect(h.status).toBe('ok');
    expect(h.comfyguard).toMatchObject({ status: 'ok', version: expect.stringMatching(/^\d+\.\d+\.\d+/) });
    expect(h.store).toMatchObject({ status: 'ok', latencyMs: expect.any(Number) });
    expect(h.queue).toEqual({ status: 'ok', queued: 0, running: 0 });
    expect(h.servers.map((s) => [s.name, s.status])).toEqual([
      ['sim-0', 'ok'],
      ['sim-1', 'ok'],
    ]);
  });

  it('GET /api/health/comfyui shows health, latency, VRAM, queue, breaker and degradation per server', async () => {
    const c = (await (await fetch(`${rig.url}/api/health/comfyui`)).json()) as {
      degradation: string;
      healthy: number;
      total: number;
      servers: Array<{ name: string; healthy: boolean; latencyMs: number | null; vram: { total: number | null; free: number | null }; queueRemaining: number | null; breaker: string; degradation: string; checkedAt: string | null }>;
    };
    expect(c).toMatchObject({ healthy: 2, total: 2, degradation: expect.any(String) });
    const [a, b] = c.servers;
    expect(a).toMatchObject({ name: 'sim-0', healthy: true, breaker: 'closed', queueRemaining: 0, degradation: c.degradation });
    expect(a!.vram.total).toBe(24 * 2 ** 30);
    expect(b!.vram.total).toBe(8 * 2 ** 30);
    expect(a!.latencyMs).toEqual(expect.any(Number));
    expect(a!.checkedAt).toMatch(/^\d{4}-/);
  });

  it('says degraded, still 200, when a server is down', async () => {
    rig.sims[1]!.kill();
    try {
      const h = await waitFor(async () => {
        const body = (await (await fetch(`${rig.url}/api/health`)).json()) as { status: string; servers: Array<{ name: string; status: string }> };
        return body.servers.find((s) => s.name === 'sim-1')?.status === 'down' ? body : null;
      }, 'sim-1 to be reported down');
      expect(h.status).toBe('degraded');
      const c = (await (await fetch(`${rig.url}/api/health/comfyui`)).json()) as { healthy: number; servers: Array<{ name: string; lastError: string | null }> };
      expect(c.healthy).toBe(1);
      expect(c.servers[1]!.lastError).toEqual(expect.any(String));
    } finally {
      await rig.sims[1]!.restart();
    }
  });
});
