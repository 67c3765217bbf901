/**
 * The VRAM model: what fits on which GPU, the OOM error as ComfyUI reports it, `/free` releasing
 * loaded models, and the OOM recovery ladder reaching a prompt that fits on a small GPU.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/index.js';
import { getJson, postJson, runPrompt, sdWorkflow } from './helpers.js';

const sims: Simulator[] = [];
async function sim(opts: SimulatorOptions): Promise<Simulator> {
  const s = await startSimulator({ stepMs: 0, ...opts });
  sims.push(s);
  return s;
}
afterEach(async () => {
  while (sims.length > 0) await sims.pop()?.close();
});

type Stats = { devices: Array<{ vram_total: number; vram_free: number; type: string }> };
const SDXL = 'sd_xl_base_1.0.safetensors';
const SD15 = 'v1-5-pruned-emaonly.ckpt';

describe('VRAM model', () => {
  it('SD1.5 512x512 batch 1 fits in 4 GiB', async () => {
    const s = await sim({ vram: '4GiB' });
    const r = await runPrompt(s.url, sdWorkflow({ ckpt: SD15 }));
    expect(r.outcome).toBe('success');
    expect(r.outputs['9']).toMatchObject({ images: [{ subfolder: '', type: 'output' }] });
  });

  it('SDXL 1024x1024 batch 8 fails on 8 GiB with a CUDA OOM and fits on 24 GiB', async () => {
    const small = await sim({ vram: '8GiB' });
    const big = await sim({ vram: '24GiB' });
    const prompt = sdWorkflow({ ckpt: SDXL, width: 1024, height: 1024, batch: 8 });
    const fail = await runPrompt(small.url, prompt);
    expect(fail.outcome).toBe('error');
    expect(fail.error).toMatchObject({ node_type: 'KSampler', exception_type: 'torch.OutOfMemoryError' });
    const message = String(fail.error?.exception_message);
    expect(message).toMatch(/^CUDA out of memory\. Tried to allocate 3\.60 GiB\. GPU 0 has a total capacity of 8\.00 GiB of which [\d.]+ [GM]iB is free\./);
    expect(message.endsWith('This error means you ran out of memory on your GPU.\n\nTIPS: If the workflow worked before you might have accidentally set the batch_size to a large number.')).toBe(true);
    expect((await runPrompt(big.url, prompt)).outcome).toBe('success');
  });

  it('walking the OOM ladder (tiled VAE, half batch, 0.8 scale) reaches a prompt that fits on 8 GiB', async () => {
    const s = await sim({ vram: '8GiB' });
    const ladder = [
      { ckpt: SDXL, width: 1024, height: 1024, batch: 8 },
      { ckpt: SDXL, width: 1024, height: 1024, batch: 8, tiled: true },
      { ckpt: SDXL, width: 1024, height: 1024, batch: 4, tiled: true },
      { ckpt: SDXL, width: 816, height: 816, batch: 4, tiled: true },
    ];
    const outcomes: string[] = [];
    for (const step of ladder) {
      // A cold attempt each time: cached text encodings would spare loading CLIP (as in ComfyUI).
      await postJson(s.url, '/free', { unload_models: true, free_memory: true });
      outcomes.push((await runPrompt(s.url, sdWorkflow(step))).outcome);
    }
    expect(outcomes).toEqual(['error', 'error', 'error', 'success']);
  });

  it('tiled VAE is a real recovery: SD1.5 1024x1024 batch 8 only decodes tiled on 8 GiB', async () => {
    const s = await sim({ vram: '8GiB' });
    const full = await runPrompt(s.url, sdWorkflow({ ckpt: SD15, width: 1024, height: 1024, batch: 8 }));
    expect(full.error).toMatchObject({ node_type: 'VAEDecode', exception_type: 'torch.OutOfMemoryError' });
    expect((await runPrompt(s.url, sdWorkflow({ ckpt: SD15, width: 1024, height: 1024, batch: 8, tiled: true, seed: 2 }))).outcome).toBe('success');
  });

  it('models stay loaded until /free: a borderline prompt fails after a big model ran and succeeds after /free', async () => {
    const s = await sim({ vram: '8GiB' });
    expect((await runPrompt(s.url, sdWorkflow({ ckpt: SDXL }))).outcome).toBe('success');
    const loaded = await getJson<Stats>(s.url, '/system_stats');
    expect(loaded.devices[0]?.vram_total).toBe(8 * 2 ** 30);
    expect((s.state().loaded_models as string[]).length).toBe(3);

    const borderline = sdWorkflow({ ckpt: SD15, width: 768, height: 768 });
    const fail = await runPrompt(s.url, borderline);
    expect(fail.error).toMatchObject({ exception_type: 'torch.OutOfMemoryError' });
    // ComfyUI unloads every model after a CUDA OOM.
    expect(s.state().loaded_models).toEqual([]);

    expect((await runPrompt(s.url, sdWorkflow({ ckpt: SDXL, seed: 7 }))).outcome).toBe('success');
    expect((await postJson(s.url, '/free', { unload_models: true })).status).toBe(200);
    const freed = await getJson<Stats>(s.url, '/system_stats');
    expect(freed.devices[0]?.vram_free).toBeGreaterThan(loaded.devices[0]?.vram_free ?? Infinity);
    expect((await runPrompt(s.url, borderline)).outcome).toBe('success');
  });

  it('/free {free_memory} also drops the node cache, so an identical prompt runs again', async () => {
    const s = await sim({ vram: '24GiB' });
    const prompt = sdWorkflow({ ckpt: SD15 });
    const first = await runPrompt(s.url, prompt);
    const cached = await runPrompt(s.url, prompt);
    expect(cached.outputs).toEqual(first.outputs); // same files: nothing re-ran
    await postJson(s.url, '/free', { free_memory: true });
    const fresh = await runPrompt(s.url, prompt);
    expect(fresh.outputs).not.toEqual(first.outputs);
  });

  it('a cpu server fails big CPU tensors with the CPU allocator error, as recorded', async () => {
    const s = await sim({ device: 'cpu', ram: '24GiB' });
    const stats = await getJson<Stats>(s.url, '/system_stats');
    expect(stats.devices[0]?.type).toBe('cpu');
    const r = await runPrompt(s.url, {
      '1': { class_type: 'EmptyImage', inputs: { width: 16384, height: 16384, batch_size: 64, color: 0 } },
      '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'oom' } },
    });
    expect(r.error).toMatchObject({
      exception_type: 'RuntimeError',
      exception_message:
        "[enforce fail at alloc_cpu.cpp:75] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)\n",
    });
  });
});
