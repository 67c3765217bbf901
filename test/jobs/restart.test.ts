/**
 * Crash tests: a real comfyguard child process with 200 jobs spread over every state is killed with
 * SIGKILL, restarted on the same store, and every job must reach the right terminal state without
 * any finished or still-queued prompt running a second time. Run once per store backend.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import type { ApiWorkflow } from '../../src/comfy/types.js';
import type { JobStore } from '../../src/store/contract.js';
import { openStore } from '../../src/store/open.js';
import type { JobRecord, JobStatus } from '../../src/jobs/types.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { sd15Txt2img } from '../fixtures/workflows/index.js';
import { connectRedis, createTestDatabase, randomSuffix } from '../store/services.js';
import { until } from '../support/wait.js';

const CHILD = join(import.meta.dirname, 'guard-child.ts');

class Child {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly #waiters = new Map<string, (v: Record<string, unknown>) => void>();
  readonly ready: Promise<void>;
  stderr = '';

  constructor(store: string, servers: string[], maxRecoveryAgeMs = 600_000) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', CHILD, store, servers.join(','), '4', String(maxRecoveryAgeMs)], { stdio: 'pipe' });
    this.proc.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    let ready!: () => void;
    this.ready = new Promise((r) => (ready = r));
    createInterface({ input: this.proc.stdout }).on('line', (line) => {
      const msg = JSON.parse(line) as Record<string, unknown>;
      if (msg.ready) ready();
      const ref = typeof msg.ref === 'string' ? msg.ref : undefined;
      if (ref) this.#waiters.get(ref)?.(msg);
    });
  }

  send(op: Record<string, unknown>): Promise<Record<string, unknown>> {
    const ref = randomSuffix();
    return new Promise((resolve, reject) => {
      // A bound so a hang names the operation instead of timing out the whole test.
      const timer = setTimeout(() => reject(new Error(`child did not answer ${JSON.stringify(op).slice(0, 80)}; stderr: ${this.stderr.slice(-2000)}`)), 60_000);
      this.#waiters.set(ref, (v) => {
        clearTimeout(timer);
        resolve(v);
      });
      this.proc.stdin.write(JSON.stringify({ ...op, ref }) + '\n');
    });
  }

  kill(): Promise<void> {
    return new Promise((resolve) => {
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) return resolve();
      this.proc.once('exit', () => resolve());
      this.proc.kill('SIGKILL');
    });
  }
}

function workflow(kind: 'normal' | 'permanent', seed: number): ApiWorkflow {
  const wf = sd15Txt2img();
  wf['3']!.inputs.seed = seed;
  wf['3']!.inputs.steps = 12;
  wf['5']!.inputs = { width: 512, height: 512, batch_size: 1 };
  if (kind === 'permanent') wf['3']!.inputs.cfg = 1000;
  return wf;
}

type Kind = 'normal' | 'permanent' | 'cancel' | 'timeout';
const EXPECTED: Record<Kind, JobStatus> = { normal: 'completed', permanent: 'failed', cancel: 'cancelled', timeout: 'timed_out' };

async function countByStatus(store: JobStore): Promise<Record<JobStatus, number>> {
  return (await store.stats()).byStatus;
}

async function allJobs(store: JobStore): Promise<JobRecord[]> {
  const out: JobRecord[] = [];
  let cursor: string | null = null;
  do {
    const page = await store.query({ limit: 500, ...(cursor ? { cursor } : {}) });
    out.push(...page.jobs);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

interface Backend {
  name: string;
  url: () => Promise<{ url: string; cleanup: () => Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: 'sqlite',
    url: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cg-crash-'));
      return { url: `sqlite:${join(dir, 'jobs.db')}`, cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'postgres',
    url: async () => {
      const db = await createTestDatabase();
      return { url: db.url, cleanup: db.drop };
    },
  },
  {
    name: 'redis',
    url: async () => {
      const prefix = `cg-crash-${randomSuffix()}:`;
      return {
        url: `redis://127.0.0.1:6379/0?prefix=${prefix}`,
        cleanup: async () => {
          const r = await connectRedis();
          try {
            let cursor = '0';
            do {
              const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
              if (keys.length) await r.del(...keys);
              cursor = next;
            } while (cursor !== '0');
          } finally {
            r.disconnect();
          }
        },
      };
    },
  },
];

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

describe.each(backends)('crash and restart on $name', (backend) => {
  it('brings 200 jobs in every state to the right terminal state after SIGKILL, running nothing twice', async () => {
    const sims: Simulator[] = [
      await startSimulator({ name: 'sim-0', stepMs: 15 }),
      // Most submits to this one fail with a text 500: jobs sit in `recovering` while they back off.
      await startSimulator({ name: 'sim-1', stepMs: 15, faults: 'http500@POST/prompt=0.6' }),
    ];
    cleanups.push(async () => void (await Promise.all(sims.map((s) => s.close()))));
    const { url, cleanup } = await backend.url();
    cleanups.push(cleanup);
    const store = openStore(url);
    await store.init();
    cleanups.push(() => store.close());

    let child = new Child(url, sims.map((s) => s.url));
    cleanups.push(() => child.kill());
    await child.ready;

    const kinds: Kind[] = [];
    for (let i = 0; i < 200; i++) kinds.push(i % 20 === 3 ? 'permanent' : i % 20 === 7 ? 'cancel' : i % 40 === 11 ? 'timeout' : 'normal');
    const ids: string[] = [];
    const cancelOutcome = new Map<string, JobStatus>();
    for (const [i, kind] of kinds.entries()) {
      const r = await child.send({
        op: 'submit',
        workflow: workflow(kind === 'permanent' ? 'permanent' : 'normal', i + 1),
        options: kind === 'timeout' ? { timeoutMs: 1 } : kind === 'cancel' ? { priority: -1 } : {},
      });
      expect(r.error).toBeUndefined();
      ids.push(String(r.id));
      if (kind === 'cancel') {
        // Cancelled at once: usually still queued; on a slow machine it may already run (then it is
        // interrupted) or even have finished (then it stays completed). Either way the answer holds.
        const c = await child.send({ op: 'cancel', id: r.id });
        expect(['cancelled', 'completed']).toContain(c.status);
        cancelOutcome.set(String(r.id), c.status as JobStatus);
      }
    }
    expect([...cancelOutcome.values()].filter((s) => s === 'cancelled').length).toBeGreaterThanOrEqual(5);

    // Kill once the jobs are spread over the states (bounded wait; the exact moment does not matter).
    const atKill = await until(async () => {
      const c = await countByStatus(store);
      const spread = c.completed >= 5 && c.recovering >= 1 && c.failed >= 2 && c.cancelled >= 1 && c.timed_out >= 1 && c.running >= 1 && c.queued >= 10;
      return spread ? c : null;
    }, 'jobs to spread over the states', { timeoutMs: 120_000, intervalMs: 5 });
    await child.kill();
    process.stdout.write(`[${backend.name}] states at SIGKILL: ${JSON.stringify(atKill)}\n`);
    const before = new Map((await allJobs(store)).map((j) => [j.id, j]));
    const queuedOnServers = new Set<string>();
    for (const s of sims) {
      const q = (await (await fetch(`${s.url}/queue`)).json()) as { queue_running: Array<[number, string]>; queue_pending: Array<[number, string]> };
      for (const item of [...q.queue_running, ...q.queue_pending]) queuedOnServers.add(item[1]);
    }
    // The outage ends: the flaky server behaves again.
    sims[1]!.setFaults('');

    child = new Child(url, sims.map((s) => s.url));
    cleanups.push(() => child.kill());
    await child.ready;
    await until(async () => {
      const c = await countByStatus(store);
      return c.queued + c.running + c.recovering === 0;
    }, 'every job to reach a terminal state', { timeoutMs: 180_000, intervalMs: 100 });

    const after = await allJobs(store);
    expect(after).toHaveLength(200);
    const byId = new Map(after.map((j) => [j.id, j]));
    for (const [i, kind] of kinds.entries()) {
      const job = byId.get(ids[i]!)!;
      const expected = kind === 'cancel' ? cancelOutcome.get(job.id)! : EXPECTED[kind];
      expect({ i, kind, status: job.status }).toEqual({ i, kind, status: expected });
      const prev = before.get(job.id)!;
      if (prev.status === 'completed' || prev.status === 'failed' || prev.status === 'cancelled' || prev.status === 'timed_out') {
        // Finished before the crash: untouched by the restart.
        expect(job.attempts).toHaveLength(prev.attempts.length);
        expect(job.status).toBe(prev.status);
      }
    }
    // A prompt still queued or running on a server at the kill was followed, not resubmitted.
    for (const job of after) {
      const last = before.get(job.id)!.attempts.at(-1);
      if (last && queuedOnServers.has(last.promptId) && job.status === 'completed') {
        expect(job.attempts.some((a) => a.promptId === last.promptId && a.status === 'completed')).toBe(true);
      }
    }
    // Nothing ran twice: every prompt id executed at most once on every server.
    for (const s of sims) for (const [pid, n] of Object.entries(s.stats().executions)) expect({ pid, n }).toEqual({ pid, n: 1 });
    expect(atKill.completed).toBeGreaterThan(0);
    child.proc.stdin.end();
  }, 600_000);
});

describe('a simulator crash while comfyguard is down', () => {
  async function scenario(maxRecoveryAgeMs: number) {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const sim = await startSimulator({ name: 'sim-0', stepMs: 5, nodeGate: ({ classType }) => (classType === 'KSampler' ? held : undefined) });
    cleanups.push(() => sim.close());
    const dir = mkdtempSync(join(tmpdir(), 'cg-simcrash-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const url = `sqlite:${join(dir, 'jobs.db')}`;
    const store = openStore(url);
    await store.init();
    cleanups.push(() => store.close());
    let child = new Child(url, [sim.url], maxRecoveryAgeMs);
    cleanups.push(() => child.kill());
    await child.ready;
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(String((await child.send({ op: 'submit', workflow: workflow('normal', 100 + i) })).id));
    // Four run at once (held in the sampler), two wait in the guard's queue.
    await until(async () => (await countByStatus(store)).running === 4, 'four jobs to run');
    await until(async () => {
      const q = (await (await fetch(`${sim.url}/queue`)).json()) as { queue_running: unknown[]; queue_pending: unknown[] };
      return q.queue_running.length + q.queue_pending.length === 4;
    }, 'the server to hold the four prompts');
    await child.kill();
    // While comfyguard is down the server crashes too: queue and history are gone.
    await sim.crash();
    release();
    child = new Child(url, [sim.url], maxRecoveryAgeMs);
    cleanups.push(() => child.kill());
    await child.ready;
    await until(async () => {
      const c = await countByStatus(store);
      return c.queued + c.running + c.recovering === 0;
    }, 'every job to end', { timeoutMs: 120_000 });
    const jobs = await Promise.all(ids.map((id) => store.getJob(id)));
    child.proc.stdin.end();
    return jobs.map((j) => j!);
  }

  it('resubmits the prompts the server lost and completes every job', async () => {
    const jobs = await scenario(600_000);
    for (const j of jobs) expect(j.status).toBe('completed');
    const lost = jobs.filter((j) => j.attempts.some((a) => a.status === 'lost'));
    expect(lost).toHaveLength(4);
    for (const j of lost) expect(j.attempts[0]!.code).toBe('COMFYUI_CONNECTION_ERROR');
  }, 180_000);

  it('fails jobs older than the max recovery age with a clear message instead of resubmitting', async () => {
    const jobs = await scenario(1);
    const expired = jobs.filter((j) => j.status === 'failed');
    expect(expired).toHaveLength(4);
    for (const j of expired) expect(j.error?.message).toContain('expired while comfyguard was down');
    // The two that never reached the server are not "unknown to the server": they still run.
    expect(jobs.filter((j) => j.status === 'completed')).toHaveLength(2);
  }, 180_000);
});
