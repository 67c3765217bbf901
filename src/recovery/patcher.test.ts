import { describe, expect, it } from 'vitest';
import type { ApiWorkflow } from '../comfy/types.js';
import {
  deepFreeze,
  fluxUnet,
  hiresFixTwoSamplers,
  sd15Lora,
  sd15Txt2img,
  sdxlRefiner,
  WORKFLOW_FIXTURES,
} from '../../test/fixtures/workflows/index.js';
import { isPatchError, PatchError } from './patch-error.js';
import {
  applyParams,
  findNodes,
  reduceBatch,
  reduceResolution,
  reduceSteps,
  scaleQuality,
  switchModel,
  useTiledVae,
  type PatchResult,
} from './patcher.js';

/** A frozen fixture: any mutation by the code under test throws in strict mode. */
const frozen = (wf: ApiWorkflow): ApiWorkflow => deepFreeze(wf);

/** Runs `fn` and returns the PatchError it throws (failing the test when it does not throw one). */
function patchError(fn: () => unknown): PatchError {
  try {
    fn();
  } catch (e) {
    if (isPatchError(e)) return e;
    throw e;
  }
  throw new Error('expected a PatchError');
}

/** Every change must be exactly the difference between input and output. */
function expectChangesMatch(before: ApiWorkflow, result: PatchResult): void {
  for (const c of result.changes) {
    const b = before[c.nodeId];
    const a = result.workflow[c.nodeId];
    if (c.input === 'class_type') {
      expect(b?.class_type).toBe(c.from);
      expect(a?.class_type).toBe(c.to);
    } else {
      expect(b?.inputs[c.input] ?? null).toEqual(c.from);
      expect(a?.inputs[c.input]).toEqual(c.to);
    }
  }
  // And nothing else changed.
  const touched = new Set(result.changes.map((c) => `${c.nodeId}.${c.input}`));
  for (const [id, node] of Object.entries(result.workflow)) {
    for (const [input, v] of Object.entries(node.inputs)) {
      if (!touched.has(`${id}.${input}`)) expect(v).toEqual(before[id]?.inputs[input]);
    }
  }
}

describe('applyParams', () => {
  it('maps width, height and batch_size onto the empty latent node of an SD1.5 txt2img graph', () => {
    const wf = frozen(sd15Txt2img());
    const r = applyParams(wf, { width: 768, height: 640, batch_size: 2 });
    expect(r.changes).toEqual([
      { nodeId: '5', classType: 'EmptyLatentImage', input: 'width', from: 512, to: 768 },
      { nodeId: '5', classType: 'EmptyLatentImage', input: 'height', from: 512, to: 640 },
      { nodeId: '5', classType: 'EmptyLatentImage', input: 'batch_size', from: 1, to: 2 },
    ]);
    expectChangesMatch(wf, r);
    expect(wf['5']?.inputs['width']).toBe(512);
  });

  it('maps steps, cfg, seed and denoise onto KSampler and reports only real changes', () => {
    const wf = frozen(sd15Txt2img());
    const r = applyParams(wf, { steps: 30, cfg: 8, seed: 42, denoise: 0.75 });
    // cfg is already 8: no change is reported for it.
    expect(r.changes).toEqual([
      { nodeId: '3', classType: 'KSampler', input: 'steps', from: 20, to: 30 },
      { nodeId: '3', classType: 'KSampler', input: 'seed', from: 156680208700286, to: 42 },
      { nodeId: '3', classType: 'KSampler', input: 'denoise', from: 1, to: 0.75 },
    ]);
    expectChangesMatch(wf, r);
  });

  it('maps prompt and negative_prompt onto the CLIPTextEncode nodes feeding positive and negative', () => {
    const wf = frozen(sd15Txt2img());
    const r = applyParams(wf, { prompt: 'a red fox in the snow', negative_prompt: 'blurry' });
    expect(r.changes).toEqual([
      {
        nodeId: '6',
        classType: 'CLIPTextEncode',
        input: 'text',
        from: 'beautiful scenery nature glass bottle landscape, , purple galaxy bottle,',
        to: 'a red fox in the snow',
      },
      { nodeId: '7', classType: 'CLIPTextEncode', input: 'text', from: 'text, watermark', to: 'blurry' },
    ]);
  });

  it('maps ckpt_name onto the checkpoint loader', () => {
    const r = applyParams(frozen(sd15Txt2img()), { ckpt_name: 'dreamshaper_8.safetensors' });
    expect(r.changes).toEqual([
      { nodeId: '4', classType: 'CheckpointLoaderSimple', input: 'ckpt_name', from: 'v1-5-pruned-emaonly.ckpt', to: 'dreamshaper_8.safetensors' },
    ]);
  });

  it('sets sampler_name and scheduler on the sampler', () => {
    const r = applyParams(frozen(sd15Txt2img()), { sampler_name: 'dpmpp_2m', scheduler: 'karras' });
    expect(r.changes).toEqual([
      { nodeId: '3', classType: 'KSampler', input: 'sampler_name', from: 'euler', to: 'dpmpp_2m' },
      { nodeId: '3', classType: 'KSampler', input: 'scheduler', from: 'normal', to: 'karras' },
    ]);
  });

  it('on SDXL base+refiner sets noise_seed and steps on both KSamplerAdvanced and keeps the 20/25 split', () => {
    const wf = frozen(sdxlRefiner());
    const r = applyParams(wf, { seed: 7, steps: 30 });
    expect(r.changes).toEqual([
      { nodeId: '10', classType: 'KSamplerAdvanced', input: 'noise_seed', from: 721897303308196, to: 7 },
      { nodeId: '11', classType: 'KSamplerAdvanced', input: 'noise_seed', from: 0, to: 7 },
      { nodeId: '10', classType: 'KSamplerAdvanced', input: 'steps', from: 25, to: 30 },
      { nodeId: '10', classType: 'KSamplerAdvanced', input: 'end_at_step', from: 20, to: 24 },
      { nodeId: '11', classType: 'KSamplerAdvanced', input: 'steps', from: 25, to: 30 },
      { nodeId: '11', classType: 'KSamplerAdvanced', input: 'start_at_step', from: 20, to: 24 },
    ]);
    // The refiner's "to the end" marker is left alone.
    expect(r.workflow['11']?.inputs['end_at_step']).toBe(10000);
    expectChangesMatch(wf, r);
  });

  it('on SDXL base+refiner sets the prompt on the base and the refiner encoders', () => {
    const r = applyParams(frozen(sdxlRefiner()), { prompt: 'a lighthouse', negative_prompt: 'people' });
    expect(r.changes.map((c) => [c.nodeId, c.input, c.to])).toEqual([
      ['6', 'text', 'a lighthouse'],
      ['15', 'text', 'a lighthouse'],
      ['7', 'text', 'people'],
      ['16', 'text', 'people'],
    ]);
  });

  it('on a graph with two samplers sets the param on both and the shared prompt once', () => {
    const wf = frozen(hiresFixTwoSamplers());
    const r = applyParams(wf, { cfg: 6.5, prompt: 'a castle' });
    expect(r.changes).toEqual([
      { nodeId: '3', classType: 'KSampler', input: 'cfg', from: 8, to: 6.5 },
      { nodeId: '11', classType: 'KSampler', input: 'cfg', from: 8, to: 6.5 },
      {
        nodeId: '6',
        classType: 'CLIPTextEncode',
        input: 'text',
        from: 'masterpiece HDR victorian portrait painting of woman, blonde hair, mountain nature, blue sky',
        to: 'a castle',
      },
    ]);
  });

  it('addresses one node input directly with "<nodeId>.<input>"', () => {
    const wf = frozen(hiresFixTwoSamplers());
    const r = applyParams(wf, { '11.denoise': 0.4, '10.scale_by': 2 });
    expect(r.changes).toEqual([
      { nodeId: '11', classType: 'KSampler', input: 'denoise', from: 0.5, to: 0.4 },
      { nodeId: '10', classType: 'LatentUpscaleBy', input: 'scale_by', from: 1.5, to: 2 },
    ]);
  });

  it('follows links from a LoRA graph to the primitive nodes that hold the seed and the prompt', () => {
    const wf = frozen(sd15Lora());
    const r = applyParams(wf, { seed: 99, prompt: 'a lake at dawn', negative_prompt: 'noise' });
    expect(r.changes).toEqual([
      { nodeId: '13', classType: 'PrimitiveInt', input: 'value', from: 1234567890, to: 99 },
      {
        nodeId: '12',
        classType: 'PrimitiveStringMultiline',
        input: 'value',
        from: 'a cozy cabin in a snowy forest, warm light, highly detailed',
        to: 'a lake at dawn',
      },
      { nodeId: '7', classType: 'CLIPTextEncode', input: 'text', from: 'lowres, bad anatomy, blurry', to: 'noise' },
    ]);
    // The links themselves stay links.
    expect(r.workflow['3']?.inputs['seed']).toEqual(['13', 0]);
    expect(r.workflow['6']?.inputs['text']).toEqual(['12', 0]);
  });

  it('on Flux maps seed to RandomNoise, steps to BasicScheduler, prompt through FluxGuidance, unet_name to UNETLoader', () => {
    const wf = frozen(fluxUnet());
    const r = applyParams(wf, { seed: 1, steps: 28, prompt: 'a cat', unet_name: 'flux1-schnell.safetensors', vae_name: 'ae2.safetensors' });
    expect(r.changes).toEqual([
      { nodeId: '25', classType: 'RandomNoise', input: 'noise_seed', from: 219670278747233, to: 1 },
      { nodeId: '17', classType: 'BasicScheduler', input: 'steps', from: 20, to: 28 },
      { nodeId: '6', classType: 'CLIPTextEncode', input: 'text', from: 'a tiny astronaut hatching from an egg on the moon', to: 'a cat' },
      { nodeId: '12', classType: 'UNETLoader', input: 'unet_name', from: 'flux1-dev.safetensors', to: 'flux1-schnell.safetensors' },
      { nodeId: '10', classType: 'VAELoader', input: 'vae_name', from: 'ae.safetensors', to: 'ae2.safetensors' },
    ]);
  });

  it('skips undefined values', () => {
    expect(applyParams(frozen(sd15Txt2img()), { width: undefined, seed: 1 }).changes).toHaveLength(1);
  });

  it('rejects a param no node takes with PARAM_NOT_APPLICABLE naming the param', () => {
    const neg = patchError(() => applyParams(frozen(fluxUnet()), { negative_prompt: 'x' }));
    expect(neg.code).toBe('PARAM_NOT_APPLICABLE');
    expect(neg.param).toBe('negative_prompt');
    expect(neg.message).toContain('"negative_prompt"');
    const cfg = patchError(() => applyParams(frozen(fluxUnet()), { cfg: 3 }));
    expect(cfg.code).toBe('PARAM_NOT_APPLICABLE');
    expect(cfg.param).toBe('cfg');
    expect(patchError(() => applyParams(frozen(sd15Txt2img()), { unet_name: 'a.safetensors' })).param).toBe('unet_name');
    expect(patchError(() => applyParams(frozen(sd15Txt2img()), { '42.seed': 1 })).code).toBe('PARAM_NOT_APPLICABLE');
  });

  it('rejects a value of the wrong type naming the param and the expected type', () => {
    const cases: Array<[string, unknown, string]> = [
      ['width', '768', 'a positive integer'],
      ['height', 0, 'a positive integer'],
      ['batch_size', 1.5, 'a positive integer'],
      ['steps', -1, 'a positive integer'],
      ['cfg', Number.NaN, 'a finite number >= 0'],
      ['seed', -5, 'an integer >= 0'],
      ['denoise', 1.5, 'a number between 0 and 1'],
      ['ckpt_name', '', 'a non-empty string (a model file name)'],
      ['prompt', 42, 'a string'],
      ['negative_prompt', null, 'a string'],
      ['sampler_name', 3, 'a non-empty string'],
    ];
    for (const [param, value, expected] of cases) {
      const e = patchError(() => applyParams(frozen(sd15Txt2img()), { [param]: value }));
      expect(e.code, param).toBe('PARAM_INVALID_TYPE');
      expect(e.param).toBe(param);
      expect(e.expected).toBe(expected);
      expect(e.message).toContain(`"${param}" must be ${expected}`);
    }
    const addressed = patchError(() => applyParams(frozen(sd15Txt2img()), { '3.steps': 'many' }));
    expect(addressed).toMatchObject({ code: 'PARAM_INVALID_TYPE', param: '3.steps', expected: 'a number' });
    expect(patchError(() => applyParams(frozen(sd15Txt2img()), { '3.steps': [1, 2] })).code).toBe('PARAM_INVALID_TYPE');
  });

  it('rejects an unknown param name with UNKNOWN_PARAM', () => {
    const e = patchError(() => applyParams(frozen(sd15Txt2img()), { guidance_scale: 7 }));
    expect(e.code).toBe('UNKNOWN_PARAM');
    expect(e.message).toContain('"guidance_scale"');
    expect(e).toBeInstanceOf(PatchError);
    expect(e).toBeInstanceOf(Error);
  });

  it('treats names of Object.prototype (valueOf, constructor, toString) as unknown params, not as specs (found by the property test)', () => {
    for (const name of ['valueOf', 'constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      expect(patchError(() => applyParams(frozen(sd15Txt2img()), JSON.parse(`{"${name}": 0}`) as Record<string, number>)).code).toBe('UNKNOWN_PARAM');
    }
  });
});

describe('useTiledVae', () => {
  it('swaps VAEDecode for VAEDecodeTiled with ComfyUI default tiling and keeps the links', () => {
    const wf = frozen(sd15Txt2img());
    const r = useTiledVae(wf);
    expect(r?.changes).toEqual([
      { nodeId: '8', classType: 'VAEDecode', input: 'class_type', from: 'VAEDecode', to: 'VAEDecodeTiled' },
      { nodeId: '8', classType: 'VAEDecodeTiled', input: 'tile_size', from: null, to: 512 },
      { nodeId: '8', classType: 'VAEDecodeTiled', input: 'overlap', from: null, to: 64 },
      { nodeId: '8', classType: 'VAEDecodeTiled', input: 'temporal_size', from: null, to: 64 },
      { nodeId: '8', classType: 'VAEDecodeTiled', input: 'temporal_overlap', from: null, to: 8 },
    ]);
    expect(r?.workflow['8']).toEqual({
      class_type: 'VAEDecodeTiled',
      inputs: { samples: ['3', 0], vae: ['4', 2], tile_size: 512, overlap: 64, temporal_size: 64, temporal_overlap: 8 },
      _meta: { title: 'VAE Decode' },
    });
    expect(wf['8']?.class_type).toBe('VAEDecode');
  });

  it('swaps both decoders of a two-sampler graph, then returns null when none is left', () => {
    const r = useTiledVae(frozen(hiresFixTwoSamplers()));
    expect(findNodes(r?.workflow ?? {}, ['VAEDecodeTiled']).map(([id]) => id)).toEqual(['8', '12']);
    expect(useTiledVae(deepFreeze(r?.workflow ?? {}))).toBeNull();
  });
});

describe('reduceBatch', () => {
  it('halves the batch (floor) down to 1, then returns null', () => {
    const seen: number[] = [];
    let wf = frozen(applyParams(sd15Txt2img(), { batch_size: 7 }).workflow);
    for (;;) {
      const r = reduceBatch(wf);
      if (!r) break;
      expect(r.changes).toHaveLength(1);
      seen.push(r.changes[0]?.to as number);
      wf = frozen(r.workflow);
    }
    expect(seen).toEqual([3, 1]);
  });

  it('returns null at batch 1', () => {
    expect(reduceBatch(frozen(sd15Txt2img()))).toBeNull();
  });
});

describe('reduceResolution', () => {
  it('walks 1024x1024 down by 0.8 on multiples of 8 to the 512 floor', () => {
    const original = frozen(sdxlRefiner());
    let wf = original;
    const sizes: string[] = [];
    for (let r = reduceResolution(wf, original); r; r = reduceResolution(wf, original)) {
      expectChangesMatch(wf, r);
      wf = frozen(r.workflow);
      sizes.push(`${String(wf['5']?.inputs['width'])}x${String(wf['5']?.inputs['height'])}`);
    }
    expect(sizes).toEqual(['816x816', '656x656', '528x528', '512x512']);
  });

  it('keeps the aspect ratio and stops when the short side reaches the floor', () => {
    const original = frozen(applyParams(sd15Txt2img(), { width: 1216, height: 832 }).workflow);
    const r1 = reduceResolution(original, original);
    expect(r1?.changes).toEqual([
      { nodeId: '5', classType: 'EmptyLatentImage', input: 'width', from: 1216, to: 976 },
      { nodeId: '5', classType: 'EmptyLatentImage', input: 'height', from: 832, to: 664 },
    ]);
    const r2 = reduceResolution(frozen(r1?.workflow ?? {}), original);
    expect(r2?.changes.map((c) => c.to)).toEqual([784, 528]);
    const r3 = reduceResolution(frozen(r2?.workflow ?? {}), original);
    // 528 can only shrink to 512 (factor 0.97), so the width follows with the same factor.
    expect(r3?.changes.map((c) => c.to)).toEqual([760, 512]);
    expect(reduceResolution(frozen(r3?.workflow ?? {}), original)).toBeNull();
  });

  it('never goes below an original that was already smaller than 512', () => {
    const original = frozen(applyParams(sd15Txt2img(), { width: 448, height: 640 }).workflow);
    const r = reduceResolution(original, original);
    expect(r).toBeNull();
    const small = frozen(applyParams(sd15Txt2img(), { width: 384, height: 384 }).workflow);
    expect(reduceResolution(small, small)).toBeNull();
  });
});

describe('reduceSteps', () => {
  it('reduces by 20% (rounded) to the floor of 20', () => {
    const original = frozen(applyParams(sd15Txt2img(), { steps: 40 }).workflow);
    let wf = original;
    const steps: number[] = [];
    for (let r = reduceSteps(wf, original); r; r = reduceSteps(wf, original)) {
      wf = frozen(r.workflow);
      steps.push(wf['3']?.inputs['steps'] as number);
    }
    expect(steps).toEqual([32, 26, 21, 20]);
  });

  it('leaves a sampler whose original was below 20 alone and reduces the other', () => {
    const wf = frozen(hiresFixTwoSamplers());
    const r = reduceSteps(wf, wf);
    expect(r?.changes).toEqual([{ nodeId: '3', classType: 'KSampler', input: 'steps', from: 30, to: 24 }]);
  });

  it('rescales the KSamplerAdvanced windows of an SDXL refiner graph', () => {
    const wf = frozen(sdxlRefiner());
    const r = reduceSteps(wf, wf);
    expect(r?.changes).toEqual([
      { nodeId: '10', classType: 'KSamplerAdvanced', input: 'steps', from: 25, to: 20 },
      { nodeId: '10', classType: 'KSamplerAdvanced', input: 'end_at_step', from: 20, to: 16 },
      { nodeId: '11', classType: 'KSamplerAdvanced', input: 'steps', from: 25, to: 20 },
      { nodeId: '11', classType: 'KSamplerAdvanced', input: 'start_at_step', from: 20, to: 16 },
    ]);
    expect(reduceSteps(frozen(r?.workflow ?? {}), wf)).toBeNull();
  });
});

describe('switchModel', () => {
  it('switches only the loader that loads the missing model', () => {
    const wf = frozen(sdxlRefiner());
    const r = switchModel(wf, 'sd_xl_base_1.0.safetensors', { from: ['sd_xl_refiner_1.0.safetensors'] });
    expect(r?.changes).toEqual([
      { nodeId: '12', classType: 'CheckpointLoaderSimple', input: 'ckpt_name', from: 'sd_xl_refiner_1.0.safetensors', to: 'sd_xl_base_1.0.safetensors' },
    ]);
  });

  it('switches the UNet loader when the folder says diffusion_models', () => {
    const r = switchModel(frozen(fluxUnet()), 'flux1-schnell.safetensors', { folder: 'diffusion_models' });
    expect(r?.changes).toEqual([
      { nodeId: '12', classType: 'UNETLoader', input: 'unet_name', from: 'flux1-dev.safetensors', to: 'flux1-schnell.safetensors' },
    ]);
    expect(switchModel(frozen(fluxUnet()), 'x.safetensors')).toBeNull();
  });

  it('matches Windows-style names and returns null when nothing loads the model', () => {
    const wf = frozen(applyParams(sd15Txt2img(), { ckpt_name: 'sd15\\dreamshaper.safetensors' }).workflow);
    expect(switchModel(wf, 'v1-5-pruned-emaonly.ckpt', { from: ['sd15/dreamshaper.safetensors'] })?.changes).toHaveLength(1);
    expect(switchModel(wf, 'v1-5-pruned-emaonly.ckpt', { from: ['other.safetensors'] })).toBeNull();
  });
});

describe('scaleQuality', () => {
  it('takes the batch first', () => {
    const r = scaleQuality(frozen(sd15Lora()), 0.5);
    expect(r.changes).toEqual([{ nodeId: '5', classType: 'EmptyLatentImage', input: 'batch_size', from: 4, to: 2 }]);
  });

  it('at batch 1 scales resolution and steps each by the factor', () => {
    const wf = frozen(applyParams(sd15Txt2img(), { width: 1024, height: 1024, steps: 30 }).workflow);
    const r = scaleQuality(wf, 0.8);
    expect(r.changes).toEqual([
      { nodeId: '5', classType: 'EmptyLatentImage', input: 'width', from: 1024, to: 816 },
      { nodeId: '5', classType: 'EmptyLatentImage', input: 'height', from: 1024, to: 816 },
      { nodeId: '3', classType: 'KSampler', input: 'steps', from: 30, to: 24 },
    ]);
  });

  it('changes nothing at factor 1 and rejects factors outside (0, 1]', () => {
    expect(scaleQuality(frozen(sd15Lora()), 1).changes).toEqual([]);
    for (const f of [0, -1, 1.5, Number.NaN]) expect(patchError(() => scaleQuality(frozen(sd15Lora()), f)).code).toBe('INVALID_ARGUMENT');
  });
});

describe('findNodes', () => {
  it('returns matching nodes in numeric id order', () => {
    expect(findNodes(frozen(sdxlRefiner()), ['CLIPTextEncode', 'KSamplerAdvanced']).map(([id]) => id)).toEqual(['6', '7', '10', '11', '15', '16']);
  });
});

describe('fixtures', () => {
  it('every fixture loads as a fresh copy', () => {
    for (const [name, load] of Object.entries(WORKFLOW_FIXTURES)) {
      const a = load();
      const b = load();
      expect(a, name).toEqual(b);
      expect(a).not.toBe(b);
      expect(Object.keys(a).length).toBeGreaterThan(5);
    }
  });
});
