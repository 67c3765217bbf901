/** Capacity-aware recovery through the whole engine, on simulators whose memory is the oracle. */
import { afterEach, describe, expect, it } from 'vitest';
import type { ApiWorkflow } from '../../src/comfy/types.js';
import { sd15Txt2img } from '../fixtures/workflows/index.js';
import { startRig, type Rig } from './harness.js';

let rig: Rig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

function txt2img(ckpt: string, size: number, batch: number): ApiWorkflow {
  const wf = sd15Txt2img();
  wf['4']!.inputs.ckpt_name = ckpt;
  wf['5']!.inputs = { width: size, height: size, batch_size: batch };
  wf['3']!.inputs.steps = 6;
  return wf;
}

describe('capacity-aware recovery (engine + simulators)', () => {
  it('runs SDXL 1024² ×1 and SD1.5 1024² ×8 on the 24 GiB server in one attempt each, with every image', async () => {
    rig = await startRig([{ vram: '6GiB', name: 'small' }, { vram: '24GiB', name: 'big' }]);
    for (const wf of [txt2img('sd_xl_base_1.0.safetensors', 1024, 1), txt2img('v1-5-pruned-emaonly.ckpt', 1024, 8)]) {
      const job = await rig.guard.wait((await rig.guard.submit(wf)).id);
      expect(job.status).toBe('completed');
      expect(job.attempts).toHaveLength(1);
      expect(job.attempts[0]!.server).toBe('big');
      expect(job.degraded).toBeNull();
      expect(job.outputs).toHaveLength(wf['5']!.inputs.batch_size as number);
    }
  });

  it('on a lone 8 GiB server completes SDXL 1024² ×8 in at most 2 attempts and lists the changes; quality exact fails at once naming the change', async () => {
    rig = await startRig([{ vram: '8GiB', name: 'lone' }]);
    const job = await rig.guard.wait((await rig.guard.submit(txt2img('sd_xl_base_1.0.safetensors', 1024, 8))).id);
    expect(job.status).toBe('completed');
    expect(job.attempts.length).toBeLessThanOrEqual(2);
    expect(job.degraded && 'changes' in job.degraded ? job.degraded.changes.length : 0).toBeGreaterThan(0);
    const exact = await rig.guard.wait((await rig.guard.submit(txt2img('sd_xl_base_1.0.safetensors', 1024, 8), { quality: 'exact' })).id);
    expect(exact.status).toBe('failed');
    // At once: the first OOM is answered by the refusal, and the error names the change refused.
    expect(exact.attempts).toHaveLength(1);
    expect(exact.recoveryHistory).toEqual([]);
    expect(exact.degraded).toBeNull();
    expect(exact.error?.message).toMatch(/Quality "exact" refused the change that would have run it: .*EmptyLatentImage batch_size 8 -> \d/);
    expect(exact.error?.hint).toMatch(/without quality "exact"/);
  });

  it('with capacityAware false walks the old ladder (free memory first, one rung per attempt) where the planner needs at most 2 attempts', async () => {
    rig = await startRig([{ vram: '8GiB', name: 'lone' }], { capacityAware: false, maxRetries: 10 });
    const job = await rig.guard.wait((await rig.guard.submit(txt2img('sd_xl_base_1.0.safetensors', 1024, 8))).id);
    expect(job.recoveryHistory[0]!.strategy).toBe('free_memory');
    expect(job.attempts.length).toBeGreaterThan(2);
  });

  it('fits a huge CPU allocation (EmptyImage 16384² ×64) on a small server in at most 2 attempts', async () => {
    rig = await startRig([{ vram: '8GiB', name: 'small' }]);
    const wf: ApiWorkflow = {
      '1': { class_type: 'EmptyImage', inputs: { width: 16384, height: 16384, batch_size: 64, color: 0 } },
      '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'huge' } },
    };
    // Default options: the OOM budget, not maxRetries, bounds this.
    const job = await rig.guard.wait((await rig.guard.submit(wf)).id);
    expect(job.attempts.length).toBeLessThanOrEqual(2);
    expect(job.status).toBe('completed');
  });

  it('fits the same allocation on a CPU server with 8 GiB of RAM in at most 2 attempts, listing the batch it cut', async () => {
    rig = await startRig([{ device: 'cpu', ram: '8GiB', name: 'cpu8' }]);
    const wf: ApiWorkflow = {
      '1': { class_type: 'EmptyImage', inputs: { width: 16384, height: 16384, batch_size: 64, color: 0 } },
      '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'huge' } },
    };
    const job = await rig.guard.wait((await rig.guard.submit(wf)).id);
    expect(job.status).toBe('completed');
    expect(job.attempts.length).toBeLessThanOrEqual(2);
    expect(job.degraded && 'changes' in job.degraded ? job.degraded.changes?.map((c) => c.input) : []).toContain('batch_size');
  });

  it('words an OOM on a CPU server as system memory (RAM), not the GPU, in the attempt and the job error', async () => {
    rig = await startRig([{ device: 'cpu', ram: '8GiB', name: 'cpu-box' }]);
    const wf: ApiWorkflow = {
      '1': { class_type: 'EmptyImage', inputs: { width: 16384, height: 16384, batch_size: 64, color: 0 } },
      '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'huge' } },
    };
    const job = await rig.guard.wait((await rig.guard.submit(wf, { quality: 'exact' })).id);
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('COMFYUI_OOM');
    expect(job.error?.message).toMatch(/ran out of system memory \(RAM\)/);
    expect(job.error?.message).not.toMatch(/GPU/);
    expect(job.error?.hint).toMatch(/more RAM/);
    expect(job.attempts[0]!.message).toMatch(/system memory/);
  });
});

