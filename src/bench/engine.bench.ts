/**
 * Jobs per second through the guard versus the bare protocol client, on the same instant simulator
 * in one run, and the latency the guard adds (p50/p99 of submit-to-completed).
 */
import { randomUUID } from 'node:crypto';
import { ComfyClient } from '../comfy/client.js';
import { ComfyEventStream } from '../comfy/event-stream.js';
import type { ApiWorkflow } from '../comfy/types.js';
import { createGuard } from '../jobs/guard.js';
import { startSimulator } from '../sim/index.js';
import { percentile, round, type BenchResult } from './harness.js';

const JOBS = Number(process.env.BENCH_ENGINE_JOBS ?? 400);
const CONCURRENCY = 8;

function workflow(seed: number): ApiWorkflow {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color: seed % 16_777_215 } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'bench' } },
  };
}

async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= n) return;
        out[i] = await fn(i);
      }
    }),
  );
  return out;
}

async function bare(url: string, seedBase: number): Promise<{ seconds: number; latencies: number[] }> {
  const client = new ComfyClient({ baseUrl: url });
  const clientId = randomUUID();
  const stream = new ComfyEventStream({ baseUrl: url, clientId });
  const waiters = new Map<string, () => void>();
  stream.on((e) => {
    if (e.kind === 'message' && e.message.type === 'executing' && e.message.data.node === null && e.message.data.prompt_id) {
      waiters.get(e.message.data.prompt_id)?.();
    }
  });
  stream.start();
  await stream.whenOpen();
  const t0 = performance.now();
  const latencies = await pool(JOBS, CONCURRENCY, async (i) => {
    const promptId = randomUUID();
    const start = performance.now();
    const done = new Promise<void>((r) => waiters.set(promptId, r));
    await client.submitPrompt(workflow(seedBase + i), { clientId, promptId });
    await done;
    await client.getHistory(promptId);
    waiters.delete(promptId);
    return performance.now() - start;
  });
  const seconds = (performance.now() - t0) / 1000;
  await stream.close();
  await client.close();
  return { seconds, latencies };
}

async function guarded(url: string, seedBase: number): Promise<{ seconds: number; latencies: number[] }> {
  const guard = await createGuard({ servers: [url], store: 'memory:', concurrency: CONCURRENCY, cleanupIntervalMs: 0 });
  const t0 = performance.now();
  const latencies = await pool(JOBS, CONCURRENCY, async (i) => {
    const start = performance.now();
    const { id } = await guard.submit(workflow(seedBase + i));
    const job = await guard.wait(id);
    if (job.status !== 'completed') throw new Error(`bench job ended ${job.status}: ${job.error?.message}`);
    return performance.now() - start;
  });
  const seconds = (performance.now() - t0) / 1000;
  await guard.close();
  return { seconds, latencies };
}

export async function run(): Promise<BenchResult> {
  const sim = await startSimulator({ stepMs: 0 });
  try {
    // Warm both paths once so JIT and connection set-up are not measured.
    await bare(sim.url, 1_000_000);
    const b = await bare(sim.url, 0);
    const g = await guarded(sim.url, 2_000_000);
    const bs = [...b.latencies].sort((x, y) => x - y);
    const gs = [...g.latencies].sort((x, y) => x - y);
    return {
      name: 'engine',
      title: `Guard vs bare client: ${JOBS} jobs, concurrency ${CONCURRENCY}, instant simulator`,
      rows: [
        { path: 'bare client', 'jobs/s': round(JOBS / b.seconds), 'p50 ms': round(percentile(bs, 50), 2), 'p99 ms': round(percentile(bs, 99), 2) },
        { path: 'guard (memory store)', 'jobs/s': round(JOBS / g.seconds), 'p50 ms': round(percentile(gs, 50), 2), 'p99 ms': round(percentile(gs, 99), 2) },
        {
          path: 'added by guard',
          'jobs/s': round(JOBS / g.seconds - JOBS / b.seconds),
          'p50 ms': round(percentile(gs, 50) - percentile(bs, 50), 2),
          'p99 ms': round(percentile(gs, 99) - percentile(bs, 99), 2),
        },
      ],
      notes: ['Each job: EmptyImage -> ImageInvert -> SaveImage with a distinct colour (no cache hits).'],
    };
  } finally {
    await sim.close();
  }
}
