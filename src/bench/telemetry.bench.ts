/**
 * Telemetry cost: job events per second through the metrics subscriber (the guard calls it inline
 * on every transition), scrape time of the registry, and signed webhook deliveries per second to a
 * loopback receiver.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { DegradationLevel, GuardStats, JobEvent, ServerHealthView } from '../jobs/guard-api.js';
import { JOB_STATUSES, type JobRecord, type JobStatus } from '../jobs/types.js';
import { createMetrics, type MetricsSource } from '../telemetry/metrics.js';
import { createWebhookNotifier } from '../telemetry/webhook.js';
import { percentile, round, type BenchResult } from './harness.js';

const JOBS = 20_000;
const SERVERS = 20;

/** An event source with fixed read-only views, so the bench measures metrics, not a guard. */
class Source implements MetricsSource {
  listener: ((e: JobEvent) => void) | null = null;
  onEvent(l: (e: JobEvent) => void): () => void {
    this.listener = l;
    return () => (this.listener = null);
  }
  async stats(): Promise<GuardStats> {
    const byStatus = Object.fromEntries(JOB_STATUSES.map((s) => [s, 10])) as Record<JobStatus, number>;
    return { totalJobs: 70, byStatus, totalErrors: 0, successfulRecoveries: 0, failedRecoveries: 0, recoveryRate: 0, retrySuccessRate: 0, errorDistribution: {}, failuresByCode: {}, byStrategy: {}, degradation: 'full' };
  }
  async servers(): Promise<ServerHealthView[]> {
    return Array.from({ length: SERVERS }, (_, i) => ({
      name: `gpu-${i}`,
      url: `http://gpu-${i}:8188`,
      drained: false,
      healthy: i % 5 !== 0,
      latencyMs: 3,
      vramTotal: 1,
      vramFree: 1,
      queueRemaining: i,
      breaker: 'closed' as const,
      lastError: null,
      checkedAt: 0,
      tags: [],
    }));
  }
  degradation(): DegradationLevel {
    return 'full';
  }
}

function job(id: string, status: JobStatus, attempts: number): JobRecord {
  return {
    id,
    status,
    workflow: {},
    params: {},
    options: {},
    priority: 0,
    idempotencyKey: null,
    progress: 0,
    server: 'gpu-1',
    promptId: null,
    attempts: Array.from({ length: attempts }, (_, i) => ({
      number: i + 1,
      server: 'gpu-1',
      promptId: `${id}-${i}`,
      status: i < attempts - 1 ? ('failed' as const) : ('running' as const),
      workflow: {},
      ...(i < attempts - 1 ? { code: 'COMFYUI_OOM' } : {}),
      startedAt: 0,
    })),
    recoveryHistory: [],
    retryCount: attempts - 1,
    outputs: [],
    error: null,
    checkpoint: null,
    degraded: null,
    createdAt: 0,
    updatedAt: 1000,
    startedAt: 0,
    endedAt: status === 'completed' ? 1500 : null,
  };
}

async function metricsRows(): Promise<Array<Record<string, string | number>>> {
  const source = new Source();
  const metrics = createMetrics(source);
  try {
    const emit = source.listener!;
    // Each job: queued, running (attempt 1), completed. Every 10th needs a second attempt.
    const started = performance.now();
    let events = 0;
    for (let i = 0; i < JOBS; i++) {
      const id = `j${i}`;
      const n = i % 10 === 0 ? 2 : 1;
      emit({ type: 'state', jobId: id, from: null, to: 'queued', at: 0, job: job(id, 'queued', 0) });
      emit({ type: 'state', jobId: id, from: 'queued', to: 'running', at: 0, job: job(id, 'running', n) });
      emit({ type: 'state', jobId: id, from: 'running', to: 'completed', at: 0, job: job(id, 'completed', n) });
      events += 3;
    }
    const eventSecs = (performance.now() - started) / 1000;
    const scrapes: number[] = [];
    let bytes = 0;
    for (let i = 0; i < 50; i++) {
      const t = performance.now();
      bytes = (await metrics.registry.metrics()).length;
      scrapes.push(performance.now() - t);
    }
    scrapes.sort((a, b) => a - b);
    return [
      { measure: 'metrics: job events handled', value: Math.round(events / eventSecs), unit: 'events/s' },
      { measure: `metrics: scrape p50 (${SERVERS} servers, ${bytes} bytes)`, value: round(percentile(scrapes, 50), 2), unit: 'ms' },
      { measure: 'metrics: scrape p99', value: round(percentile(scrapes, 99), 2), unit: 'ms' },
    ];
  } finally {
    metrics.close();
  }
}

async function webhookRows(): Promise<Array<Record<string, string | number>>> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  const notifier = createWebhookNotifier({ secret: 'bench-secret', outbound: { allowLoopback: true } });
  try {
    const n = 2_000;
    const started = performance.now();
    for (let i = 0; i < n; i++) void notifier.notify(url, { event: 'job.completed', id: `j${i}`, outputs: [] });
    await notifier.onIdle();
    const secs = (performance.now() - started) / 1000;
    return [{ measure: `webhooks: ${n} signed POSTs to loopback`, value: Math.round(n / secs), unit: 'deliveries/s' }];
  } finally {
    await notifier.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/** Runs the telemetry benchmark. */
export async function run(): Promise<BenchResult> {
  return {
    name: 'telemetry',
    title: 'Telemetry cost (metrics on job events, scrapes, webhooks)',
    rows: [...(await metricsRows()), ...(await webhookRows())],
    notes: [`${JOBS} jobs x 3 state events; every 10th job has 2 attempts`],
  };
}
