import { describe, expect, it } from 'vitest';
import { classify } from './classify.js';
import { closestNames } from './closest.js';

/** A ComfyUI 400 validation body with one value_not_in_list error, as ComfyUI 0.3.64 sends it. */
function notInList(classType: string, input: string, received: string, allowed: string[]) {
  const shown = allowed.length > 20 ? `(list of length ${allowed.length})` : `[${allowed.map((a) => `'${a}'`).join(', ')}]`;
  return {
    kind: 'validation' as const,
    body: {
      error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} },
      node_errors: {
        '3': {
          errors: [{ type: 'value_not_in_list', message: 'Value not in list', details: `${input}: '${received}' not in ${shown}`, extra_info: { input_name: input, input_config: [allowed, {}], received_value: received } }],
          dependent_outputs: ['9'],
          class_type: classType,
        },
      },
    },
  };
}

const SAMPLERS = ['euler', 'euler_cfg_pp', 'euler_ancestral', 'euler_ancestral_cfg_pp', 'heun', 'heunpp2', 'dpm_2', 'dpm_2_ancestral', 'lms', 'dpm_fast', 'dpm_adaptive', 'dpmpp_2s_ancestral', 'dpmpp_sde', 'dpmpp_2m', 'dpmpp_2m_sde', 'dpmpp_3m_sde', 'ddpm', 'lcm', 'ipndm', 'deis', 'res_multistep', 'uni_pc', 'ddim'];

describe('rendered messages name what was wrong and what is allowed', () => {
  it('a value not in the list names the value and the closest allowed ones, even when ComfyUI only said "(list of length N)"', () => {
    const c = classify(notInList('KSampler', 'sampler_name', 'euler_typo', SAMPLERS));
    expect(c.code).toBe('COMFYUI_INVALID_PARAMETERS');
    expect(c.message).toContain('node 3 (KSampler) input sampler_name: "euler_typo" is not allowed; closest allowed: euler');
    expect(c.message).toContain(`(${SAMPLERS.length} in all)`);
  });

  it('a list ComfyUI left out (more than 20 values) is counted', () => {
    const body = notInList('KSampler', 'sampler_name', 'euler_typo', SAMPLERS);
    const err = body.body.node_errors['3'].errors[0]!;
    (err.extra_info as { input_config: unknown }).input_config = null;
    const c = classify(body);
    expect(c.message).toContain(`"euler_typo" is not allowed (ComfyUI allows ${SAMPLERS.length} values here`);
  });

  it('a short list of allowed values is given whole', () => {
    const c = classify(notInList('KSampler', 'scheduler', 'fast', ['normal', 'karras', 'exponential']));
    expect(c.message).toContain('"fast" is not allowed; allowed: normal, karras, exponential');
  });

  it('a missing checkpoint names the closest models the server has, in the message and the hint', () => {
    const c = classify(notInList('CheckpointLoaderSimple', 'ckpt_name', 'dreamshaper_8.safetensors', ['v1-5-pruned-emaonly.ckpt', 'dreamshaper_7.safetensors', 'sd_xl_base_1.0.safetensors']));
    expect(c.code).toBe('COMFYUI_MODEL_MISSING');
    expect(c.message).toContain('dreamshaper_8.safetensors');
    expect(c.message).toMatch(/Closest the server has: dreamshaper_7\.safetensors, /);
    expect(c.hint).toContain('closest: dreamshaper_7.safetensors');
  });

  it('says plainly when the server has nothing installed for the input', () => {
    const c = classify(notInList('LoraLoader', 'sampler_name', 'x', []));
    expect(c.message).toMatch(/allows no value here|not on the server/);
  });
});

describe('closestNames', () => {
  it('ranks by edit distance ignoring folder and extension, ties in list order', () => {
    expect(closestNames('dreamshaper_8.safetensors', ['sd15/v1-5.ckpt', 'dreamshaper_7.ckpt', 'dream.safetensors'], 2)).toEqual(['dreamshaper_7.ckpt', 'dream.safetensors']);
    expect(closestNames('a', [], 3)).toEqual([]);
  });
});
