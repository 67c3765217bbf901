/**
 * Jobs per second through the guard versus the bare protocol client, on the same instant simulator
 * in one run, and the latency the guard adds (p50/p99 of submit-to-completed).
 */
import { randomUUID } from 'node:crypto';
import { ComfyClient } from '../comfy/client.js';
import { ComfyEventStream } from '../comfy/event-stream.js';
import type { ApiWorkflow } from '../comfy/types.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createGuard } from '../jobs/guard.js';
import type { JobStore } from '../store/contract.js';
import { MemoryStore } from '../store/memory.js';
import { PostgresStore } from '../store/postgres.js';
import { SqliteStore } from '../store/sqlite.js';
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

/** Store calls that write, counted per method: the engine's cost in round trips / commits. */
const WRITE_METHODS = ['createJob', 'transition', 'recordAttempt', 'appendRecoveryStep', 'updateProgress', 'patchJob', 'setMeta', 'blockServer'] as const;

function countingStore(inner: JobStore): { store: JobStore; writes: () => number } {
  let writes = 0;
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      const fn = v as (...a: unknown[]) => unknown;
      if ((WRITE_METHODS as readonly string[]).includes(String(prop))) {
        return (...args: unknown[]) => {
          writes++;
          return fn.apply(target, args);
        };
      }
      return fn.bind(target);
    },
  });
  return { store, writes: () => writes };
}

async function guarded(url: string, seedBase: number, inner: JobStore): Promise<{ seconds: number; latencies: number[]; writesPerJob: number }> {
  const { store, writes } = countingStore(inner);
  const guard = await createGuard({ servers: [url], store, concurrency: CONCURRENCY, cleanupIntervalMs: 0 });
  const before = writes();
  const t0 = performance.now();
  const latencies = await pool(JOBS, CONCURRENCY, async (i) => {
    const start = performance.now();
    const { id } = await guard.submit(workflow(seedBase + i));
    const job = await guard.wait(id);
    if (job.status !== 'completed') throw new Error(`bench job ended ${job.status}: ${job.error?.message}`);
    return performance.now() - start;
  });
  const seconds = (performance.now() - t0) / 1000;
  const writesPerJob = (writes() - before) / JOBS;
  await guard.close();
  return { seconds, latencies, writesPerJob };
}

const PG_URL = process.env.COMFYGUARD_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The stores compared: name -> an opened store and how to dispose of it. */
async function stores(): Promise<Array<{ name: string; open: () => Promise<{ store: JobStore; dispose: () => Promise<void> }> }>> {
  return [
    { name: 'memory', open: async () => ({ store: new MemoryStore(), dispose: async () => undefined }) },
    {
      name: 'SQLite (synchronous=FULL)',
      open: async () => {
        const dir = mkdtempSync(join(tmpdir(), 'cg-bench-'));
        const store = new SqliteStore({ path: join(dir, 'cg.db'), synchronous: 'FULL' });
        return { store, dispose: async () => { await store.close(); rmSync(dir, { recursive: true, force: true }); } };
      },
    },
    {
      name: 'PostgreSQL',
      open: async () => {
        const schema = `bench_${randomUUID().slice(0, 8)}`;
        const store = new PostgresStore({ connectionString: PG_URL, schema, applicationName: 'comfyguard-bench' });
        return {
          store,
          dispose: async () => {
            await store.close();
            const c = new pg.Client({ connectionString: PG_URL });
            await c.connect();
            await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => c.end());
          },
        };
      },
    },
  ];
}

export async function run(): Promise<BenchResult> {
  const sim = await startSimulator({ stepMs: 0 });
  try {
    // Warm both paths once so JIT and connection set-up are not measured.
    await bare(sim.url, 1_000_000);
    const b = await bare(sim.url, 0);
    const bs = [...b.latencies].sort((x, y) => x - y);
    const bareRate = JOBS / b.seconds;
    const rows: Array<Record<string, string | number>> = [
      { path: 'bare client', 'jobs/s': round(bareRate), 'x bare': 1, 'p50 ms': round(percentile(bs, 50), 2), 'p99 ms': round(percentile(bs, 99), 2), 'added p50 ms': 0, 'writes/job': 0 },
    ];
    let seed = 2_000_000;
    for (const s of await stores()) {
      const { store, dispose } = await s.open();
      try {
        const g = await guarded(sim.url, (seed += JOBS), store);
        const gs = [...g.latencies].sort((x, y) => x - y);
        rows.push({
          path: `guard, ${s.name}`,
          'jobs/s': round(JOBS / g.seconds),
          'x bare': round(JOBS / g.seconds / bareRate, 2),
          'p50 ms': round(percentile(gs, 50), 2),
          'p99 ms': round(percentile(gs, 99), 2),
          'added p50 ms': round(percentile(gs, 50) - percentile(bs, 50), 2),
          'writes/job': round(g.writesPerJob, 2),
        });
      } finally {
        await dispose();
      }
    }
    return {
      name: 'engine',
      title: `Guard vs bare client: ${JOBS} jobs, concurrency ${CONCURRENCY}, instant simulator`,
      rows,
      notes: [
        'Each job: EmptyImage -> ImageInvert -> SaveImage with a distinct colour (no cache hits).',
        'writes/job: store calls that write, per successful one-attempt job (creation included).',
        `PostgreSQL at ${PG_URL.replace(/\/\/[^@]*@/, '//')} (COMFYGUARD_BENCH_PG_URL), a fresh schema dropped afterwards.`,
      ],
    };
  } finally {
    await sim.close();
  }
}
