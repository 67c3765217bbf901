/**
 * How soon comfyguard notices a finished prompt: from ComfyUI's `execution_success` (its timestamp in
 * the simulator's history) to `wait()` resolving, measured from outside in fresh processes — the first
 * job of a new process (20 processes), and a prompt that finishes while comfyguard is down (SIGKILL
 * mid-run, then a new process with the same instance id follows the job).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSimulator, type Simulator } from '../sim/index.js';
import { percentile, round, type BenchResult } from './harness.js';

const RUNS = Number(process.env.BENCH_NOTICE_RUNS ?? 20);
const child = join(dirname(fileURLToPath(import.meta.url)), 'notice-child.js');

interface Line {
  jobId: string;
  promptId: string;
  status?: string;
  resolvedAt?: number;
}

/** Runs the child until it prints `lines` JSON lines (or exits); `keep` leaves it running. */
function runChild(args: string[], lines = 1, keep = false): Promise<{ out: Line[]; kill: () => void }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Line[] = [];
    let buf = '';
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.trim()) out.push(JSON.parse(line) as Line);
        if (out.length === lines && keep) resolve({ out, kill: () => p.kill('SIGKILL') });
      }
    });
    p.on('exit', (code) => {
      if (out.length >= lines) resolve({ out, kill: () => undefined });
      else reject(new Error(`notice child exited ${code}: ${err.slice(-500)}`));
    });
  });
}

async function successAt(sim: Simulator, promptId: string): Promise<number> {
  const h = (await (await fetch(`${sim.url}/history/${promptId}`)).json()) as Record<string, { status: { messages: Array<[string, { timestamp?: number }]> } }>;
  const msg = h[promptId]?.status.messages.find(([t]) => t === 'execution_success');
  if (!msg?.[1].timestamp) throw new Error(`no execution_success in the history of ${promptId}`);
  return msg[1].timestamp;
}

function stats(label: string, ms: number[]): Record<string, string | number> {
  const s = [...ms].sort((a, b) => a - b);
  return { case: label, runs: s.length, 'p50 ms': round(percentile(s, 50)), 'p90 ms': round(percentile(s, 90)), 'p99 ms': round(percentile(s, 99)), 'max ms': round(s.at(-1) ?? 0) };
}

export async function run(): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'cg-notice-'));
  const sim = await startSimulator({ stepMs: 1 });
  try {
    const first: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const { out } = await runChild([sim.url, `sqlite:${join(dir, `first-${i}.db`)}`, `first-${i}`, 'submit', String(i)]);
      const line = out[0]!;
      first.push(line.resolvedAt! - (await successAt(sim, line.promptId)));
    }
    // A prompt that finishes while comfyguard is down: the restarted instance (same id) follows it.
    const restart: number[] = [];
    const slow = await startSimulator({ stepMs: 400 });
    try {
      for (let i = 0; i < Math.min(RUNS, 5); i++) {
        const store = `sqlite:${join(dir, `restart-${i}.db`)}`;
        const held = await runChild([slow.url, store, 'box:1', 'submit', `r${i}`, '--hold'], 1, true);
        const { jobId, promptId } = held.out[0]!;
        held.kill();
        const { out } = await runChild([slow.url, store, 'box:1', 'follow', jobId]);
        restart.push(out[0]!.resolvedAt! - (await successAt(slow, promptId)));
      }
    } finally {
      await slow.close();
    }
    return {
      name: 'notice',
      title: "From ComfyUI's execution_success to wait() resolving, measured in fresh processes",
      rows: [stats('first job of a fresh process', first), stats('prompt finishing across a SIGKILL + restart', restart)],
      notes: [
        'Each run is a new Node process (guard start, socket open, submit, wait) on a SQLite store; the simulator runs in the parent.',
        'Restart case: the job is submitted, its process SIGKILLed mid-run, and a new process with the same instance id follows it; a prompt that ended before the new process started is read from history at start (the figure then includes that process start).',
      ],
    };
  } finally {
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
