import { describe, expect, it } from 'vitest';
import { cudaOomMessage } from '../sim/memory.js';
import { GiB, SD15, SDXL, emptyImage, runOnSim, txt2img } from '../../test/support/sim-oracle.js';
import { estimateWorkflow, shapeKey } from './memory-estimate.js';
import { createMemoryModel, memoryModelFromJSON, mergeMemoryStates, type ServerMemory } from './memory-model.js';

const gpu = (name: string, gib: number): ServerMemory => ({ name, vramTotal: gib * GiB, vramFree: gib * GiB, device: 'cuda' });
const cpuServer = (name: string, gib: number): ServerMemory => ({ name, vramTotal: gib * GiB, vramFree: null, device: 'cpu' });

describe('estimateWorkflow', () => {
  it('predicts exactly what the simulator can run, over families, sizes, batches, decoders and GPUs', async () => {
    const mm = createMemoryModel({ headroom: 0 });
    let cases = 0;
    for (const ckpt of [SD15, SDXL]) {
      for (const size of [512, 768, 1024, 1536]) {
        for (const batch of [1, 2, 4, 8]) {
          for (const tiled of [false, true]) {
            const wf = txt2img({ ckpt, width: size, height: size, batch, tiled });
            for (const vram of [4, 6, 8, 12, 24]) {
              const sim = await runOnSim(wf, { vram: vram * GiB });
              const p = mm.predict(wf, gpu('g', vram));
              expect({ ckpt, size, batch, tiled, vram, fits: p.fits }).toEqual({ ckpt, size, batch, tiled, vram, fits: sim.ok });
              cases++;
            }
          }
        }
      }
    }
    expect(cases).toBe(320);
  });

  it('finds the peak where the simulator does: SDXL 1024x1024x8 at the VAE decode, ~18.6 GiB', () => {
    const e = estimateWorkflow(txt2img({ ckpt: SDXL, width: 1024, height: 1024, batch: 8 }));
    expect(e.gpu.nodeId).toBe('8');
    expect(e.gpu.bytes / GiB).toBeCloseTo(18.61, 1);
    expect(e.family).toBe('sdxl');
    expect(e.unknownNodes).toEqual([]);
  });

  it('estimates the CPU tensor of EmptyImage as the largest allocation: three times the first one that fails', async () => {
    const wf = emptyImage(16384, 64);
    const sim = await runOnSim(wf, { device: 'cpu', ram: 8 * GiB });
    expect(sim.ok).toBe(false);
    const tried = Number(/allocate (\d+) bytes/.exec(sim.ok ? '' : sim.text)?.[1]);
    // torch.full of one channel fails first (as in the recorded capture); torch.cat of three follows.
    expect(tried).toBe(16384 * 16384 * 64 * 4);
    expect(estimateWorkflow(wf).cpu.bytes).toBe(3 * tried);
  });

  it('lists node types it does not know instead of guessing their memory', () => {
    const wf = { ...txt2img(), '20': { class_type: 'SomeCustomVideoNode', inputs: { images: ['8', 0] } } };
    expect(estimateWorkflow(wf).unknownNodes).toEqual(['SomeCustomVideoNode']);
    expect(createMemoryModel().predict(wf, gpu('g', 24)).basis).toContain('not counted: SomeCustomVideoNode');
  });

  it('follows a latent upscale into the second sampler and decode', () => {
    const base = txt2img({ ckpt: SDXL, width: 1024, height: 1024 });
    const hires = {
      ...base,
      '10': { class_type: 'LatentUpscaleBy', inputs: { samples: ['3', 0], upscale_method: 'nearest-exact', scale_by: 2 } },
      '11': { class_type: 'KSampler', inputs: { ...base['3']!.inputs, latent_image: ['10', 0] } },
      '8': { class_type: 'VAEDecode', inputs: { samples: ['11', 0], vae: ['4', 2] } },
    };
    // 2048x2048 = 4 MP: decode 6 GiB on top of 6.6 GiB of models and context.
    expect(estimateWorkflow(hires).gpu.bytes / GiB).toBeCloseTo(0.3 + 4.8 + 1.35 + 0.16 + 4 * 1.5, 1);
  });
});

describe('shapeKey', () => {
  it('is the same for every size, batch and step count of one graph, and differs across models and decoders', () => {
    const k = shapeKey(txt2img({ ckpt: SDXL }));
    expect(shapeKey(txt2img({ ckpt: SDXL, width: 1536, batch: 8, steps: 12 }))).toBe(k);
    expect(shapeKey(txt2img({ ckpt: SD15 }))).not.toBe(k);
    // A tiled decode peaks elsewhere (at the sampler): what a full decode's OOM taught must not raise it.
    expect(shapeKey(txt2img({ ckpt: SDXL, tiled: true }))).not.toBe(k);
  });

  it('does not let a full decode OOM push a tiled decode that fitted into a smaller batch', () => {
    const mm = createMemoryModel();
    const full = txt2img({ ckpt: SD15, width: 1024, height: 1024, batch: 8 });
    const tiled = txt2img({ ckpt: SD15, width: 1024, height: 1024, batch: 8, tiled: true });
    const g8 = gpu('g8', 8);
    expect(mm.predict(tiled, g8).fits).toBe(true);
    // The full decode needs more than the estimate said; the tiled one ran.
    mm.observeOom({ server: g8, workflow: full, text: cudaOomMessage(12 * GiB, 8 * GiB, 4 * GiB) });
    mm.observeSuccess({ server: g8, workflow: tiled });
    expect(mm.predict(full, g8).fits).toBe(false);
    expect(mm.predict(tiled, g8).fits).toBe(true);
  });
});

describe('createMemoryModel', () => {
  it('routes by fit: SDXL 1024 does not fit 6 GiB but fits 24 GiB; SD1.5 1024x8 needs the 24 GiB card untiled', () => {
    const mm = createMemoryModel();
    const sdxl = txt2img({ ckpt: SDXL, width: 1024, height: 1024 });
    expect(mm.predict(sdxl, gpu('small', 6)).fits).toBe(false);
    expect(mm.predict(sdxl, gpu('big', 24)).fits).toBe(true);
    const sd15x8 = txt2img({ ckpt: SD15, width: 1024, height: 1024, batch: 8 });
    expect(mm.predict(sd15x8, gpu('small', 6)).fits).toBe(false);
    expect(mm.predict(sd15x8, gpu('big', 24)).fits).toBe(true);
    expect(mm.predict(sd15x8, { name: 'unknown', vramTotal: null, vramFree: null }).fits).toBeNull();
  });

  it('learns a lower bound from an OOM message and applies it to every size of that shape, on every server', () => {
    const mm = createMemoryModel({ headroom: 0 });
    const wf = txt2img({ ckpt: SD15, width: 1024, height: 1024, batch: 2 });
    const before = mm.predict(wf, gpu('g8', 8));
    expect(before.fits).toBe(true);
    // The server says the decode needed 9 GiB (7 in use + 2 more): more than the shape estimate.
    const learned = mm.observeOom({ server: gpu('g8', 8), workflow: wf, text: cudaOomMessage(2 * GiB, 8 * GiB, 7 * GiB) });
    expect(learned).toBe(9 * GiB);
    const after = mm.predict(wf, gpu('g8', 8));
    expect(after.needBytes).toBe(9 * GiB);
    expect(after.fits).toBe(false);
    expect(after.basis).toContain('g8: 1 OOM');
    expect(mm.predict(wf, gpu('g12', 12)).fits).toBe(true);
    const bigger = txt2img({ ckpt: SD15, width: 1024, height: 1024, batch: 4 });
    expect(mm.predict(bigger, gpu('g12', 12)).needBytes).toBeGreaterThan(createMemoryModel({ headroom: 0 }).predict(bigger, gpu('g12', 12)).needBytes);
    expect(mm.predict(txt2img({ ckpt: SDXL }), gpu('g8', 8)).basis).toContain('no history');
  });

  it('subtracts models of other workflows that were resident when the OOM struck', () => {
    const mm = createMemoryModel({ headroom: 0 });
    const wf = txt2img({ ckpt: SD15, width: 1024, height: 1024, batch: 2 });
    mm.observeOom({ server: gpu('g8', 8), workflow: wf, text: cudaOomMessage(2 * GiB, 8 * GiB, 7 * GiB), residentBytes: 4 * GiB });
    expect(mm.predict(wf, gpu('g8', 8)).fits).toBe(true);
  });

  it('learns an upper bound from a success: a shape the estimate thought too big fits where it ran', () => {
    const mm = createMemoryModel({ headroom: 0 });
    const wf = txt2img({ ckpt: SDXL, width: 1024, height: 1024, batch: 1 });
    expect(mm.predict(wf, gpu('g8', 8)).fits).toBe(false);
    mm.observeSuccess({ server: gpu('g8', 8), workflow: wf });
    expect(mm.predict(wf, gpu('g8', 8)).fits).toBe(true);
    expect(mm.predict(wf, gpu('g6', 6)).fits).toBe(false);
  });

  it('takes the VRAM seen in use during a success as a floor', () => {
    const mm = createMemoryModel({ headroom: 0 });
    const wf = txt2img({ ckpt: SD15 });
    const est = mm.predict(wf, gpu('g', 24)).needBytes;
    mm.observeSuccess({ server: gpu('g', 24), workflow: wf, peakUsedBytes: est * 2 });
    expect(mm.predict(wf, gpu('g', 24)).needBytes).toBe(est * 2);
  });

  it('learns from the CPU allocator on a CPU server and judges CPU servers by their RAM', async () => {
    const mm = createMemoryModel();
    const wf = emptyImage(16384, 64);
    const sim = await runOnSim(wf, { device: 'cpu', ram: 8 * GiB });
    expect(mm.predict(wf, cpuServer('cpu8', 8)).fits).toBe(false);
    expect(mm.observeOom({ server: cpuServer('cpu8', 8), workflow: wf, text: sim.ok ? '' : sim.text })).toBeGreaterThan(64 * GiB);
    const one = emptyImage(16384, 1);
    expect(mm.predict(one, cpuServer('cpu8', 8)).fits).toBe(true);
    expect((await runOnSim(one, { device: 'cpu', ram: 8 * GiB })).ok).toBe(true);
    expect(mm.predict(wf, cpuServer('cpu8', 8)).kind).toBe('cpuDevice');
  });

  it('survives a JSON round trip and merges states of two processes', () => {
    const a = createMemoryModel({ headroom: 0 });
    const wf = txt2img({ ckpt: SD15, width: 1024, height: 1024, batch: 2 });
    a.observeOom({ server: gpu('g8', 8), workflow: wf, text: cudaOomMessage(2 * GiB, 8 * GiB, 7 * GiB) });
    const b = memoryModelFromJSON(JSON.parse(JSON.stringify(a.toJSON())), { headroom: 0 });
    expect(b.predict(wf, gpu('g8', 8))).toEqual(a.predict(wf, gpu('g8', 8)));
    const c = createMemoryModel({ headroom: 0 });
    c.observeOom({ server: gpu('g6', 6), workflow: wf, text: cudaOomMessage(4 * GiB, 6 * GiB, 6 * GiB) });
    const merged = memoryModelFromJSON(mergeMemoryStates(a.toJSON(), c.toJSON()), { headroom: 0 });
    expect(merged.predict(wf, gpu('g12', 12)).needBytes).toBe(10 * GiB);
    expect(merged.toJSON().entries['g8']).toBeDefined();
    // What each shape is travels with what was learned, for doctor and the API.
    expect(Object.values(merged.toJSON().labels ?? {})).toEqual([expect.stringMatching(/^sd15: v1-5-pruned-emaonly\.ckpt; .*KSampler.*VAEDecode/)]);
  });

  it('ignores unreadable stored state rather than failing', () => {
    expect(memoryModelFromJSON({ version: 1, entries: { g: { k: { gpu: { lower: 'x', upper: -1 } } } } }).predict(txt2img(), gpu('g', 8)).fits).toBe(true);
    expect(memoryModelFromJSON('garbage').toJSON()).toEqual({ version: 1, entries: {}, labels: {} });
  });
});
