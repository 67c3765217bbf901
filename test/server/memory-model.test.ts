/**
 * `GET /api/memory-model` over real HTTP, on a real guard and simulator: what an OOM and the
 * success after it taught the memory model, behind the same API key as every /api route.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiWorkflow } from '../../src/comfy/types.js';
import type { LearnedMemory } from '../../src/jobs/guard-api.js';
import { sd15Txt2img } from '../fixtures/workflows/index.js';
import { listen, type TestServer } from './helpers.js';
import { startServiceRig, type ServiceRig } from './rig.js';

const KEY = 'memory-model-test-key-0123456789';

function sdxl(size: number, batch: number): ApiWorkflow {
  const wf = sd15Txt2img();
  wf['4']!.inputs.ckpt_name = 'sd_xl_base_1.0.safetensors';
  wf['5']!.inputs = { width: size, height: size, batch_size: batch };
  wf['3']!.inputs.steps = 4;
  return wf;
}

describe('GET /api/memory-model', () => {
  let rig: ServiceRig;
  let locked: TestServer;
  beforeAll(async () => {
    rig = await startServiceRig([{ vram: '8GiB', name: 'lone' }]);
    locked = await listen({ guard: rig.guard, dashboard: false, apiKey: KEY });
  });
  afterAll(async () => {
    await locked?.close();
    await rig?.close();
  });

  it('is empty before anything ran', async () => {
    const res = await fetch(`${rig.url}/api/memory-model`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ entries: [] });
  });

  it('lists, per server and workflow shape, the bounds an OOM and a success taught', async () => {
    const job = await rig.guard.wait((await rig.guard.submit(sdxl(1024, 8))).id);
    expect(job.status).toBe('completed');
    expect(job.attempts.map((a) => a.code ?? 'ok')).toEqual(['COMFYUI_OOM', 'ok']);
    const body = (await (await fetch(`${rig.url}/api/memory-model`)).json()) as LearnedMemory;
    // The OOM taught the workflow as asked; the success, its tiled variant (a shape of its own).
    const gpu = body.entries.filter((x) => x.kind === 'gpu');
    expect(gpu.map((x) => [x.server, x.ooms, x.successes])).toEqual(expect.arrayContaining([['lone', 1, 0], ['lone', 0, 1]]));
    const failed = gpu.find((x) => x.ooms === 1)!;
    const fitted = gpu.find((x) => x.successes === 1)!;
    expect(failed.label).toMatch(/^sdxl: sd_xl_base_1\.0\.safetensors; .*KSampler, SaveImage, VAEDecode$/);
    expect(fitted.label).toMatch(/^sdxl: sd_xl_base_1\.0\.safetensors; .*VAEDecodeTiled$/);
    expect(failed.shape).toMatch(/^k[0-9a-f]{8}$/);
    expect(fitted.shape).not.toBe(failed.shape);
    // The success on 8 GiB caps the need of the shape that ran.
    expect(fitted.upper).toBeGreaterThan(0);
    expect(await rig.guard.memoryModel()).toEqual(body);
  });

  it('needs the API key when the service has one', async () => {
    expect((await fetch(`${locked.url}/api/memory-model`)).status).toBe(401);
    const ok = await fetch(`${locked.url}/api/memory-model`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as LearnedMemory).entries.length).toBeGreaterThan(0);
  });
});
