/**
 * The jobs API over real HTTP, with a real guard running jobs on real simulators.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '../../src/server/job-view.js';
import { postJson, readSse, tinyWorkflow, waitFor } from './helpers.js';
import { startServiceRig, type ServiceRig } from './rig.js';

interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

async function getJob(url: string, id: string, query = ''): Promise<JobView> {
  const res = await fetch(`${url}/api/jobs/${id}${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as JobView;
}

async function submit(url: string, body: unknown): Promise<{ id: string; status: string; created: boolean }> {
  const res = await postJson(`${url}/api/jobs`, body);
  const text = await res.text();
  expect(res.status, text).toBe(202);
  return JSON.parse(text) as { id: string; status: string; created: boolean };
}

function waitStatus(url: string, id: string, statuses: string[]): Promise<JobView> {
  return waitFor(async () => {
    const job = await getJob(url, id);
    return statuses.includes(job.status) ? job : null;
  }, `job ${id} to be ${statuses.join('|')}`);
}

describe('with an idle simulator', () => {
  let rig: ServiceRig;
  beforeAll(async () => {
    rig = await startServiceRig();
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('answers 202 {id, status: queued} and the job completes with its output served through /api/outputs', async () => {
    const res = await postJson(`${rig.url}/api/jobs`, { workflow: tinyWorkflow('first'), params: { width: 96 } });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { id: string; status: string; created: boolean };
    expect(body).toEqual({ id: expect.any(String), status: 'queued', created: true });
    expect(res.headers.get('location')).toBe(`/api/jobs/${body.id}`);

    const done = await waitStatus(rig.url, body.id, ['completed', 'failed']);
    expect(done.status).toBe('completed');
    expect(done.progress).toBe(100);
    expect(done.error).toBeNull();
    expect(done.retryCount).toBe(0);
    expect(done.recoveryHistory).toEqual([]);
    expect(done.originalParameters).toEqual({ width: 96 });
    expect(done.server).toBe('sim-0');
    expect(new Date(done.createdAt).toISOString()).toBe(done.createdAt);
    expect(done.attempts).toHaveLength(1);
    expect(done.attempts[0]).toMatchObject({ number: 1, server: 'sim-0', status: 'completed', promptId: expect.any(String) });
    expect(done.attempts[0]).not.toHaveProperty('workflow');
    expect(done).not.toHaveProperty('workflow');
    expect(done.outputs).toHaveLength(1);
    const out = done.outputs[0]!;
    expect(out).toMatchObject({ node: '2', type: 'output', server: 'sim-0' });
    expect(out.filename).toMatch(/^first_\d+_\.png$/);
    expect(out.url).toMatch(/^\/api\/outputs\/sim-0\/output\//);

    const file = await fetch(`${rig.url}${out.url}`);
    expect(file.status).toBe(200);
    expect(file.headers.get('content-type')).toBe('image/png');
    const bytes = new Uint8Array(await file.arrayBuffer());
    expect([...bytes.slice(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

    const missing = await fetch(`${rig.url}/api/outputs/sim-0/output/nope_00001_.png`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as ErrorBody).error.code).toBe('NOT_FOUND');
  });

  it('adds the original and every attempt\'s workflow with ?include=workflow', async () => {
    const { id } = await submit(rig.url, { workflow: tinyWorkflow('incl') });
    await waitStatus(rig.url, id, ['completed']);
    const job = await getJob(rig.url, id, '?include=workflow');
    expect(job.workflow).toEqual(tinyWorkflow('incl'));
    expect(job.attempts[0]!.workflow).toMatchObject({ '2': { class_type: 'SaveImage' } });
  });

  it('returns the same job for a repeat with the same idempotency key', async () => {
    const body = { workflow: tinyWorkflow('idem'), options: { idempotencyKey: 'order-42' } };
    const first = await submit(rig.url, body);
    const again = await postJson(`${rig.url}/api/jobs`, body);
    expect(again.status).toBe(200);
    const second = (await again.json()) as { id: string; created: boolean };
    expect(second.id).toBe(first.id);
    expect(second.created).toBe(false);
    await waitStatus(rig.url, first.id, ['completed']);
    const third = (await (await postJson(`${rig.url}/api/jobs`, body)).json()) as { id: string; status: string };
    expect(third).toMatchObject({ id: first.id, status: 'completed' });
    const list = (await (await fetch(`${rig.url}/api/jobs?limit=1000`)).json()) as { jobs: JobView[] };
    expect(list.jobs.filter((j) => j.idempotencyKey === 'order-42')).toHaveLength(1);
  });

  it('lists jobs newest first, filtered by status, in pages linked by nextCursor', async () => {
    const ids: string[] = [];
    for (const n of [1, 2, 3]) ids.push((await submit(rig.url, { workflow: tinyWorkflow(`page${n}`) })).id);
    for (const id of ids) await waitStatus(rig.url, id, ['completed']);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await fetch(`${rig.url}/api/jobs?status=completed&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { jobs: JobView[]; nextCursor: string | null };
      expect(page.jobs.length).toBeLessThanOrEqual(2);
      for (const j of page.jobs) expect(j.status).toBe('completed');
      seen.push(...page.jobs.map((j) => j.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 50);
    expect(new Set(seen).size).toBe(seen.length);
    // Newest first: the three just made are in reverse order of submission.
    const order = ids.map((id) => seen.indexOf(id));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect(order[0]!).toBeGreaterThan(order[1]!);
    expect(order[1]!).toBeGreaterThan(order[2]!);

    const failed = (await (await fetch(`${rig.url}/api/jobs?status=failed,cancelled`)).json()) as { jobs: JobView[] };
    expect(failed.jobs.some((j) => ids.includes(j.id))).toBe(false);
  });

  it('refuses to retry a permanent failure unless forced, and refuses to retry a completed job', async () => {
    // width 0 fails ComfyUI's validation: COMFYUI_INVALID_PARAMETERS, permanent.
    const bad = { '1': { class_type: 'EmptyImage', inputs: { width: 0, height: 64, batch_size: 1, color: 0 } }, '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'bad' } } };
    const { id } = await submit(rig.url, { workflow: bad });
    const failed = await waitStatus(rig.url, id, ['failed']);
    expect(failed.error).toMatchObject({ code: 'COMFYUI_INVALID_PARAMETERS', category: 'permanent', retryable: false });
    expect(failed.error!.message.length).toBeGreaterThan(0);
    expect(failed.error!.hint.length).toBeGreaterThan(0);
    expect(failed.attempts).toHaveLength(1);

    const refused = await postJson(`${rig.url}/api/jobs/${id}/retry`, {});
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as ErrorBody).error.code).toBe('RETRY_REFUSED');

    const forced = await postJson(`${rig.url}/api/jobs/${id}/retry`, { force: true });
    expect(forced.status).toBe(200);
    expect(((await forced.json()) as JobView).status).toBe('queued');
    const again = await waitStatus(rig.url, id, ['failed']);
    expect(again.attempts.length).toBe(2);

    const viaQuery = await fetch(`${rig.url}/api/jobs/${id}/retry?force=true`, { method: 'POST' });
    expect(viaQuery.status).toBe(200);
    await waitStatus(rig.url, id, ['failed']);

    const { id: okId } = await submit(rig.url, { workflow: tinyWorkflow('done') });
    await waitStatus(rig.url, okId, ['completed']);
    const notFailed = await postJson(`${rig.url}/api/jobs/${okId}/retry`, { force: true });
    expect(notFailed.status).toBe(409);
    expect(((await notFailed.json()) as ErrorBody).error.code).toBe('INVALID_STATE');
  });

  it('streams a job\'s events over SSE, starting with its state and ending with the terminal state', async () => {
    const { id } = await submit(rig.url, { workflow: tinyWorkflow('sse') });
    const res = await fetch(`${rig.url}/api/jobs/${id}/events`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const { events, ended } = await readSse(res);
    expect(ended).toBe(true);
    const first = events[0]!;
    expect(first.event).toBe('state');
    expect(first.data).toMatchObject({ type: 'state', jobId: id, from: null });
    const last = events.at(-1)!;
    expect(last.event).toBe('state');
    expect(last.data).toMatchObject({ type: 'state', jobId: id, to: 'completed', job: { id, status: 'completed', progress: 100 } });
    // Every event belongs to this job, in order.
    for (const e of events) expect((e.data as { jobId: string }).jobId).toBe(id);
    expect(events.map((e) => Number(e.id))).toEqual(events.map((_, i) => i + 1));

    // A finished job: one event, its terminal state, and the stream ends.
    const again = await readSse(await fetch(`${rig.url}/api/jobs/${id}/events`));
    expect(again.events).toHaveLength(1);
    expect(again.events[0]!.data).toMatchObject({ to: 'completed' });
  });

  it('deletes terminal jobs older than the given hours', async () => {
    const { id } = await submit(rig.url, { workflow: tinyWorkflow('old') });
    await waitStatus(rig.url, id, ['completed']);
    const keep = await fetch(`${rig.url}/api/jobs?olderThanHours=24`, { method: 'DELETE' });
    expect(keep.status).toBe(200);
    expect(await keep.json()).toEqual({ deleted: 0, olderThanHours: 24, outputs: null });
    expect((await fetch(`${rig.url}/api/jobs/${id}`)).status).toBe(200);

    const all = await fetch(`${rig.url}/api/jobs?olderThanHours=0`, { method: 'DELETE' });
    const body = (await all.json()) as { deleted: number };
    expect(body.deleted).toBeGreaterThanOrEqual(1);
    expect((await fetch(`${rig.url}/api/jobs/${id}`)).status).toBe(404);
  });
});

describe('with a simulator whose nodes the test holds', () => {
  let rig: ServiceRig;
  let release: () => void = () => {};
  afterEach(async () => {
    release();
    await rig?.close();
  });

  async function heldRig(): Promise<void> {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    release = open;
    rig = await startServiceRig([{ nodeGate: () => gate }]);
  }

  it('cancels a running job, and refuses to retry a job that is still running', async () => {
    await heldRig();
    const { id } = await submit(rig.url, { workflow: tinyWorkflow('held') });
    await waitStatus(rig.url, id, ['running']);

    const early = await postJson(`${rig.url}/api/jobs/${id}/retry`, { force: true });
    expect(early.status).toBe(409);
    expect(((await early.json()) as ErrorBody).error.code).toBe('INVALID_STATE');

    const events = fetch(`${rig.url}/api/jobs/${id}/events`).then((r) => readSse(r));
    const res = await fetch(`${rig.url}/api/jobs/${id}/cancel`, { method: 'POST' });
    expect(res.status).toBe(200);
    const job = (await res.json()) as JobView;
    expect(job.status).toBe('cancelled');
    const { events: list } = await events;
    expect(list.at(-1)!.data).toMatchObject({ to: 'cancelled' });

    // Cancelling a finished job answers with it as it is.
    const again = await fetch(`${rig.url}/api/jobs/${id}/cancel`, { method: 'POST' });
    expect(((await again.json()) as JobView).status).toBe('cancelled');
  });

  it('emergency stop cancels every job and interrupts every server', async () => {
    await heldRig();
    const ids = [(await submit(rig.url, { workflow: tinyWorkflow('e1') })).id, (await submit(rig.url, { workflow: tinyWorkflow('e2') })).id];
    await waitStatus(rig.url, ids[0]!, ['running']);
    const res = await fetch(`${rig.url}/api/emergency-stop`, { method: 'POST' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { cancelled: number; servers: number };
    expect(body).toEqual({ cancelled: 2, servers: 1 });
    for (const id of ids) expect((await getJob(rig.url, id)).status).toBe('cancelled');
  });

  it('shows an OOM recovery step by step in the recovery history', async () => {
    let calls = 0;
    rig = await startServiceRig([
      {
        faults: 'oom=1',
        // The simulator plans its faults when a prompt starts: the first attempt is planned with
        // oom=1 and runs out of memory; lifting the fault inside it leaves the next attempt clean.
        nodeGate: () => {
          if (calls++ === 0) rig.sims[0]!.setFaults('');
        },
      },
    ]);
    const { id } = await submit(rig.url, { workflow: tinyWorkflow('oom') });
    const job = await waitStatus(rig.url, id, ['completed', 'failed']);
    expect(job.status).toBe('completed');
    expect(job.attempts.length).toBe(2);
    expect(job.attempts[0]).toMatchObject({ number: 1, status: 'failed', code: 'COMFYUI_OOM' });
    expect(job.recoveryHistory).toHaveLength(1);
    const step = job.recoveryHistory[0]!;
    expect(step).toMatchObject({ attempt: 1, code: 'COMFYUI_OOM', success: true, server: 'sim-0' });
    expect(typeof step.strategy).toBe('string');
    expect(step.message.length).toBeGreaterThan(0);
    expect(step.endedAt).not.toBeNull();
    expect(job.retryCount).toBe(1);

    const stats = (await (await fetch(`${rig.url}/api/stats`)).json()) as Record<string, unknown>;
    expect(stats).toMatchObject({ successfulRecoveries: 1, failedRecoveries: 0, recoveryRate: 1 });
  });
});
