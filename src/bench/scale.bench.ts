/**
 * `npm run bench -- scale`: the figures of the scale issue, at sizes a busy 2-core machine can run.
 *
 * - Queueing: the real in-process dispatcher's enqueue rate at 1k / 100k / 1M queued, and
 *   `guard.submit` (validation, store write, enqueue) on the memory store and SQLite. The guard's
 *   dispatcher is real but held (never started), so nothing runs and only queueing is measured.
 * - Restart recovery of 10k / 100k / 1M unfinished jobs from SQLite (seeded by one INSERT ... SELECT):
 *   `recoverUnfinishedJobs` into the real dispatchers (in-process, and BullMQ up to 100k), and a whole
 *   guard start (`createGuard`: store, pool, recovery) over the same file.
 * - Health and stats with 1M stored jobs on SQLite and PostgreSQL: the store calls those routes make
 *   (`stats`, `countByStatus`, `query({limit: 1})`), and on SQLite `/api/health` and `/api/stats`
 *   through the service's own app (`buildApp`, `inject`) over a real guard. Each call's CPU time is
 *   measured too: on a shared machine the wall-clock tail is mostly time spent descheduled.
 * - Bytes per stored job with a 17 KB workflow and 3 attempts, and store writes per successful job.
 *
 * Sizes come from the environment (defaults in brackets):
 *   SCALE_QUEUE=1000000 [1000000]   SCALE_SUBMIT=100000 [100000]   SCALE_RECOVERY=10000,100000,1000000 [10000,100000,1000000]
 *   SCALE_STORED=1000000 [1000000]  SCALE_PG=1 [1: measure PostgreSQL]  SCALE_BULLMQ=1 [1]  SCALE_BULLMQ_MAX=100000 [100000]
 * The full 1M run (submit included): SCALE_SUBMIT=1000000 NODE_OPTIONS=--max-old-space-size=8192 npm run bench -- scale
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { ApiWorkflow } from '../comfy/types.js';
import { createGuard } from '../jobs/guard.js';
import { recoverUnfinishedJobs } from '../jobs/restart-recovery.js';
import { newJobRecord, type AttemptRecord, type JobRecord } from '../jobs/types.js';
import { BullMqDispatcher } from '../queue/bullmq.js';
import { InProcessDispatcher } from '../queue/in-process.js';
import type { JobStore } from '../store/contract.js';
import { MemoryStore } from '../store/memory.js';
import { PostgresStore } from '../store/postgres.js';
import { SqliteStore } from '../store/sqlite.js';
import { rowValues } from '../store/sql-columns.js';
import { buildApp } from '../server/app.js';
import { startSimulator } from '../sim/index.js';
import { percentile, round, type BenchResult } from './harness.js';

const env = (name: string, dflt: string) => process.env[name] ?? dflt;
const QUEUE_MAX = Number(env('SCALE_QUEUE', '1000000'));
const SUBMIT_MAX = Number(env('SCALE_SUBMIT', '100000'));
const RECOVERY_SIZES = env('SCALE_RECOVERY', '10000,100000,1000000').split(',').map(Number);
const STORED = Number(env('SCALE_STORED', '1000000'));
const WITH_PG = env('SCALE_PG', '1') === '1';
const WITH_BULLMQ = env('SCALE_BULLMQ', '1') === '1';
const BULLMQ_MAX = Number(env('SCALE_BULLMQ_MAX', '100000'));
const PG_URL = env('COMFYGUARD_TEST_PG_URL', 'postgres://postgres@127.0.0.1:5432/test');
const REDIS_URL = env('COMFYGUARD_TEST_REDIS_URL', 'redis://127.0.0.1:6379');
const UNREACHABLE = 'http://127.0.0.1:9';

/** A dispatcher that queues for real but never runs anything: the guard's queueing, measured alone. */
class HeldDispatcher extends InProcessDispatcher {
  override async start(): Promise<void> {}
}

const smallWorkflow: ApiWorkflow = {
  '1': { class_type: 'EmptyLatentImage', inputs: { width: 512, height: 512, batch_size: 1 } },
  '2': { class_type: 'KSampler', inputs: { seed: 1, steps: 20, cfg: 7, sampler_name: 'euler', scheduler: 'normal', denoise: 1, latent_image: ['1', 0] } },
  '3': { class_type: 'SaveImage', inputs: { filename_prefix: 'x', images: ['2', 0] } },
};

/** About 17 KB of workflow: 60 nodes with prompts, like a large real graph. */
function bigWorkflow(): ApiWorkflow {
  const wf: ApiWorkflow = {};
  for (let i = 1; i <= 60; i++) {
    wf[String(i)] = {
      class_type: i % 3 === 0 ? 'CLIPTextEncode' : i % 3 === 1 ? 'KSampler' : 'LoraLoader',
      inputs: { text: `node ${i}: a detailed prompt, `.repeat(6), seed: 1000 + i, steps: 20, strength: 0.8, clip: [String(Math.max(1, i - 1)), 0] },
    };
  }
  return wf;
}

function ms(t0: number): number {
  return performance.now() - t0;
}

/** Rate (per second) of `n` calls of `fn` starting at index `from`. */
async function rateOf(n: number, from: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = from; i < from + n; i++) await fn(i);
  return (n / ms(t0)) * 1000;
}

/** Measures a growing queue: rate over a window of 1,000 ending at each checkpoint. */
async function growth(max: number, checkpoints: number[], fn: (i: number) => Promise<unknown>): Promise<Array<{ at: number; rate: number }>> {
  const out: Array<{ at: number; rate: number }> = [];
  let done = 0;
  // The checkpoints below the largest size, and the largest size itself (the end of the slope).
  for (const at of [...checkpoints.filter((c) => c < max), max]) {
    const window = Math.min(1000, at);
    if (at - window > done) {
      for (let i = done; i < at - window; i++) await fn(i);
      done = at - window;
    }
    out.push({ at, rate: await rateOf(window, done, fn) });
    done = at;
  }
  return out;
}

const CHECKPOINTS = [1000, 10_000, 100_000, 1_000_000];

async function queueing(rows: BenchResult['rows'], notes: string[], dir: string): Promise<void> {
  const d = new InProcessDispatcher();
  const pts = await growth(QUEUE_MAX, CHECKPOINTS, (i) => d.enqueue(`job-${i}`, i % 5));
  await d.close();
  for (const p of pts) rows.push({ section: 'queue', what: 'InProcessDispatcher.enqueue', at: p.at, 'per s': Math.round(p.rate) });
  for (const [name, make] of [
    ['memory', async () => new MemoryStore()],
    ['sqlite NORMAL', async () => new SqliteStore({ path: join(dir, 'submit.db'), synchronous: 'NORMAL' })],
  ] as Array<[string, () => Promise<JobStore>]>) {
    const store = await make();
    await store.init();
    const guard = await createGuard({ servers: [UNREACHABLE], store, dispatcher: new HeldDispatcher(), cleanupIntervalMs: 0 });
    const sub = await growth(SUBMIT_MAX, CHECKPOINTS, () => guard.submit(smallWorkflow, { priority: 0 }));
    await guard.close();
    await store.close();
    for (const p of sub) rows.push({ section: 'queue', what: `guard.submit (${name})`, at: p.at, 'per s': Math.round(p.rate) });
    const first = sub[0];
    const last = sub[sub.length - 1];
    if (first && last) notes.push(`guard.submit on ${name}: ${Math.round(first.rate)}/s at 1k, ${Math.round(last.rate)}/s at ${last.at} (ratio ${round(last.rate / first.rate, 2)})`);
  }
  const full = new SqliteStore({ path: join(dir, 'submit-full.db'), synchronous: 'FULL' });
  await full.init();
  const guard = await createGuard({ servers: [UNREACHABLE], store: full, dispatcher: new HeldDispatcher(), cleanupIntervalMs: 0 });
  const rate = await rateOf(500, 0, () => guard.submit(smallWorkflow));
  await guard.close();
  await full.close();
  rows.push({ section: 'queue', what: 'guard.submit (sqlite FULL, fsync per commit)', at: 500, 'per s': Math.round(rate) });
}

/** Inserts `n` rows with one SQL statement (fast fixture); triggers keep the counters as for any write. */
function fillSqlite(path: string, n: number, statusSql: string, job: JobRecord): void {
  const v = rowValues(job);
  const db = new Database(path);
  try {
    db.pragma('synchronous = OFF');
    db.prepare(
      `WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < ?)
       INSERT INTO jobs (id, status, workflow, original_parameters, options, priority, attempts, recovery_history, retry_count, outputs, error, error_code, error_message, created_at, updated_at, ended_at)
       SELECT printf('job-%09d', i), ${statusSql}, @workflow, @params, @options, i % 5, @attempts, '[]', CASE WHEN i % 10 = 1 THEN 1 ELSE 0 END, '[]',
         CASE WHEN i % 10 = 1 THEN @error END, CASE WHEN i % 10 = 1 THEN 'COMFYUI_OOM' END, CASE WHEN i % 10 = 1 THEN 'out of memory' END,
         1700000000000 + i, 1700000000000 + i, 1700000000001 + i FROM g`,
    ).run(n, { workflow: v.workflow, params: v.original_parameters, options: v.options, attempts: v.attempts, error: JSON.stringify({ code: 'COMFYUI_OOM', category: 'recoverable', message: 'out of memory', hint: 'h', retryable: true }) });
  } finally {
    db.close();
  }
}

function sampleJob(workflow: ApiWorkflow, attempts: number): JobRecord {
  const job = newJobRecord({ id: 'template', workflow, now: 1_700_000_000_000 });
  const list: AttemptRecord[] = [];
  for (let a = 1; a <= attempts; a++) {
    const wf = structuredClone(workflow);
    const first = Object.values(wf)[0];
    if (first) first.inputs['seed'] = 42 + a;
    list.push({ number: a, server: 'http://gpu-1:8188', promptId: `p-${a}`, status: a === attempts ? 'completed' : 'failed', workflow: wf, startedAt: 1, ...(a < attempts ? { code: 'COMFYUI_OOM' } : {}) });
  }
  return { ...job, attempts: list };
}

/** A guard's whole start over `path` (store, pool, restart recovery) into a held dispatcher: ms and jobs queued. */
async function guardStart(path: string): Promise<{ ms: number; waiting: number }> {
  const dispatcher = new HeldDispatcher();
  const t0 = performance.now();
  const store = new SqliteStore({ path });
  const guard = await createGuard({ servers: [UNREACHABLE], store, dispatcher, cleanupIntervalMs: 0 });
  const took = ms(t0);
  const { waiting } = await dispatcher.counts();
  await guard.close();
  await store.close();
  return { ms: took, waiting };
}

async function recovery(rows: BenchResult['rows'], notes: string[], dir: string): Promise<void> {
  const empty = join(dir, 'recover-0.db');
  notes.push(`guard start over an empty SQLite store (pool, sockets, no job): ${Math.round((await guardStart(empty)).ms)} ms`);
  rmSync(empty, { force: true });
  for (const n of RECOVERY_SIZES) {
    const path = join(dir, `recover-${n}.db`);
    const init = new SqliteStore({ path });
    await init.init();
    await init.close();
    const t0 = performance.now();
    fillSqlite(path, n, `CASE WHEN i % 3 = 0 THEN 'running' ELSE 'queued' END`, sampleJob(smallWorkflow, 1));
    notes.push(`recovery fixture: ${n} unfinished jobs written by one INSERT ... SELECT in ${round(ms(t0) / 1000)} s`);
    const targets: Array<[string, () => InProcessDispatcher | BullMqDispatcher]> = [['in-process', () => new InProcessDispatcher()]];
    if (WITH_BULLMQ && n <= BULLMQ_MAX) targets.push(['bullmq', () => new BullMqDispatcher({ connection: REDIS_URL, prefix: 'cgbench', queueName: `scale-${process.pid}-${n}` })]);
    for (const [name, make] of targets) {
      const dispatcher = make();
      const t0 = performance.now();
      // A restart: open the store, then stream every unfinished job into the (not yet started) dispatcher.
      const store = new SqliteStore({ path });
      await store.init();
      const r = await recoverUnfinishedJobs({ store, dispatcher, pageSize: 1000 });
      const took = ms(t0);
      const counts = await dispatcher.counts();
      rows.push({ section: 'recovery', what: `sqlite -> ${name}`, at: n, ms: Math.round(took), 'per s': Math.round((n / took) * 1000), check: counts.waiting === n && r.queued === n ? 'all queued' : `queued ${r.queued}, waiting ${counts.waiting}` });
      if (dispatcher instanceof BullMqDispatcher) await obliterate(dispatcher);
      await dispatcher.close();
      await store.close();
    }
    const g = await guardStart(path);
    rows.push({ section: 'recovery', what: 'sqlite -> guard start (createGuard, in-process held)', at: n, ms: Math.round(g.ms), 'per s': Math.round((n / g.ms) * 1000), check: g.waiting === n ? 'all queued' : `waiting ${g.waiting}` });
    rmSync(path, { force: true });
  }
}

async function obliterate(d: BullMqDispatcher): Promise<void> {
  const { Queue } = await import('bullmq');
  const q = new Queue(d.queueName, { connection: { url: REDIS_URL }, prefix: 'cgbench' });
  await q.obliterate({ force: true });
  await q.close();
}

/** Wall-clock and CPU-time percentiles of `n` sequential calls (after one warm-up call). */
async function latency(fn: () => Promise<unknown>, n = 1000): Promise<{ p50: number; p99: number; cpuP99: number }> {
  await fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < n; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();
    wall.push(ms(t0));
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  wall.sort((a, b) => a - b);
  cpu.sort((a, b) => a - b);
  return { p50: percentile(wall, 50), p99: percentile(wall, 99), cpuP99: percentile(cpu, 99) };
}

/** The store calls behind `/api/health` and `/api/stats`, and the first page of the job list. */
async function storeLatency(rows: BenchResult['rows'], backend: string, store: JobStore): Promise<void> {
  for (const [what, fn] of [
    ['store.stats()', () => store.stats()],
    ['store.countByStatus()', () => store.countByStatus()],
    ['store.query({limit: 1})', () => store.query({ limit: 1 })],
  ] as Array<[string, () => Promise<unknown>]>) {
    const l = await latency(fn);
    rows.push({ section: 'stored', what: `${backend} ${what}`, at: STORED, 'p50 ms': round(l.p50, 2), 'p99 ms': round(l.p99, 2), 'p99 cpu ms': round(l.cpuP99, 2) });
  }
}

/** `/api/health` and `/api/stats` through the service's own app over a real guard on `store` (its unfinished jobs are recovered at start). */
async function routeLatency(rows: BenchResult['rows'], notes: string[], backend: string, store: JobStore, unfinished: number): Promise<void> {
  const t1 = performance.now();
  const guard = await createGuard({ servers: [UNREACHABLE], store, dispatcher: new HeldDispatcher(), cleanupIntervalMs: 0 });
  notes.push(`${backend}: guard start on ${STORED} stored jobs (${unfinished} unfinished): ${Math.round(ms(t1))} ms`);
  const app = buildApp({ guard });
  try {
    await app.ready();
    for (const url of ['/api/health', '/api/stats']) {
      const l = await latency(async () => {
        const res = await app.inject({ method: 'GET', url });
        if (res.statusCode >= 500) throw new Error(`${url} answered ${res.statusCode}: ${res.body.slice(0, 200)}`);
      });
      rows.push({ section: 'stored', what: `${backend} GET ${url} (app.inject)`, at: STORED, 'p50 ms': round(l.p50, 2), 'p99 ms': round(l.p99, 2), 'p99 cpu ms': round(l.cpuP99, 2) });
    }
  } finally {
    await app.close();
    await guard.close();
  }
}

async function storedStats(rows: BenchResult['rows'], notes: string[], dir: string): Promise<void> {
  const path = join(dir, 'stored.db');
  const init = new SqliteStore({ path });
  await init.init();
  await init.close();
  const t0 = performance.now();
  fillSqlite(path, STORED, `CASE WHEN i % 100 = 0 THEN 'queued' WHEN i % 10 = 1 THEN 'failed' ELSE 'completed' END`, sampleJob(smallWorkflow, 1));
  notes.push(`sqlite: ${STORED} jobs written by one INSERT ... SELECT in ${round(ms(t0) / 1000)} s (counters kept by the triggers)`);
  const store = new SqliteStore({ path });
  await store.init();
  await storeLatency(rows, 'sqlite', store);
  const s = await store.stats();
  notes.push(`sqlite stats at ${STORED}: total ${s.total}, queued ${s.byStatus.queued}, failed ${s.byStatus.failed}, completed ${s.byStatus.completed}`);
  await routeLatency(rows, notes, 'sqlite', store, s.byStatus.queued ?? 0);
  await store.close();
  rmSync(path, { force: true });
  if (WITH_PG) await storedStatsPg(rows, notes);
}

async function storedStatsPg(rows: BenchResult['rows'], notes: string[]): Promise<void> {
  const schema = `bench_${process.pid}`;
  const store = new PostgresStore({ connectionString: PG_URL, schema });
  await store.init();
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const v = rowValues(sampleJob(smallWorkflow, 1));
    const t0 = performance.now();
    // One statement updating the same counter rows a million times piles up row versions inside
    // the transaction; a fixture this size is loaded with the trigger off and the counters
    // rebuilt by the migration's own backfill query, as a migration of existing data does.
    await client.query(`ALTER TABLE "${schema}".jobs DISABLE TRIGGER jobs_count`);
    await client.query(
      `INSERT INTO "${schema}".jobs (id, status, workflow, original_parameters, options, priority, attempts, recovery_history, retry_count, outputs, error, error_code, error_message, created_at, updated_at, ended_at)
       SELECT format('job-%s', lpad(g::text, 9, '0')), CASE WHEN g % 100 = 0 THEN 'queued' WHEN g % 10 = 1 THEN 'failed' ELSE 'completed' END,
         $2::jsonb, $3::jsonb, $4::jsonb, g % 5, $5::jsonb, '[]', CASE WHEN g % 10 = 1 THEN 1 ELSE 0 END, '[]',
         CASE WHEN g % 10 = 1 THEN $6::jsonb END, CASE WHEN g % 10 = 1 THEN 'COMFYUI_OOM' END, CASE WHEN g % 10 = 1 THEN 'out of memory' END,
         1700000000000 + g, 1700000000000 + g, 1700000000001 + g
       FROM generate_series(1, $1::int) AS g`,
      [STORED, v.workflow, v.original_parameters, v.options, v.attempts, JSON.stringify({ code: 'COMFYUI_OOM', category: 'recoverable', message: 'out of memory', hint: 'h', retryable: true })],
    );
    await client.query(`ALTER TABLE "${schema}".jobs ENABLE TRIGGER jobs_count`);
    await client.query(
      `INSERT INTO "${schema}".job_counters (k, slot, n) SELECT c.k, 0, sum(c.n) FROM "${schema}".jobs AS j
       CROSS JOIN LATERAL "${schema}".cg_contrib(j.status, j.error_code, j.retry_count, j.attempts, j.recovery_history) AS c
       WHERE j.unreadable IS NULL GROUP BY c.k HAVING sum(c.n) <> 0`,
    );
    await client.query(`VACUUM ANALYZE "${schema}".jobs`);
    notes.push(`postgres: ${STORED} jobs written by one INSERT ... SELECT and the counters backfilled in ${round(ms(t0) / 1000)} s`);
    const c = await store.countByStatus();
    if (c.total !== STORED) notes.push(`postgres: countByStatus says ${c.total} jobs, expected ${STORED}`);
    await storeLatency(rows, 'postgres', store);
    await routeLatency(rows, notes, 'postgres', store, c.byStatus.queued ?? 0);
    const size = await client.query(`SELECT pg_total_relation_size('"${schema}".jobs')::float8 AS b`);
    notes.push(`postgres: ${Math.round(Number(size.rows[0]?.b) / STORED)} bytes per stored job (small workflow, 1 attempt, indexes included)`);
  } finally {
    await client.query(`DROP SCHEMA "${schema}" CASCADE`).catch(() => undefined);
    await client.end();
    await store.close();
  }
}

async function bytesPerJob(rows: BenchResult['rows'], dir: string): Promise<void> {
  const K = 1000;
  const wf = bigWorkflow();
  const template = sampleJob(wf, 3);
  const fullCopies = JSON.stringify(template.attempts).length;
  const path = join(dir, 'bytes.db');
  const store = new SqliteStore({ path, synchronous: 'NORMAL' });
  await store.init();
  const sizeOf = () => {
    const db = new Database(path);
    try {
      db.pragma('wal_checkpoint(TRUNCATE)');
      return Number(db.pragma('page_count', { simple: true })) * Number(db.pragma('page_size', { simple: true })) - Number(db.pragma('freelist_count', { simple: true })) * Number(db.pragma('page_size', { simple: true }));
    } finally {
      db.close();
    }
  };
  const before = sizeOf();
  for (let i = 0; i < K; i++) {
    const id = `b-${i}`;
    await store.createJob({ ...newJobRecord({ id, workflow: wf, now: 1_700_000_000_000 + i }) });
    for (const a of template.attempts) await store.recordAttempt(id, a);
    await store.transition(id, 'queued', 'completed');
  }
  const after = sizeOf();
  await store.close();
  const stored = (after - before) / K;
  rows.push({
    section: 'bytes',
    what: `sqlite, ${round(JSON.stringify(wf).length / 1024)} KB workflow, 3 attempts`,
    at: K,
    'bytes/job': Math.round(stored),
    check: `attempts as full copies would add ${Math.round(fullCopies / 1024)} KB per job`,
  });
}

async function writesPerJob(rows: BenchResult['rows'], dir: string): Promise<void> {
  const sim = await startSimulator({ stepMs: 0 });
  try {
    const inner = new SqliteStore({ path: join(dir, 'writes.db') });
    await inner.init();
    const counts = new Map<string, number>();
    const WRITES = new Set(['createJob', 'transition', 'recordAttempt', 'appendRecoveryStep', 'updateProgress', 'patchJob']);
    const store = new Proxy(inner, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          if (WRITES.has(String(prop))) counts.set(String(prop), (counts.get(String(prop)) ?? 0) + 1);
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const guard = await createGuard({ servers: [sim.url], store, cleanupIntervalMs: 0 });
    const N = 200;
    const t0 = performance.now();
    const ids = [];
    for (let i = 0; i < N; i++) ids.push((await guard.submit(smallWorkflow)).id);
    for (const id of ids) await guard.wait(id);
    const took = ms(t0);
    await guard.close();
    await inner.close();
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    rows.push({
      section: 'writes',
      what: `sqlite FULL, guard on the simulator, successful jobs`,
      at: N,
      'per s': Math.round((N / took) * 1000),
      'writes/job': round(total / N, 2),
      check: [...counts].map(([k, n]) => `${k} ${round(n / N, 2)}`).join(', '),
    });
  } finally {
    await sim.close();
  }
}

/** Runs every section; a failing section becomes a note, not a lost run. */
export async function run(): Promise<BenchResult> {
  const rows: BenchResult['rows'] = [];
  const notes: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'cg-scale-'));
  try {
    for (const [name, section] of [
      ['queueing', () => queueing(rows, notes, dir)],
      ['recovery', () => recovery(rows, notes, dir)],
      ['stored', () => storedStats(rows, notes, dir)],
      ['bytes', () => bytesPerJob(rows, dir)],
      ['writes', () => writesPerJob(rows, dir)],
    ] as Array<[string, () => Promise<void>]>) {
      const t0 = performance.now();
      try {
        await section();
      } catch (e) {
        notes.push(`${name}: failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      }
      process.stderr.write(`scale: ${name} done in ${round(ms(t0) / 1000)} s\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  notes.push(`sizes: SCALE_QUEUE=${QUEUE_MAX} SCALE_SUBMIT=${SUBMIT_MAX} SCALE_RECOVERY=${RECOVERY_SIZES.join(',')} SCALE_STORED=${STORED}; queue rates are over a window of 1,000 ending at "at"`);
  return { name: 'scale', title: 'Scale: queueing, restart recovery, stats at 1M stored jobs, bytes and writes per job', rows, notes };
}
