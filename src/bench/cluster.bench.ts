/**
 * Three `comfyguard serve` processes on one PostgreSQL store and one BullMQ queue, in front of two
 * simulators with faults (stalls, dropped sockets, 503s). Mid-run one instance is SIGKILLed for good
 * and another SIGKILLed and restarted. Reports: every job terminal, prompts executed twice, and how
 * long the killed instance's running jobs waited before another instance moved them on.
 *
 * Needs PostgreSQL (COMFYGUARD_BENCH_PG_URL) and Redis (COMFYGUARD_BENCH_REDIS_URL) and a build.
 */
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { Redis } from 'ioredis';
import { startSimulator, type Simulator } from '../sim/index.js';
import { percentile, round, type BenchResult } from './harness.js';
import { api, freePort, startServe } from './serve-process.js';

const JOBS = Number(process.env.BENCH_CLUSTER_JOBS ?? 60);
const PG_URL = process.env.COMFYGUARD_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.COMFYGUARD_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const TERMINAL = ['completed', 'failed', 'timed_out', 'cancelled'];

function workflow(i: number): Record<string, { class_type: string; inputs: Record<string, unknown> }> {
  return {
    '3': { class_type: 'KSampler', inputs: { seed: 1000 + i, steps: 8, cfg: 7, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] } },
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'v1-5-pruned-emaonly.ckpt' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: 512, height: 512, batch_size: 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: `job ${i}`, clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry', clip: ['4', 1] } },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'cluster', images: ['8', 0] } },
  };
}

interface Instance {
  port: number;
  proc: ChildProcess | null;
  url: string;
}

interface JobView {
  id: string;
  status: string;
  attempts: Array<{ number: number; server: string; promptId: string; startedAt: string; endedAt: string | null }>;
  updatedAt: string;
}

export async function run(): Promise<BenchResult> {
  const schema = `cluster_${randomUUID().slice(0, 8)}`;
  const queue = `cluster-${randomUUID().slice(0, 8)}`;
  const sims: Simulator[] = [];
  const instances: Instance[] = [];
  try {
    sims.push(await startSimulator({ name: 'a', stepMs: 25, faults: 'stall=0.03,ws_drop=0.05,http503@/prompt=0.03', seed: 11 }));
    sims.push(await startSimulator({ name: 'b', stepMs: 25, faults: 'stall=0.03,ws_drop=0.05', seed: 12 }));
    const args = [
      ...sims.flatMap((s) => ['--server', s.url]),
      '--store', `${PG_URL}?schema=${schema}`,
      '--queue', `${REDIS_URL}?queue=${queue}&prefix=cgbench`,
      '--queue-lock', '5000',
      '--queue-stalled-check', '2000',
      '--stall-timeout', '4000',
      '--metrics', 'false',
    ];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      instances.push({ port, url: `http://127.0.0.1:${port}`, proc: await startServe(port, args) });
    }
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const inst = instances[i % 3]!;
      ids.push((await api<{ id: string }>(inst.url, '/api/jobs', { method: 'POST', body: JSON.stringify({ workflow: workflow(i), options: { maxRetries: 6 } }) })).id);
    }
    const observer = instances[2]!;
    const get = (id: string) => api<JobView>(observer.url, `/api/jobs/${id}`);
    // Let work start everywhere, then kill instance 0 for good and instance 1 for a restart.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const jobs = await Promise.all(ids.map(get));
      if (jobs.filter((j) => j.status === 'completed').length >= JOBS / 4 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const before = new Map((await Promise.all(ids.map(get))).map((j) => [j.id, j]));
    const killedAt = Date.now();
    instances[0]!.proc!.kill('SIGKILL');
    instances[1]!.proc!.kill('SIGKILL');
    instances[0]!.proc = null;
    await new Promise((r) => setTimeout(r, 1_000));
    instances[1]!.proc = await startServe(instances[1]!.port, args);

    // Jobs running at the kill: when did each move on (a new attempt, or an end)?
    const running = [...before.values()].filter((j) => j.status === 'running' || j.status === 'recovering');
    const movedAt = new Map<string, number>();
    const end = Date.now() + 240_000;
    let jobs: JobView[] = [];
    for (;;) {
      jobs = await Promise.all(ids.map(get));
      const now = Date.now();
      for (const j of jobs) {
        if (movedAt.has(j.id) || !running.some((r) => r.id === j.id)) continue;
        const prev = before.get(j.id)!;
        if (j.attempts.length > prev.attempts.length || TERMINAL.includes(j.status)) movedAt.set(j.id, now);
      }
      if (jobs.every((j) => TERMINAL.includes(j.status)) || now > end) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const byStatus: Record<string, number> = {};
    for (const j of jobs) byStatus[j.status] = (byStatus[j.status] ?? 0) + 1;
    const executions = sims.flatMap((s) => Object.values(s.stats().executions));
    const twice = executions.filter((n) => n > 1).length;
    const waits = [...movedAt.values()].map((t) => t - killedAt).sort((a, b) => a - b);
    const attempts = jobs.reduce((n, j) => n + j.attempts.length, 0);
    return {
      name: 'cluster',
      title: `${JOBS} jobs, 3 serve processes, one PostgreSQL store, one BullMQ queue, 2 faulty simulators; one instance killed, one restarted`,
      rows: [
        { measure: 'jobs terminal', value: `${jobs.filter((j) => TERMINAL.includes(j.status)).length} of ${JOBS}` },
        { measure: 'by status', value: Object.entries(byStatus).map(([k, v]) => `${k} ${v}`).join(', ') },
        { measure: 'prompts executed more than once', value: twice },
        { measure: 'attempts per job', value: round(attempts / JOBS, 2) },
        { measure: 'jobs running at the kill', value: running.length },
        { measure: 'moved on after the kill (p50 / max s)', value: waits.length ? `${round(percentile(waits, 50) / 1000, 1)} / ${round((waits.at(-1) ?? 0) / 1000, 1)}` : 'n/a' },
        { measure: 'never moved on', value: running.length - waits.length },
      ],
      notes: ['BullMQ lock 5 s, stalled check 2 s, stall timeout 4 s (serve flags). Faults: stall 3 %, socket drops 5 %, 503 on /prompt 3 % (server a).'],
    };
  } finally {
    for (const i of instances) i.proc?.kill('SIGKILL');
    await Promise.all(sims.map((s) => s.close()));
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect().then(() => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).finally(() => c.end()).catch(() => undefined);
    const r = new Redis(REDIS_URL);
    const keys = await r.keys(`cgbench:${queue}:*`).catch(() => [] as string[]);
    if (keys.length) await r.del(...keys);
    r.disconnect();
  }
}
