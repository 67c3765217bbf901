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
    // One shape on one server: its GPU need (the OOM and the success), and its CPU tensors (the success).
    expect(body.entries.map((e) => `${e.server}/${e.kind}`)).toEqual(['lone/cpu', 'lone/gpu']);
    const e = body.entries.find((x) => x.kind === 'gpu')!;
    expect(e).toMatchObject({ server: 'lone', ooms: 1, successes: 1, shape: expect.stringMatching(/^k[0-9a-f]{8}$/) });
    expect(e.label).toMatch(/^sdxl: sd_xl_base_1\.0\.safetensors; .*KSampler/);
    // The success of the changed workflow on 8 GiB caps the need; the OOM's lower bound only counts above the estimate.
    expect(e.upper).toBeGreaterThan(0);
    expect(e.lower === null || e.lower <= e.upper!).toBe(true);
    expect(await rig.guard.memoryModel()).toEqual(body);
  });

  it('needs the API key when the service has one', async () => {
    expect((await fetch(`${locked.url}/api/memory-model`)).status).toBe(401);
    const ok = await fetch(`${locked.url}/api/memory-model`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as LearnedMemory).entries.length).toBeGreaterThan(0);
  });
});
