import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createGuard } from '../../src/jobs/guard.js';
import { recoverUnfinishedJobs } from '../../src/jobs/restart-recovery.js';
import { InProcessDispatcher } from '../../src/queue/in-process.js';
import { MemoryStore } from '../../src/store/memory.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import type { JobStatus } from '../../src/jobs/types.js';
import { startSimulator } from '../../src/sim/index.js';
import { makeJob, sampleWorkflow } from '../store/fixtures.js';

async function storeWith(statuses: JobStatus[]): Promise<MemoryStore> {
  const store = new MemoryStore();
  await store.init();
  for (let i = 0; i < statuses.length; i++) await store.createJob(makeJob({ id: `j${String(i).padStart(3, '0')}`, status: statuses[i] as JobStatus, createdAt: 1_700_000_000_000 + i, priority: i % 3 }));
  return store;
}

describe('recoverUnfinishedJobs', () => {
  it('queues every unfinished job once across pages, orphans first, and skips terminal ones', async () => {
    const statuses: JobStatus[] = Array.from({ length: 25 }, (_, i) => (['queued', 'running', 'completed', 'recovering', 'failed'] as const)[i % 5] as JobStatus);
    const store = await storeWith(statuses);
    const dispatcher = new InProcessDispatcher({ concurrency: 1 });
    const ran: string[] = [];
    const result = await recoverUnfinishedJobs({ store, dispatcher, pageSize: 4 });
    expect(result).toEqual({ queued: 15, skipped: 0, corrupt: 0, pages: 4 });
    await dispatcher.start(async (id) => {
      ran.push(id);
    });
    await dispatcher.onIdle();
    const unfinished = (await store.listNonTerminal()).jobs;
    expect([...ran].sort()).toEqual(unfinished.map((j) => j.id).sort());
    // Orphans (running, recovering) run before any queued job.
    const firstQueued = ran.findIndex((id) => unfinished.find((j) => j.id === id)?.status === 'queued');
    expect(ran.slice(firstQueued).every((id) => unfinished.find((j) => j.id === id)?.status === 'queued')).toBe(true);
    await dispatcher.close();
    await store.close();
  });

  it('runs the per-job step with bounded parallelism, leaves out jobs it settles, and reports failures without losing the job', async () => {
    const store = await storeWith(Array.from({ length: 30 }, () => 'running' as JobStatus));
    const dispatcher = new InProcessDispatcher();
    let inFlight = 0;
    let peak = 0;
    const errors: string[] = [];
    const result = await recoverUnfinishedJobs({
      store,
      dispatcher,
      pageSize: 10,
      parallel: 3,
      onJob: async (job) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await Promise.resolve();
        inFlight--;
        if (job.id === 'j005') throw new Error('server unreachable');
        return job.id !== 'j007';
      },
      onError: (job) => errors.push(job.id),
    });
    expect(peak).toBe(3);
    expect(errors).toEqual(['j005']);
    expect(result).toMatchObject({ queued: 29, skipped: 1 });
    expect(await dispatcher.counts()).toEqual({ waiting: 29, active: 0 });
    await dispatcher.close();
    await store.close();
  });

  it('reports unreadable rows and queues the rest', async () => {
    const rows = new Map<string, string>();
    const store = new MemoryStore({ rows });
    await store.init();
    await store.createJob(makeJob({ id: 'ok' }));
    rows.set('broken', '{"id":"broken","status":"queued"');
    const dispatcher = new InProcessDispatcher();
    const corrupt: string[] = [];
    const result = await recoverUnfinishedJobs({ store, dispatcher, onCorrupt: (c) => corrupt.push(c.id) });
    expect(corrupt).toEqual(['broken']);
    expect(result).toMatchObject({ queued: 1, corrupt: 1 });
    await dispatcher.close();
    await store.close();
  });

  it('after a restart on SQLite, a damaged unfinished row is quarantined when its turn comes and the healthy jobs complete', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cg-recover-'));
    const path = join(dir, 'jobs.db');
    const sim = await startSimulator({ stepMs: 1 });
    const store = new SqliteStore({ path });
    try {
      await store.init();
      const good = makeJob({ id: 'good', workflow: sampleWorkflow(), createdAt: Date.now() });
      await store.createJob(good);
      // Written behind the store's back, as a crash or a disk fault would leave it.
      const raw = new Database(path);
      raw
        .prepare(`INSERT INTO jobs (id, status, workflow, original_parameters, options, created_at, updated_at) VALUES ('broken', 'running', '{"3":{"class_type":"KSa', '{}', '{}', 1, 1)`)
        .run();
      raw.close();
      let skipped!: () => void;
      const skippedLogged = new Promise<void>((resolve) => (skipped = resolve));
      const logger = {
        info: () => {},
        debug: () => {},
        warn: () => {},
        error: (o: object, msg?: string) => {
          if (msg === 'skipping unreadable job in the store' && (o as { jobId?: string }).jobId === 'broken') skipped();
        },
      };
      const guard = await createGuard({ servers: [sim.url], store, logger, cleanupIntervalMs: 0 });
      try {
        expect((await guard.wait('good')).status).toBe('completed');
        await skippedLogged;
        expect((await guard.listCorrupt()).map((c) => c.id)).toEqual(['broken']);
        expect(await store.countByStatus()).toMatchObject({ total: 1, byStatus: { completed: 1, running: 0 } });
      } finally {
        await guard.close();
      }
    } finally {
      await store.close();
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
