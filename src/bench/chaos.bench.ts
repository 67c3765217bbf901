/**
 * The chaos benchmark: a job mix through a real `comfyguard serve` child process (SQLite store) in
 * front of two simulators with a fault mix (OOM, dropped sockets, 503s, stalls, missing models).
 * Mid-run one simulator crashes and comfyguard is SIGKILLed and restarted on the same store. Prints
 * recoverable jobs completed, recovery rate per code next to seed 001's targets, how fast permanent
 * errors fail, jobs lost, prompts executed needlessly twice, extra executions per recovered job and
 * GPU-seconds wasted. `npm run bench -- chaos` or `comfyguard chaos`; BENCH_CHAOS_JOBS sets the size.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSimulator, type Simulator } from '../sim/index.js';
import { SEED_RECOVERY_TARGETS } from '../errors/severity.js';
import { round, type BenchResult } from './harness.js';
import { api, freePort, startServe } from './serve-process.js';

const TERMINAL = ['completed', 'failed', 'timed_out', 'cancelled'];
const CHECKPOINT = 'v1-5-pruned-emaonly.ckpt';

type Kind = 'normal' | 'model_missing' | 'permanent';

function workflow(i: number, kind: Kind): Record<string, { class_type: string; inputs: Record<string, unknown> }> {
  if (kind === 'permanent') {
    // Width 0: ComfyUI refuses it at validation — no retry can fix it.
    return {
      '1': { class_type: 'EmptyImage', inputs: { width: 0, height: 64, batch_size: 1, color: 0 } },
      '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: `chaos-bad-${i}` } },
    };
  }
  return {
    '3': { class_type: 'KSampler', inputs: { seed: 5000 + i, steps: 10, cfg: 7, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] } },
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: kind === 'model_missing' ? 'sdxl-not-installed.safetensors' : CHECKPOINT } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: 512, height: 512, batch_size: 1 + (i % 3) } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: `chaos ${i}`, clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry', clip: ['4', 1] } },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { filename_prefix: `chaos-${i}`, images: ['8', 0] } },
  };
}

interface AttemptView {
  number: number;
  server: string;
  promptId: string;
  status: string;
  code?: string;
  startedAt: string;
  endedAt: string | null;
}
interface JobView {
  id: string;
  status: string;
  attempts: AttemptView[];
  endedAt: string | null;
  error?: { code: string } | null;
  /** Steps hold codes of failures found before sending too (a model missing per the server's catalog). */
  recoveryHistory: Array<{ code: string }>;
}

const pct = (n: number, d: number) => (d === 0 ? 'n/a' : `${round((100 * n) / d, 1)} %`);
const ms = (iso: string | null) => (iso ? Date.parse(iso) : Number.NaN);

export async function run(): Promise<BenchResult> {
  const jobsWanted = Number(process.env['BENCH_CHAOS_JOBS'] ?? 30);
  const dir = mkdtempSync(join(tmpdir(), 'cg-chaos-'));
  const sims: Simulator[] = [];
  let proc: ChildProcess | null = null;
  try {
    sims.push(await startSimulator({ name: 'a', stepMs: 15, vram: '8GiB', faults: 'oom=0.15,ws_drop=0.05,http503@/prompt=0.05,stall=0.03', seed: 31 }));
    sims.push(await startSimulator({ name: 'b', stepMs: 15, vram: '12GiB', faults: 'oom=0.08,ws_drop=0.05,http503@/prompt=0.05', seed: 32 }));
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const args = [...sims.flatMap((s) => ['--server', s.url]), '--store', `sqlite:${join(dir, 'chaos.db')}`, '--stall-timeout', '4000', '--max-retries', '6', '--metrics', 'false', '--health-ttl', '2000'];
    proc = await startServe(port, args);

    const kinds: Kind[] = Array.from({ length: jobsWanted }, (_, i) => (i % 7 === 3 ? 'permanent' : i % 7 === 5 ? 'model_missing' : 'normal'));
    const ids: string[] = [];
    for (let i = 0; i < jobsWanted; i++) {
      const options = kinds[i] === 'model_missing' ? { maxRetries: 6, fallbackModels: [CHECKPOINT] } : { maxRetries: 6 };
      ids.push((await api<{ id: string }>(url, '/api/jobs', { method: 'POST', body: JSON.stringify({ workflow: workflow(i, kinds[i]!), options }) })).id);
    }
    const get = (id: string) => api<JobView>(url, `/api/jobs/${id}`);
    const all = async () => Promise.all(ids.map(get));

    // A third of the work done: crash simulator b, then SIGKILL comfyguard and restart it on the same store.
    const startDeadline = Date.now() + 120_000;
    while ((await all()).filter((j) => TERMINAL.includes(j.status)).length < jobsWanted / 3 && Date.now() < startDeadline) await new Promise((r) => setTimeout(r, 200));
    await sims[1]!.crash();
    await new Promise((r) => setTimeout(r, 300));
    proc.kill('SIGKILL');
    proc = null;
    await new Promise((r) => setTimeout(r, 500));
    proc = await startServe(port, args);

    const deadline = Date.now() + 300_000;
    let jobs: JobView[] = [];
    for (;;) {
      jobs = await all();
      if (jobs.every((j) => TERMINAL.includes(j.status)) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 300));
    }

    const recoverable = jobs.filter((_, i) => kinds[i] !== 'permanent');
    const permanent = jobs.filter((_, i) => kinds[i] === 'permanent');
    // Recovery per code: jobs that met the code on any attempt, and how many of them still completed.
    const byCode = new Map<string, { jobs: number; completed: number }>();
    for (const j of recoverable) {
      const codes = [...j.attempts.map((a) => a.code), ...j.recoveryHistory.map((r) => r.code)].filter((c): c is string => !!c);
      for (const code of new Set(codes)) {
        const r = byCode.get(code) ?? { jobs: 0, completed: 0 };
        r.jobs++;
        if (j.status === 'completed') r.completed++;
        byCode.set(code, r);
      }
    }
    const lost = jobs.filter((j) => !TERMINAL.includes(j.status)).length;
    const executions = sims.flatMap((s) => Object.values(s.stats().executions));
    const twice = executions.filter((n) => n > 1).length;
    const recovered = recoverable.filter((j) => j.status === 'completed' && j.attempts.length > 1);
    const extra = recovered.reduce((n, j) => n + j.attempts.length - 1, 0);
    const wastedMs = jobs.flatMap((j) => j.attempts).filter((a) => a.status !== 'completed' && a.endedAt).reduce((n, a) => n + Math.max(0, ms(a.endedAt) - ms(a.startedAt)), 0);
    const permAttempts = permanent.reduce((n, j) => n + j.attempts.length, 0);
    const permAfter = permanent
      .map((j) => ms(j.endedAt) - ms(j.attempts.find((a) => a.code)?.endedAt ?? null))
      .filter((n) => Number.isFinite(n));
    const maxAfter = permAfter.length ? Math.max(...permAfter) : Number.NaN;

    const rows: Array<Record<string, string | number>> = [
      { measure: 'recoverable jobs completed', value: `${pct(recoverable.filter((j) => j.status === 'completed').length, recoverable.length)} (${recoverable.filter((j) => j.status === 'completed').length} of ${recoverable.length})`, target: '95 % (seed 001 "effectiveness")' },
    ];
    for (const [code, t] of Object.entries(SEED_RECOVERY_TARGETS)) {
      const r = byCode.get(code);
      rows.push({ measure: `recovery rate, ${t.label} (${code})`, value: r ? `${pct(r.completed, r.jobs)} of ${r.jobs} jobs` : 'not hit', target: `${t.target * 100} %` });
    }
    for (const [code, r] of [...byCode.entries()].filter(([c]) => !(c in SEED_RECOVERY_TARGETS)).sort()) {
      rows.push({ measure: `recovery rate, ${code}`, value: `${pct(r.completed, r.jobs)} of ${r.jobs} jobs`, target: '' });
    }
    rows.push(
      { measure: 'permanent errors: failed / attempts per job', value: `${permanent.filter((j) => j.status === 'failed').length} of ${permanent.length} / ${round(permAttempts / Math.max(1, permanent.length), 2)}`, target: '1 attempt' },
      { measure: 'permanent errors: job end after the evidence (max ms)', value: Number.isFinite(maxAfter) ? round(maxAfter, 0) : 'n/a', target: '' },
      { measure: 'jobs lost (not terminal at the end)', value: lost, target: '0' },
      { measure: 'prompts executed needlessly twice', value: twice, target: '0' },
      { measure: 'extra executions per recovered job', value: recovered.length ? round(extra / recovered.length, 2) : 'n/a', target: '' },
      { measure: 'GPU-seconds wasted (failed attempts, wall time)', value: round(wastedMs / 1000, 1), target: '' },
    );
    const faults = sims.map((s) => `${s.name}: ${Object.entries(s.stats().faults).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
    return {
      name: 'chaos',
      title: `chaos: ${jobsWanted} jobs through a real serve process, 2 faulty simulators, one simulator crash, comfyguard SIGKILLed and restarted`,
      rows,
      notes: [
        `Faults injected — ${faults.join('; ')}.`,
        'Job mix: 5 in 7 normal (batch 1-3), 1 in 7 a missing checkpoint with a fallback model, 1 in 7 invalid (permanent).',
        'Recovery rate per code counts jobs that met the code on any attempt and still completed (a job may count under several codes).',
      ],
    };
  } finally {
    proc?.kill('SIGKILL');
    await Promise.all(sims.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}
