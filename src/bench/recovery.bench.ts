/**
 * Time for a guard to recover 10,000 non-terminal jobs at start (read them from the store and hand
 * them to the dispatcher), per store backend available here.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGuard } from '../jobs/guard.js';
import { newJobRecord, type JobRecord } from '../jobs/types.js';
import type { Dispatcher } from '../queue/contract.js';
import { openStore } from '../store/open.js';
import { startSimulator } from '../sim/index.js';
import { round, type BenchResult } from './harness.js';

const N = Number(process.env.BENCH_RECOVERY_JOBS ?? 10_000);

/** Counts what the guard hands over and runs nothing, so only recovery is timed. */
class CountingDispatcher implements Dispatcher {
  readonly kind = 'in-process' as const;
  enqueued = 0;
  async start(): Promise<void> {}
  async enqueue(): Promise<void> {
    this.enqueued++;
  }
  async enqueueMany(jobs: ReadonlyArray<unknown>): Promise<void> {
    this.enqueued += jobs.length;
  }
  async remove(): Promise<boolean> {
    return false;
  }
  async counts() {
    return { waiting: this.enqueued, active: 0 };
  }
  async onIdle(): Promise<void> {}
  async close(): Promise<void> {}
}

function job(i: number, now: number): JobRecord {
  const status = i % 3 === 0 ? 'running' : 'queued';
  const workflow = { '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color: i } }, '2': { class_type: 'SaveImage', inputs: { images: ['1', 0] } } };
  return { ...newJobRecord({ id: randomUUID(), workflow, now: now - i }), status };
}

export async function run(): Promise<BenchResult> {
  const sim = await startSimulator({ stepMs: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'cg-bench-recovery-'));
  const rows: BenchResult['rows'] = [];
  try {
    for (const url of [`sqlite:${join(dir, 'r.db')}`, 'memory:']) {
      const store = openStore(url);
      await store.init();
      const now = Date.now();
      for (let i = 0; i < N; i++) await store.createJob(job(i, now));
      const dispatcher = new CountingDispatcher();
      const t0 = performance.now();
      const guard = await createGuard({ servers: [sim.url], store, dispatcher, cleanupIntervalMs: 0 });
      const ms = performance.now() - t0;
      await guard.close();
      await store.close();
      rows.push({ store: url.split(':')[0]!, jobs: N, 'handed to dispatcher': dispatcher.enqueued, 'recovery ms': round(ms), 'jobs/s': round((N / ms) * 1000) });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await sim.close();
  }
  return { name: 'recovery', title: `Restart recovery of ${N} non-terminal jobs (guard start, dispatcher not running them)`, rows };
}
