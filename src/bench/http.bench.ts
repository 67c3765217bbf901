/**
 * HTTP service: `POST /api/jobs` submissions per second and p50/p99 latency, one client at a time
 * and with concurrent clients, against a service over a guard (memory store) with an instant
 * simulator (stepMs 0). Also `GET /api/jobs/:id` for comparison. Every job is drained before the
 * next phase so a growing backlog does not skew the figures.
 */
import { Agent, request } from 'undici';
import type { ApiWorkflow } from '../comfy/types.js';
import { createGuard } from '../jobs/guard.js';
import type { Guard } from '../jobs/guard-api.js';
import { buildApp } from '../server/app.js';
import { startSimulator } from '../sim/index.js';
import { percentile, round, type BenchResult } from './harness.js';

const REQUESTS = Number(process.env.BENCH_HTTP_REQUESTS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_HTTP_CONCURRENCY ?? 16);
const WARMUP = 100;

function workflow(seed: number): ApiWorkflow {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color: seed % 16_777_215 } },
    '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'bench-http' } },
  };
}

interface Phase {
  latencies: number[];
  seconds: number;
  ids: string[];
}

async function phase(n: number, concurrency: number, call: (i: number) => Promise<string>): Promise<Phase> {
  const latencies: number[] = new Array(n);
  const ids: string[] = new Array(n);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        const start = performance.now();
        ids[i] = await call(i);
        latencies[i] = performance.now() - start;
      }
    }),
  );
  return { latencies, seconds: (performance.now() - t0) / 1000, ids };
}

async function drain(guard: Guard): Promise<void> {
  for (;;) {
    const { byStatus } = await guard.stats();
    if ((byStatus.queued ?? 0) + (byStatus.running ?? 0) + (byStatus.recovering ?? 0) === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

function row(name: string, concurrency: number, p: Phase): Record<string, string | number> {
  const sorted = [...p.latencies].sort((a, b) => a - b);
  return {
    request: name,
    concurrency,
    requests: p.latencies.length,
    'req/s': round(p.latencies.length / p.seconds, 0),
    'p50 ms': round(percentile(sorted, 50), 2),
    'p99 ms': round(percentile(sorted, 99), 2),
    'max ms': round(sorted.at(-1) ?? 0, 2),
  };
}

/** Runs the HTTP benchmark. */
export async function run(): Promise<BenchResult> {
  const sim = await startSimulator({ port: 0, stepMs: 0, name: 'bench-sim' });
  const guard = await createGuard({ servers: [{ url: sim.url, name: sim.name }], store: 'memory:', cleanupIntervalMs: 0, progressThrottleMs: 1_000 });
  const app = buildApp({ guard, dashboard: false });
  const dispatcher = new Agent({ connections: CONCURRENCY, pipelining: 1 });
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    const base = `http://127.0.0.1:${port}`;
    let seed = 0;
    const submit = async (): Promise<string> => {
      const res = await request(`${base}/api/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ workflow: workflow(seed++), params: { width: 64 } }),
        dispatcher,
      });
      if (res.statusCode !== 202) throw new Error(`POST /api/jobs answered ${res.statusCode}: ${await res.body.text()}`);
      return ((await res.body.json()) as { id: string }).id;
    };
    const get = (id: string) => async (): Promise<string> => {
      const res = await request(`${base}/api/jobs/${id}`, { dispatcher });
      if (res.statusCode !== 200) throw new Error(`GET answered ${res.statusCode}`);
      await res.body.json();
      return id;
    };

    await phase(WARMUP, 4, submit);
    await drain(guard);
    // The same submissions without HTTP: what the service layer adds on top of the guard.
    const direct = await phase(Math.min(REQUESTS, 500), 1, async () => (await guard.submit(workflow(seed++), { params: { width: 64 } })).id);
    await drain(guard);
    const sequential = await phase(Math.min(REQUESTS, 500), 1, submit);
    await drain(guard);
    const concurrent = await phase(REQUESTS, CONCURRENCY, submit);
    const drainStart = performance.now();
    await drain(guard);
    const drainSeconds = (performance.now() - drainStart) / 1000;
    const ids = concurrent.ids;
    const reads = await phase(REQUESTS, CONCURRENCY, (i) => get(ids[i % ids.length]!)());
    const failed = (await guard.stats()).byStatus.failed ?? 0;

    return {
      name: 'http',
      title: 'HTTP service: POST /api/jobs (submit) and GET /api/jobs/:id over loopback, instant simulator, memory store',
      rows: [row('guard.submit (no HTTP)', 1, direct), row('POST /api/jobs', 1, sequential), row('POST /api/jobs', CONCURRENCY, concurrent), row('GET /api/jobs/:id', CONCURRENCY, reads)],
      notes: [
        `Latency is measured at the client (undici, keep-alive), request start to parsed JSON body; ${WARMUP} warm-up submissions are excluded.`,
        `The ${REQUESTS} concurrent submissions were then executed by the guard in ${round(drainSeconds, 1)} s (${failed} jobs failed).`,
        'A submission validates the body (zod), checks the workflow and params, persists the job and enqueues it before answering 202.',
      ],
    };
  } finally {
    await app.close();
    await guard.close();
    await dispatcher.close();
    await sim.close();
  }
}
