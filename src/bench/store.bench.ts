/**
 * Store benchmark: sequential create / transition / progress / get operations per second for each
 * backend (memory as the baseline, SQLite with synchronous FULL and NORMAL, PostgreSQL, Redis), and
 * the time `listNonTerminal()` takes over 10,000 active jobs, which bounds restart recovery.
 * PostgreSQL and Redis runs use their own database / key prefix and remove it afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { Redis } from 'ioredis';
import type { ApiWorkflow } from '../comfy/types.js';
import type { JobRecord } from '../jobs/types.js';
import type { JobStore } from '../store/contract.js';
import { MemoryStore } from '../store/memory.js';
import { PostgresStore } from '../store/postgres.js';
import { RedisStore } from '../store/redis.js';
import { SqliteStore } from '../store/sqlite.js';
import { percentile, round, type BenchResult } from './harness.js';

const PG_ADMIN_URL = process.env.COMFYGUARD_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.COMFYGUARD_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const OPS = Number(process.env.COMFYGUARD_BENCH_STORE_OPS ?? 2000);
const RECOVER_JOBS = 10_000;

interface Backend {
  name: string;
  open(): Promise<{ store: JobStore; cleanup: () => Promise<void> }>;
}

function workflow(seed: number): ApiWorkflow {
  return {
    '3': { class_type: 'KSampler', inputs: { seed, steps: 20, cfg: 8, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] } },
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'v1-5-pruned-emaonly.safetensors' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: 512, height: 512, batch_size: 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: 'a lighthouse on a cliff at dusk, volumetric light, highly detailed', clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry, low quality', clip: ['4', 1] } },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'ComfyUI', images: ['8', 0] } },
  };
}

/** A job as the engine holds it mid-run: one attempt (with its workflow copy) and a checkpoint. */
function activeJob(i: number, withAttempt: boolean): JobRecord {
  const now = 1_700_000_000_000 + i;
  const wf = workflow(1_000_000_000_000 + i);
  return {
    id: randomUUID(),
    status: 'queued',
    workflow: wf,
    params: { width: 512, height: 512, steps: 20, seed: 1_000_000_000_000 + i },
    options: { maxRetries: 3, timeoutMs: 600_000 },
    priority: 0,
    idempotencyKey: `bench-${i}-${randomBytes(4).toString('hex')}`,
    progress: 0,
    server: withAttempt ? 'http://gpu-1:8188' : null,
    promptId: null,
    attempts: withAttempt ? [{ number: 1, server: 'http://gpu-1:8188', promptId: randomUUID(), status: 'running', workflow: wf, startedAt: now }] : [],
    recoveryHistory: [],
    retryCount: 0,
    outputs: [],
    error: null,
    checkpoint: withAttempt ? { progress: 40, completedOutputs: {}, cacheServer: 'http://gpu-1:8188', promptId: null, updatedAt: now } : null,
    degraded: null,
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    endedAt: null,
  };
}

async function timeEach(n: number, fn: (i: number) => Promise<unknown>): Promise<{ opsPerSec: number; p50: number; p99: number }> {
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await fn(i);
    lat.push(performance.now() - s);
  }
  const total = performance.now() - t0;
  lat.sort((a, b) => a - b);
  return { opsPerSec: (n / total) * 1000, p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

/** Runs `fn` over 0..n-1 with at most `width` calls in flight. */
async function parallel(n: number, width: number, fn: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

function backends(): Backend[] {
  const sqlite = (mode: 'FULL' | 'NORMAL'): Backend => ({
    name: `sqlite (synchronous=${mode})`,
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cg-bench-'));
      const store = new SqliteStore({ path: join(dir, 'bench.db'), synchronous: mode });
      return { store, cleanup: async () => (await store.close(), rmSync(dir, { recursive: true, force: true })) };
    },
  });
  return [
    { name: 'memory', open: async () => ({ store: new MemoryStore(), cleanup: async () => undefined }) },
    sqlite('FULL'),
    sqlite('NORMAL'),
    {
      name: 'postgres',
      open: async () => {
        const name = `cg_bench_${randomBytes(5).toString('hex')}`;
        const admin = async (sql: string) => {
          const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5000 });
          c.on('error', () => undefined);
          await c.connect();
          try {
            await c.query(sql);
          } finally {
            await c.end();
          }
        };
        await admin(`CREATE DATABASE ${name}`);
        const u = new URL(PG_ADMIN_URL);
        u.pathname = `/${name}`;
        const store = new PostgresStore({ connectionString: u.toString(), applicationName: 'cg_bench', poolSize: 16 });
        return { store, cleanup: async () => (await store.close(), await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)) };
      },
    },
    {
      name: 'redis',
      open: async () => {
        const prefix = `cgbench:${randomBytes(5).toString('hex')}:`;
        const store = new RedisStore({ url: REDIS_URL, keyPrefix: prefix, connectionName: 'cg-bench' });
        return {
          store,
          cleanup: async () => {
            await store.close();
            const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
            let cursor = '0';
            do {
              const [nextCursor, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
              if (keys.length) await r.unlink(...keys);
              cursor = nextCursor;
            } while (cursor !== '0');
            await r.quit();
          },
        };
      },
    },
  ];
}

async function benchBackend(b: Backend, rows: BenchResult['rows'], notes: string[]): Promise<void> {
  let opened: Awaited<ReturnType<Backend['open']>>;
  try {
    opened = await b.open();
    await opened.store.init();
  } catch (e) {
    notes.push(`${b.name}: skipped, could not open (${e instanceof Error ? e.message : String(e)}); run scripts/services.sh`);
    return;
  }
  const { store } = opened;
  try {
    const jobs = Array.from({ length: OPS }, (_, i) => activeJob(i, false));
    const row = (op: string, r: { opsPerSec: number; p50: number; p99: number }) =>
      rows.push({ backend: b.name, op, n: OPS, 'ops/s': Math.round(r.opsPerSec), 'p50 ms': round(r.p50, 3), 'p99 ms': round(r.p99, 3) });
    row('createJob', await timeEach(OPS, (i) => store.createJob(jobs[i] as JobRecord)));
    row('transition', await timeEach(OPS, (i) => store.transition((jobs[i] as JobRecord).id, 'queued', 'running', { startedAt: 1_700_000_100_000 + i })));
    row('updateProgress', await timeEach(OPS, (i) => store.updateProgress((jobs[i] as JobRecord).id, 50)));
    row('getJob', await timeEach(OPS, (i) => store.getJob((jobs[i] as JobRecord).id)));

    // Restart recovery: 10,000 active jobs (OPS of them already there), each with one attempt and a checkpoint.
    const seedStart = performance.now();
    await parallel(RECOVER_JOBS - OPS, b.name.startsWith('sqlite') || b.name === 'memory' ? 1 : 16, (i) => store.createJob(activeJob(OPS + i, true)));
    const seedMs = performance.now() - seedStart;
    const times: number[] = [];
    let count = 0;
    for (let k = 0; k < 3; k++) {
      const t = performance.now();
      const { jobs: listed, corrupt } = await store.listNonTerminal();
      times.push(performance.now() - t);
      count = listed.length + corrupt.length;
    }
    if (count !== RECOVER_JOBS) notes.push(`${b.name}: listNonTerminal returned ${count} jobs, expected ${RECOVER_JOBS}`);
    times.sort((x, y) => x - y);
    rows.push({ backend: b.name, op: `listNonTerminal (${RECOVER_JOBS} jobs)`, n: 3, 'ops/s': '', 'p50 ms': round(times[1] ?? 0, 1), 'p99 ms': round(times[2] ?? 0, 1) });
    notes.push(`${b.name}: seeding ${RECOVER_JOBS - OPS} jobs took ${Math.round(seedMs)} ms`);
  } finally {
    await opened.cleanup();
  }
}

/** Runs the store benchmark over every backend that can be opened. */
export async function run(): Promise<BenchResult> {
  const rows: BenchResult['rows'] = [];
  const docBytes = Buffer.byteLength(JSON.stringify(activeJob(0, true)));
  const notes: string[] = [
    `sequential awaited calls (one in flight), ${OPS} per operation; listNonTerminal: median (p50) and worst (p99 column) of 3 runs`,
    `a job document with one attempt and a checkpoint is ${docBytes} bytes of JSON`,
  ];
  for (const b of backends()) await benchBackend(b, rows, notes);
  return { name: 'store', title: 'Job store operations per backend', rows, notes };
}
