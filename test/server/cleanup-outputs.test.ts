/**
 * Cleanup with output files, over real HTTP: `DELETE /api/jobs` on a service whose guard has
 * `cleanupOutputs` on, over simulators that serve custom-node delete routes (or none, like a stock
 * ComfyUI). The guard's clock runs ahead on demand so jobs become "old" without waiting.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuard } from '../../src/jobs/guard.js';
import type { Guard } from '../../src/jobs/guard-api.js';
import type { CleanupReport } from '../../src/jobs/cleanup.js';
import type { JobView } from '../../src/server/job-view.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { systemClock, type Clock } from '../../src/util/clock.js';
import { listen, postJson, tinyWorkflow, waitFor, type TestServer } from './helpers.js';

const HOUR = 3_600_000;
const TEMPLATE = 'DELETE /sim-ext/delete_output?filename={filename}&subfolder={subfolder}&type={type}';

let skew = 0;
const clock: Clock = { now: () => Date.now() + skew, setTimeout: systemClock.setTimeout, clearTimeout: systemClock.clearTimeout };

const sims: Record<'browsing' | 'template' | 'stock' | 'gone', Simulator> = {} as never;
let guard: Guard;
let server: TestServer;
const logged: Array<{ level: 'info' | 'warn'; msg: string }> = [];
const note = (level: 'info' | 'warn') => (_o: object, msg?: string) => void logged.push({ level, msg: msg ?? '' });
const logger = { info: note('info'), warn: note('warn'), error: () => undefined, debug: () => undefined };
/** The last cleanup summary logged (sockets to a stopped simulator log too, at any time). */
const lastSummary = () => logged.filter((l) => l.msg.startsWith('cleanup: deleted')).at(-1);

beforeAll(async () => {
  sims.browsing = await startSimulator({ name: 'browsing', stepMs: 1, deleteRoutes: true });
  sims.template = await startSimulator({ name: 'template', stepMs: 1, deleteRoutes: true });
  sims.stock = await startSimulator({ name: 'stock', stepMs: 1 });
  sims.gone = await startSimulator({ name: 'gone', stepMs: 1, deleteRoutes: true });
  guard = await createGuard({
    servers: [
      { url: sims.browsing.url, name: 'browsing', tags: ['browsing'], outputDelete: 'image-browsing' },
      { url: sims.template.url, name: 'template', tags: ['template'], outputDelete: TEMPLATE },
      { url: sims.stock.url, name: 'stock', tags: ['stock'] },
      { url: sims.gone.url, name: 'gone', tags: ['gone'], outputDelete: TEMPLATE },
    ],
    store: 'memory:',
    clock,
    cleanupOutputs: true,
    cleanupIntervalMs: 0,
    logger,
    progressThrottleMs: 0,
  });
  server = await listen({ guard, dashboard: false });
});

afterAll(async () => {
  await server?.close();
  await guard?.close();
  await Promise.all(Object.values(sims).map((s) => s.close()));
});

/** Runs one job on the server with `tag` through the API; returns its view once completed. */
async function completedJob(tag: string, batch = 1, prefix = `cleanup-${tag}-${Math.random().toString(36).slice(2, 8)}`): Promise<JobView> {
  const workflow = tinyWorkflow(prefix);
  (workflow['1']!.inputs as Record<string, unknown>).batch_size = batch;
  const res = await postJson(`${server.url}/api/jobs`, { workflow, options: { serverTags: [tag] } });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  const job = await waitFor(async () => {
    const view = (await (await fetch(`${server.url}/api/jobs/${id}`)).json()) as JobView;
    return view.status === 'completed' || view.status === 'failed' ? view : null;
  }, `job ${id} to end`);
  expect(job.status).toBe('completed');
  expect(job.outputs.length).toBe(batch);
  return job;
}

async function onServer(sim: Simulator, f: { filename: string; subfolder: string; type: string }): Promise<boolean> {
  const q = new URLSearchParams({ filename: f.filename, subfolder: f.subfolder, type: f.type });
  const res = await fetch(`${sim.url}/view?${q}`);
  await res.arrayBuffer();
  return res.status === 200;
}

/** Moves the guard's clock two hours on and cleans up jobs that ended over an hour ago. */
async function cleanupOld(): Promise<CleanupReport> {
  skew += 2 * HOUR;
  const res = await fetch(`${server.url}/api/jobs?olderThanHours=1`, { method: 'DELETE' });
  expect(res.status).toBe(200);
  return (await res.json()) as CleanupReport;
}

async function recordExists(id: string): Promise<boolean> {
  const res = await fetch(`${server.url}/api/jobs/${id}`);
  await res.arrayBuffer();
  return res.status === 200;
}

describe('DELETE /api/jobs with output cleanup', () => {
  it("deletes the old jobs' files through the ComfyUI-Image-Browsing route and a route template, and says so per job and file", async () => {
    const viaNode = await completedJob('browsing', 2);
    const viaTemplate = await completedJob('template');
    for (const f of viaNode.outputs) expect(await onServer(sims.browsing, f)).toBe(true);
    expect(await onServer(sims.template, viaTemplate.outputs[0]!)).toBe(true);

    const report = await cleanupOld();

    expect(report).toMatchObject({ deleted: 2, olderThanHours: 1, outputs: { deleted: 3, cannot: 0, failed: 0, kept: 0, unreadRecords: 0, moreJobs: 0 } });
    const byId = new Map(report.outputs!.jobs.map((j) => [j.id, j.files]));
    expect(byId.get(viaNode.id)).toEqual(viaNode.outputs.map((o) => ({ server: 'browsing', filename: o.filename, subfolder: o.subfolder, type: 'output', result: 'deleted' })));
    expect(byId.get(viaTemplate.id)).toEqual([{ server: 'template', filename: viaTemplate.outputs[0]!.filename, subfolder: viaTemplate.outputs[0]!.subfolder, type: 'output', result: 'deleted' }]);
    for (const f of viaNode.outputs) expect(await onServer(sims.browsing, f)).toBe(false);
    expect(await onServer(sims.template, viaTemplate.outputs[0]!)).toBe(false);
    expect(await recordExists(viaNode.id)).toBe(false);
    expect(await recordExists(viaTemplate.id)).toBe(false);
  });

  it('reports the files of a server without a delete route as "cannot", leaves them, and still deletes the record', async () => {
    const job = await completedJob('stock');
    const report = await cleanupOld();
    expect(report).toMatchObject({ deleted: 1, outputs: { deleted: 0, cannot: 1, failed: 0 } });
    expect(report.outputs!.jobs).toEqual([
      { id: job.id, files: [expect.objectContaining({ server: 'stock', filename: job.outputs[0]!.filename, result: 'cannot', reason: expect.stringContaining('ComfyUI has no API to delete files') })] },
    ]);
    expect(await onServer(sims.stock, job.outputs[0]!)).toBe(true);
    expect(await recordExists(job.id)).toBe(false);
    expect(logged).toContainEqual({ level: 'info', msg: expect.stringMatching(new RegExp(`^cleanup: job ${job.id}: 1 cannot on stock \\(ComfyUI has no API to delete files`)) });
    expect(lastSummary()).toEqual({ level: 'info', msg: expect.stringMatching(/^cleanup: deleted 1 jobs that ended over 1 h ago; output files: 0 deleted, 1 cannot be deleted, 0 failed/) });
  });

  it('reports the files of an unreachable server as failed and still deletes the record', async () => {
    const job = await completedJob('gone');
    await sims.gone.close();
    const report = await cleanupOld();
    expect(report).toMatchObject({ deleted: 1, outputs: { deleted: 0, cannot: 0, failed: 1 } });
    expect(report.outputs!.jobs[0]).toEqual({ id: job.id, files: [expect.objectContaining({ server: 'gone', result: 'failed', reason: expect.stringContaining('gone is unreachable') })] });
    expect(await recordExists(job.id)).toBe(false);
    expect(lastSummary()).toEqual({ level: 'warn', msg: expect.stringContaining('output files: 0 deleted, 0 cannot be deleted, 1 failed') });
  });

  it('never touches the files of a job whose record it keeps (not old enough)', async () => {
    const old = await completedJob('browsing');
    skew += 2 * HOUR;
    const recent = await completedJob('browsing');
    // Only `old` ended over an hour before the clock now reads.
    const res = await fetch(`${server.url}/api/jobs?olderThanHours=1`, { method: 'DELETE' });
    const report = (await res.json()) as CleanupReport;
    expect(report).toMatchObject({ deleted: 1, outputs: { deleted: 1, kept: 0 } });
    expect(report.outputs!.jobs.map((j) => j.id)).toEqual([old.id]);
    expect(await onServer(sims.browsing, recent.outputs[0]!)).toBe(true);
    expect(await recordExists(recent.id)).toBe(true);
    expect(await onServer(sims.browsing, old.outputs[0]!)).toBe(false);
  });

  it('keeps a file that a remaining job still lists because ComfyUI served that job from its cache', async () => {
    await cleanupOld(); // what earlier tests left
    const old = await completedJob('browsing', 1, 'cleanup-cached');
    skew += 2 * HOUR;
    // The same prompt again: ComfyUI answers from its cache, and both jobs list the one file.
    const recent = await completedJob('browsing', 1, 'cleanup-cached');
    expect(recent.outputs[0]!.filename).toBe(old.outputs[0]!.filename);
    const res = await fetch(`${server.url}/api/jobs?olderThanHours=1`, { method: 'DELETE' });
    const report = (await res.json()) as CleanupReport;
    expect(report).toMatchObject({ deleted: 1, outputs: { deleted: 0, kept: 1 } });
    expect(report.outputs!.jobs).toEqual([{ id: old.id, files: [expect.objectContaining({ result: 'kept', reason: expect.stringContaining(`job ${recent.id} still lists this file`) })] }]);
    expect(await onServer(sims.browsing, recent.outputs[0]!)).toBe(true);
    expect(await recordExists(old.id)).toBe(false);
  });
});
