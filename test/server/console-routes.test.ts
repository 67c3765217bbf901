/**
 * The console's routes over a real guard and simulator: search pages through the whole store with
 * filters the store cannot apply, bulk retry counts before it acts, pause/resume/drain, the servers'
 * history, and the global event stream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiWorkflow } from '../../src/comfy/types.js';
import { postJson, readSse, tinyWorkflow } from './helpers.js';
import { startServiceRig, type ServiceRig } from './rig.js';

interface SearchPage {
  jobs: Array<{ id: string; status: string; summary: { label: string | null } }>;
  nextCursor: string | null;
  scanned: number;
}

const invalid: ApiWorkflow = {
  '1': { class_type: 'EmptyImage', inputs: { width: 0, height: 64, batch_size: 1, color: 0 } },
  '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'bad' } },
};

describe('the console routes', () => {
  let rig: ServiceRig;
  const ids: string[] = [];
  beforeAll(async () => {
    rig = await startServiceRig([{ stepMs: 1 }]);
    for (let i = 0; i < 7; i++) {
      const res = await postJson(`${rig.url}/api/jobs`, { workflow: tinyWorkflow(i % 2 ? 'odd' : 'even') });
      ids.push(((await res.json()) as { id: string }).id);
    }
    for (const id of ids) await rig.guard.wait(id);
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('pages a text search through the whole store, every match once, newest first', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let n = 0; n < 10; n++) {
      const res = await fetch(`${rig.url}/api/jobs/search?q=odd&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as SearchPage;
      seen.push(...page.jobs.map((j) => j.id));
      for (const j of page.jobs) expect(j.summary.label).toBe('odd');
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(ids.filter((_, i) => i % 2).reverse());
  });

  it('filters by error code and server, and refuses a foreign cursor', async () => {
    const bad = ((await (await postJson(`${rig.url}/api/jobs`, { workflow: invalid })).json()) as { id: string }).id;
    await rig.guard.wait(bad);
    const byCode = (await (await fetch(`${rig.url}/api/jobs/search?code=COMFYUI_INVALID_PARAMETERS`)).json()) as SearchPage;
    expect(byCode.jobs.map((j) => j.id)).toEqual([bad]);
    const byServer = (await (await fetch(`${rig.url}/api/jobs/search?server=nowhere`)).json()) as SearchPage;
    expect(byServer.jobs).toEqual([]);
    expect(byServer.nextCursor).toBeNull();
    expect((await fetch(`${rig.url}/api/jobs/search?cursor=bm9wZQ`)).status).toBe(400);
    expect((await fetch(`${rig.url}/api/jobs/search?status=bogus`)).status).toBe(400);
  });

  it('counts retryable failures before retrying them, and leaves permanent ones alone', async () => {
    rig.sims[0]!.setFaults('oom=1');
    const id = ((await (await postJson(`${rig.url}/api/jobs`, { workflow: tinyWorkflow('oom'), options: { maxRetries: 0 } })).json()) as { id: string }).id;
    expect((await rig.guard.wait(id)).error?.retryable).toBe(true);
    rig.sims[0]!.setFaults('');
    const dry = await (await postJson(`${rig.url}/api/jobs/retry-failed`, { dryRun: true })).json();
    expect(dry).toEqual({ matched: 1, retried: 0, failed: [], truncated: false });
    expect((await rig.guard.get(id))?.status).toBe('failed');
    const done = await (await postJson(`${rig.url}/api/jobs/retry-failed`, {})).json();
    expect(done).toEqual({ matched: 1, retried: 1, failed: [], truncated: false });
    expect((await rig.guard.wait(id)).status).toBe('completed');
  });

  it('pauses and resumes the pool, drains a server, and says so on the event stream', async () => {
    const res = await fetch(`${rig.url}/api/events`);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const events = readSse(res, (e) => e.event === 'control' && (e.data as { paused: boolean }).paused === false);
    expect(await (await postJson(`${rig.url}/api/control/pause`, {})).json()).toEqual({ paused: true, drained: [] });
    expect(rig.guard.isPaused()).toBe(true);
    expect(await (await postJson(`${rig.url}/api/servers/sim-0/drain`, { on: true })).json()).toEqual({ server: 'sim-0', drained: true });
    expect(await (await fetch(`${rig.url}/api/control`)).json()).toEqual({ paused: true, drained: ['sim-0'] });
    const servers = (await (await fetch(`${rig.url}/api/servers`)).json()) as { paused: boolean; servers: Array<{ drained: boolean; history: Array<{ kind: string }> }> };
    expect(servers.paused).toBe(true);
    expect(servers.servers[0]!.drained).toBe(true);
    expect(servers.servers[0]!.history.at(-1)?.kind).toBe('drain');
    await postJson(`${rig.url}/api/servers/sim-0/drain`, { on: false });
    expect((await postJson(`${rig.url}/api/servers/nowhere/drain`, {})).status).toBe(404);
    await postJson(`${rig.url}/api/control/resume`, {});
    const got = await events;
    expect(got.events[0]!.event).toBe('hello');
    expect(got.events.filter((e) => e.event === 'control').map((e) => (e.data as { paused: boolean }).paused)).toEqual([true, true, true, false]);
  });

  it('streams every job event with the job and its summary', async () => {
    const res = await fetch(`${rig.url}/api/events`);
    let id = '';
    const events = readSse(res, (e) => e.event === 'state' && (e.data as { jobId: string; to: string }).jobId === id && (e.data as { to: string }).to === 'completed');
    id = ((await (await postJson(`${rig.url}/api/jobs`, { workflow: tinyWorkflow('streamed') })).json()) as { id: string }).id;
    const got = await events;
    const mine = got.events.filter((e) => (e.data as { jobId?: string }).jobId === id);
    expect(mine.map((e) => e.event)).toEqual(expect.arrayContaining(['state', 'attempt_started', 'comfy', 'attempt_settled']));
    const first = mine.find((e) => e.event === 'state')!.data as { from: null; summary: { label: string } };
    expect(first.from).toBeNull();
    expect(first.summary.label).toBe('streamed');
  });
});
