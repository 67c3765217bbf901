import { describe, expect, it } from 'vitest';
import { HandlerCrash, validatePrompt, type ValidationEnv } from '../comfy/validate.js';
import { NODE_SPECS, validationEnv, type CatalogContext } from './catalog.js';

const ctx: CatalogContext = {
  modelList: (folder) => (folder === 'checkpoints' ? ['a.safetensors'] : folder === 'loras' ? Array.from({ length: 25 }, (_, i) => `l${i}.safetensors`) : []),
  inputFiles: () => ['example.png'],
  inputFileHash: () => 'h',
};
const env: ValidationEnv = validationEnv((c) => NODE_SPECS.get(c), ctx);

function sd(overrides: Record<string, unknown> = {}): Record<string, { class_type: string; inputs: Record<string, unknown> }> {
  return {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'a.safetensors' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: 512, height: 512, batch_size: 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: 'x', clip: ['4', 1] } },
    '3': {
      class_type: 'KSampler',
      inputs: { seed: 1, steps: 20, cfg: 7, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['6', 0], latent_image: ['5', 0], ...overrides },
    },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { images: ['8', 0], filename_prefix: 'x' } },
  };
}

describe('validatePrompt', () => {
  it('accepts the default text-to-image graph and converts widget values in place', () => {
    const p = sd({ steps: '30', cfg: '7.5' });
    const r = validatePrompt(p, null, env);
    expect(r).toEqual({ ok: true, outputs: ['9'], nodeErrors: {} });
    expect(p['3']?.inputs.steps).toBe(30);
    expect(p['3']?.inputs.cfg).toBe(7.5);
  });

  it('words FLOAT range errors with Python floats', () => {
    const r = validatePrompt(sd({ cfg: -1 }), null, env);
    expect(r.ok).toBe(false);
    expect(r.nodeErrors['3']?.errors[0]).toMatchObject({ type: 'value_smaller_than_min', message: 'Value -1.0 smaller than min of 0.0', details: 'cfg' });
  });

  it('hides combo lists longer than 20 (input_config null)', () => {
    const p: ReturnType<typeof sd> = {
      ...sd(),
      '10': { class_type: 'LoraLoader', inputs: { model: ['4', 0], clip: ['4', 1], lora_name: 'nope.safetensors', strength_model: 1, strength_clip: 1 } },
    };
    (p['3'] as { inputs: Record<string, unknown> }).inputs.model = ['10', 0];
    const r = validatePrompt(p, null, env);
    expect(r.nodeErrors['10']?.errors[0]).toMatchObject({
      type: 'value_not_in_list',
      details: "lora_name: 'nope.safetensors' not in (list of length 25)",
      extra_info: { input_config: null, received_value: 'nope.safetensors' },
    });
    expect(r.nodeErrors['10']?.dependent_outputs).toEqual(['9']);
  });

  it('accepts a prompt with one bad output, reporting it in node_errors (partial acceptance)', () => {
    const p = { ...sd(), '20': { class_type: 'EmptyImage', inputs: { width: 0, height: 8, batch_size: 1, color: 0 } }, '21': { class_type: 'SaveImage', inputs: { images: ['20', 0], filename_prefix: 'b' } } };
    const r = validatePrompt(p, null, env);
    expect(r.ok).toBe(true);
    expect(r.ok && r.outputs).toEqual(['9']);
    expect(Object.keys(r.nodeErrors)).toEqual(['20']);
  });

  it('appends every failing output to the dependent_outputs of every node that failed so far', () => {
    const p = {
      '1': { class_type: 'EmptyImage', inputs: { width: 0, height: 8, batch_size: 1, color: 0 } },
      '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'a' } },
      '3': { class_type: 'EmptyImage', inputs: { width: 8, height: 0, batch_size: 1, color: 0 } },
      '4': { class_type: 'SaveImage', inputs: { images: ['3', 0], filename_prefix: 'b' } },
    };
    const r = validatePrompt(p, null, env);
    expect(r.ok).toBe(false);
    expect(r.nodeErrors['1']?.dependent_outputs).toEqual(['2', '4']);
    expect(r.nodeErrors['3']?.dependent_outputs).toEqual(['4']);
  });

  it('reports bad links, custom validation and cycles like ComfyUI', () => {
    const bad = validatePrompt({ '1': { class_type: 'SaveImage', inputs: { images: ['2'], filename_prefix: 'x' } } }, null, env);
    expect(bad.nodeErrors['1']?.errors[0]).toMatchObject({ type: 'bad_linked_input', details: 'images' });

    const load = validatePrompt(
      { '1': { class_type: 'LoadImage', inputs: { image: 'missing.png' } }, '2': { class_type: 'PreviewImage', inputs: { images: ['1', 0] } } },
      null,
      env,
    );
    expect(load.nodeErrors['1']?.errors[0]).toEqual({
      type: 'custom_validation_failed',
      message: 'Custom validation failed for node',
      details: 'image - Invalid image file: missing.png',
      extra_info: { input_name: 'image' },
    });

    const cycle = validatePrompt(
      {
        '1': { class_type: 'ImageInvert', inputs: { image: ['2', 0] } },
        '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
        '3': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'x' } },
      },
      null,
      env,
    );
    // The RecursionError reasons are overwritten while the recursion unwinds, as in ComfyUI:
    // a 400 that names no node.
    expect(cycle).toEqual({
      ok: false,
      error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} },
      nodeErrors: {},
    });
  });

  it('crashes (HTTP 500) where ComfyUI\'s handler raises, and answers prompt_no_outputs for empty containers', () => {
    expect(() => validatePrompt('EmptyImage', null, env)).toThrow(HandlerCrash);
    expect(() => validatePrompt([{}], null, env)).toThrow(HandlerCrash);
    expect(() => validatePrompt(5, null, env)).toThrow(HandlerCrash);
    expect(validatePrompt([], null, env)).toMatchObject({ ok: false, error: { type: 'prompt_no_outputs' } });
    expect(validatePrompt({ '1': { class_type: 'SaveImage', inputs: {} } }, ['2'], env)).toMatchObject({ ok: false, error: { type: 'prompt_no_outputs' } });
  });
});
