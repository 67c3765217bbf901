import { afterEach, describe, expect, it } from 'vitest';
import type { ApiWorkflow } from '../../src/comfy/types.js';
import type { AnalyticsEvent } from '../../src/jobs/guard-api.js';
import { sd15Txt2img } from '../fixtures/workflows/index.js';
import { until } from '../support/wait.js';
import { holdFirst, progressOf, startRig, strategies, type Rig } from './harness.js';

let rig: Rig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

function tiny(prefix = 'tiny'): ApiWorkflow {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color: 0 } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: prefix } },
  };
}

function sd15(patch: { width?: number; height?: number; batch?: number; steps?: number; ckpt?: string; seed?: number } = {}): ApiWorkflow {
  const wf = sd15Txt2img();
  wf['5']!.inputs = { width: patch.width ?? 512, height: patch.height ?? 512, batch_size: patch.batch ?? 1 };
  if (patch.steps !== undefined) wf['3']!.inputs.steps = patch.steps;
  if (patch.seed !== undefined) wf['3']!.inputs.seed = patch.seed;
  if (patch.ckpt !== undefined) wf['4']!.inputs.ckpt_name = patch.ckpt;
  return wf;
}

describe('job engine against simulators', () => {
  it('completes a job, collects its outputs and reports monotonic progress up to 100', async () => {
    rig = await startRig([{}]);
    const { id } = await rig.guard.submit(sd15({ steps: 8 }));
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('completed');
    expect(job.attempts).toHaveLength(1);
    expect(job.outputs.length).toBeGreaterThan(0);
    expect(job.outputs[0]).toMatchObject({ node: '9', type: 'output', server: 'sim-0' });
    expect(job.outputs[0]!.url).toContain('/api/outputs/sim-0/output/');
    const progress = progressOf(rig.events, id).get(1) ?? [];
    expect(progress.at(-1)).toBe(100);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!).toBeGreaterThanOrEqual(progress[i - 1]!);
    const executions = rig.sims[0]!.stats().executions;
    expect(executions[job.promptId!]).toBe(1);
    // The prompt id was chosen by us and recorded before the submit.
    expect(job.attempts[0]!.promptId).toBe(job.promptId);
  });

  it('plans an OOM on a lone small GPU in one step, completes in at most 2 attempts, and lists what it changed', async () => {
    rig = await startRig([{ vram: '4GiB' }], { maxRetries: 12 });
    const { id } = await rig.guard.submit(sd15({ width: 1024, height: 1024, batch: 8, steps: 30 }));
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('completed');
    expect(job.attempts.length).toBeLessThanOrEqual(2);
    expect(job.recoveryHistory.every((s) => s.code === 'COMFYUI_OOM')).toBe(true);
    expect(job.recoveryHistory.at(-1)!.success).toBe(true);
    // The changes of the one step are combined and recorded exactly.
    const changes = job.recoveryHistory.flatMap((s) => s.changes);
    expect(changes).toContainEqual(expect.objectContaining({ nodeId: '5', input: 'batch_size', from: 8 }));
    // Never a silent change: the job says what differs from the request.
    expect(job.degraded).toMatchObject({ changes: expect.arrayContaining([expect.objectContaining({ node: '5', input: 'batch_size', from: 8 })]) });
    // Every attempt stored the workflow it ran; the original is untouched.
    expect(job.workflow['5']!.inputs).toEqual({ width: 1024, height: 1024, batch_size: 8 });
  });

  it("refuses an output-changing recovery under quality 'exact', naming the change", async () => {
    rig = await startRig([{ vram: '4GiB' }], { maxRetries: 12 });
    const { id } = await rig.guard.submit(sd15({ width: 1024, height: 1024, batch: 8, steps: 30 }), { quality: 'exact' });
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('COMFYUI_OOM');
    expect(job.attempts.length).toBeLessThanOrEqual(2);
    expect(job.degraded).toBeNull();
    expect(job.error?.message).toMatch(/Quality "exact" refused the change that would have run it: .*batch_size 8 -> /);
  });

  it('routes a job to the GPU predicted to fit it from the first attempt, with every image', async () => {
    rig = await startRig([{ vram: '4GiB', name: 'small' }, { vram: '48GiB', name: 'big' }], { maxRetries: 6 });
    const { id } = await rig.guard.submit(sd15({ width: 1024, height: 1024, batch: 8, steps: 10 }));
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('completed');
    expect(job.attempts).toHaveLength(1);
    expect(job.attempts[0]!.server).toBe('big');
    expect(job.degraded).toBeNull();
    expect(job.attempts[0]!.workflow['5']!.inputs).toEqual({ width: 1024, height: 1024, batch_size: 8 });
  });

  it('switches to a fallback model that a server has', async () => {
    rig = await startRig([{ models: { checkpoints: ['v1-5-pruned-emaonly.ckpt'] } }]);
    const { id } = await rig.guard.submit(sd15({ ckpt: 'dreamshaper_8.safetensors', steps: 5 }), { fallbackModels: ['v1-5-pruned-emaonly.ckpt'] });
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('completed');
    expect(strategies(job)).toContain('switch_model');
    const step = job.recoveryHistory.find((s) => s.strategy === 'switch_model')!;
    expect(step.code).toBe('COMFYUI_MODEL_MISSING');
    expect(step.changes).toContainEqual(expect.objectContaining({ input: 'ckpt_name', from: 'dreamshaper_8.safetensors', to: 'v1-5-pruned-emaonly.ckpt' }));
  });

  it('fails at once with COMFYUI_MODEL_MISSING naming a model that no server has', async () => {
    rig = await startRig([{ models: { loras: [] } }, { models: { loras: [] } }]);
    const wf = sd15({ steps: 5 });
    wf['10'] = { class_type: 'LoraLoader', inputs: { lora_name: 'detail-tweaker.safetensors', strength_model: 1, strength_clip: 1, model: ['4', 0], clip: ['4', 1] } };
    wf['3']!.inputs.model = ['10', 0];
    const { id } = await rig.guard.submit(wf);
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('COMFYUI_MODEL_MISSING');
    expect(`${job.error?.message} ${job.error?.hint}`).toContain('detail-tweaker.safetensors');
    // Nothing was executed anywhere.
    for (const s of rig.sims) expect(Object.keys(s.stats().executions)).toHaveLength(0);
  });

  it('ends a permanent error in one attempt with the node and input named', async () => {
    rig = await startRig([{}]);
    const wf = sd15({ steps: 5 });
    wf['3']!.inputs.cfg = 1000;
    const { id } = await rig.guard.submit(wf);
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'COMFYUI_INVALID_PARAMETERS', retryable: false, nodeId: '3' });
    expect(job.attempts).toHaveLength(1);
    expect(job.recoveryHistory).toHaveLength(0);
  });

  it('aborts on a full disk and marks the server unhealthy', async () => {
    rig = await startRig([{ faults: 'disk_full=1' }]);
    const { id } = await rig.guard.submit(tiny('disk'));
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('COMFYUI_DISK_FULL');
    expect(job.attempts).toHaveLength(1);
    const [server] = await rig.guard.servers();
    expect(server!.healthy).toBe(false);
  });

  it('recovers from a stalled prompt by resubmitting on another server', async () => {
    rig = await startRig([{ name: 'stuck', faults: 'stall=1' }, { name: 'fine' }], { stallTimeoutMs: 1_000 });
    const { id } = await rig.guard.submit(tiny('stall'));
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('completed');
    expect(job.attempts[0]).toMatchObject({ server: 'stuck', code: 'COMFYUI_STALLED' });
    expect(job.attempts.at(-1)!.server).toBe('fine');
    // No prompt ran twice.
    for (const s of rig.sims) for (const n of Object.values(s.stats().executions)) expect(n).toBe(1);
  });

  it('survives WebSocket drops mid-run without running any prompt twice', async () => {
    rig = await startRig([{ faults: 'ws_drop=0.2', seed: 7, stepMs: 3 }]);
    const ids = await Promise.all([1, 2, 3].map((i) => rig!.guard.submit(sd15({ steps: 10, seed: i })).then((r) => r.id)));
    const jobs = await Promise.all(ids.map((id) => rig!.guard.wait(id)));
    for (const j of jobs) expect(j.status).toBe('completed');
    const stats = rig.sims[0]!.stats();
    expect(stats.faults['ws_drop'] ?? 0).toBeGreaterThan(0);
    for (const n of Object.values(stats.executions)) expect(n).toBe(1);
  });

  it('resubmits after a server crash lost the running prompt', async () => {
    const sampler = holdFirst('KSampler');
    rig = await startRig([{ nodeGate: sampler.nodeGate }]);
    const { id } = await rig.guard.submit(sd15({ steps: 4 }));
    await until(() => sampler.held() > 0, 'the sampler to start');
    await rig.sims[0]!.crash();
    sampler.release();
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('completed');
    expect(job.attempts.length).toBeGreaterThanOrEqual(2);
    expect(job.attempts[0]!.status).toBe('lost');
    expect(job.attempts[0]!.code).toBe('COMFYUI_CONNECTION_ERROR');
  });

  it('resubmits a job interrupted by someone else', async () => {
    const sampler = holdFirst('KSampler');
    rig = await startRig([{ nodeGate: sampler.nodeGate }]);
    const { id } = await rig.guard.submit(sd15({ steps: 4 }));
    await until(() => sampler.held() > 0, 'the sampler to start');
    await fetch(`${rig.sims[0]!.url}/interrupt`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    sampler.release();
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('completed');
    expect(job.attempts[0]!.code).toBe('COMFYUI_INTERRUPTED');
    expect(strategies(job)[0]).toBe('retry');
  });

  it('cancels a running job and leaves nothing running on the server', async () => {
    rig = await startRig([{ stepMs: 200 }]);
    const { id } = await rig.guard.submit(sd15({ steps: 200 }));
    await until(() => rig!.events.some((e) => e.type === 'comfy' && e.jobId === id && e.message.type === 'progress'), 'the job to run');
    const job = await rig.guard.cancel(id);
    expect(job.status).toBe('cancelled');
    await until(async () => {
      const q = (await (await fetch(`${rig!.sims[0]!.url}/queue`)).json()) as { queue_running: unknown[]; queue_pending: unknown[] };
      return q.queue_running.length === 0 && q.queue_pending.length === 0;
    }, 'the server queue to empty');
  });

  it('emergency stop cancels every job and clears every server', async () => {
    rig = await startRig([{ stepMs: 100 }, { stepMs: 100 }], { concurrency: 8 });
    const ids = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => rig!.guard.submit(sd15({ steps: 100, seed: i })).then((r) => r.id)));
    await until(async () => (await rig!.guard.get(ids[0]!))?.status === 'running', 'a job to run');
    const res = await rig.guard.emergencyStop();
    expect(res.servers).toBe(2);
    for (const id of ids) expect((await rig.guard.get(id))!.status).toBe('cancelled');
    for (const s of rig.sims) {
      await until(async () => {
        const q = (await (await fetch(`${s.url}/queue`)).json()) as { queue_running: unknown[]; queue_pending: unknown[] };
        return q.queue_running.length === 0 && q.queue_pending.length === 0;
      }, `${s.name} to be idle`);
    }
  });

  it('refuses a manual retry of a permanent failure unless forced', async () => {
    rig = await startRig([{}]);
    const wf = sd15({ steps: 5 });
    wf['3']!.inputs.cfg = 1000;
    const { id } = await rig.guard.submit(wf);
    await rig.guard.wait(id);
    await expect(rig.guard.retry(id)).rejects.toMatchObject({ code: 'RETRY_REFUSED' });
    const again = await rig.guard.retry(id, { force: true });
    expect(again.status).toBe('queued');
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('failed');
    expect(job.attempts).toHaveLength(2);
    expect(job.attempts[1]!.manual).toBe(true);
  });

  it('returns the same job for a repeated idempotency key', async () => {
    rig = await startRig([{}]);
    const a = await rig.guard.submit(tiny('idem'), { idempotencyKey: 'order-42' });
    const b = await rig.guard.submit(tiny('idem'), { idempotencyKey: 'order-42' });
    expect(b.id).toBe(a.id);
    expect(b.created).toBe(false);
  });

  it('rejects bad input at submit with the field named', async () => {
    rig = await startRig([{}]);
    await expect(rig.guard.submit({ nodes: [], links: [] } as unknown as ApiWorkflow)).rejects.toMatchObject({ code: 'INVALID_JOB', field: 'workflow' });
    await expect(rig.guard.submit(tiny(), { maxRetries: -1 })).rejects.toMatchObject({ code: 'INVALID_JOB', field: 'options.maxRetries' });
    await expect(rig.guard.submit(tiny(), { params: { steps: 10 } })).rejects.toMatchObject({ code: 'INVALID_JOB', field: 'params.steps' });
  });

  it('emits the retry analytics events with their exact fields', async () => {
    const events: AnalyticsEvent[] = [];
    rig = await startRig([{ vram: '4GiB' }], { maxRetries: 12, analytics: (e) => events.push(e) });
    const ok = await rig.guard.wait((await rig.guard.submit(sd15({ width: 1024, height: 1024, batch: 8, steps: 30 }))).id);
    expect(ok.status).toBe('completed');
    const attempted = events.filter((e) => e.name === 'comfyui_retry_attempted');
    expect(attempted.length).toBe(ok.attempts.length - 1);
    expect(attempted[0]).toEqual({ name: 'comfyui_retry_attempted', promptId: ok.attempts[0]!.promptId, attempt: 2, errorType: 'COMFYUI_OOM' });
    const succeeded = events.filter((e) => e.name === 'comfyui_retry_succeeded');
    expect(succeeded).toEqual([{ name: 'comfyui_retry_succeeded', promptId: ok.attempts.at(-1)!.promptId, attempt: ok.attempts.length, totalRetries: ok.retryCount }]);

    events.length = 0;
    // EmptyImage has 3 channels: asking ImageToMask for alpha raises IndexError (retried once, then failed).
    const failing: ApiWorkflow = {
      '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color: 0 } },
      '2': { class_type: 'ImageToMask', inputs: { image: ['1', 0], channel: 'alpha' } },
      '3': { class_type: 'MaskToImage', inputs: { mask: ['2', 0] } },
      '4': { class_type: 'SaveImage', inputs: { images: ['3', 0], filename_prefix: 'x' } },
    };
    const bad = await rig.guard.wait((await rig.guard.submit(failing, { maxRetries: 1 })).id);
    expect(bad.status).toBe('failed');
    expect(events.filter((e) => e.name === 'comfyui_retry_exhausted')).toEqual([
      { name: 'comfyui_retry_exhausted', promptId: bad.attempts.at(-1)!.promptId, totalRetries: 1, finalError: 'COMFYUI_GENERATION_ERROR' },
    ]);
    expect(events.map((e) => e.name)).toContain('job_failed');
  });

  it('scales quality for jobs that opt in while the pool is degraded, and records the level', async () => {
    rig = await startRig([{ name: 'up' }, { name: 'down' }]);
    await rig.sims[1]!.close();
    await until(() => rig!.guard.degradation() !== 'full', 'the pool to notice the lost server');
    const level = rig.guard.degradation();
    expect(level).toBe('medium');
    const wf = sd15({ width: 1024, height: 1024, batch: 1, steps: 30 });
    const opted = await rig.guard.wait((await rig.guard.submit(wf, { allowDegradation: true })).id);
    expect(opted.status).toBe('completed');
    expect(opted.degraded).toMatchObject({ level: 'medium', factor: 0.6, changes: expect.arrayContaining([expect.objectContaining({ node: '5', input: 'width', from: 1024 })]) });
    expect(opted.attempts[0]!.changes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ nodeId: '5', input: 'width', from: 1024, to: 616 }),
        expect.objectContaining({ nodeId: '3', input: 'steps', from: 30, to: 20 }),
      ]),
    );
    const plain = await rig.guard.wait((await rig.guard.submit(sd15({ width: 1024, height: 1024, batch: 1, steps: 30, seed: 3 }))).id);
    expect(plain.degraded).toBeNull();
    expect(plain.attempts[0]!.workflow['5']!.inputs).toEqual({ width: 1024, height: 1024, batch_size: 1 });
  });

  it('records every failed attempt with its code, even under concurrency', async () => {
    rig = await startRig([{ vram: '4GiB' }], { maxRetries: 12 });
    const ids = await Promise.all([1, 2, 3].map((i) => rig!.guard.submit(sd15({ width: 1024, height: 1024, batch: 8, steps: 20, seed: i })).then((r) => r.id)));
    await Promise.all(ids.map((id) => rig!.guard.wait(id)));
    for (const id of ids) {
      const job = (await rig.guard.get(id))!;
      expect(job.status).toBe('completed');
      for (const a of job.attempts.slice(0, -1)) expect({ n: a.number, status: a.status, code: a.code }).toEqual({ n: a.number, status: 'failed', code: 'COMFYUI_OOM' });
      expect(job.attempts.at(-1)!.status).toBe('completed');
    }
  });
});
