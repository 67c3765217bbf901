/**
 * The demo's sample jobs: SD1.5 / SDXL-like text-to-image workflows in ComfyUI API format, chosen
 * so a newcomer sees each kind of outcome: plain successes, out-of-memory recovery on the small
 * GPU, a missing model that falls back, and one permanent error that fails fast.
 */
import type { ApiWorkflow } from '../../comfy/types.js';
import type { JobOptions, JobParams } from '../../jobs/types.js';

export interface SampleJob {
  name: string;
  /** What the newcomer should expect to see. */
  expect: string;
  workflow: ApiWorkflow;
  params?: JobParams;
  options?: JobOptions;
}

interface Txt2Img {
  ckpt: string;
  width: number;
  height: number;
  batch: number;
  steps: number;
  seed: number;
  prompt: string;
  sampler?: string;
}

/** The stock text-to-image graph (ComfyUI's default workflow, in API format). */
export function txt2img(o: Txt2Img): ApiWorkflow {
  return {
    '3': {
      class_type: 'KSampler',
      inputs: { seed: o.seed, steps: o.steps, cfg: 7, sampler_name: o.sampler ?? 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] },
    },
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: o.ckpt } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: o.width, height: o.height, batch_size: o.batch } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: o.prompt, clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry, low quality, watermark', clip: ['4', 1] } },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'demo', images: ['8', 0] } },
  };
}

const SD15 = 'v1-5-pruned-emaonly.ckpt';
const SDXL = 'sd_xl_base_1.0.safetensors';

/** The rotation of sample jobs; `i` varies the seed so results are not served from cache. */
export function sampleJob(i: number): SampleJob {
  const seed = 1000 + i;
  const samples: SampleJob[] = [
    {
      name: 'sd15-portrait',
      expect: 'completes (512x768, fits any GPU)',
      workflow: txt2img({ ckpt: SD15, width: 512, height: 768, batch: 1, steps: 20, seed, prompt: 'portrait of a lighthouse keeper, oil painting' }),
    },
    {
      name: 'sdxl-landscape',
      expect: 'completes; SDXL is predicted not to fit the 6 GiB GPU, so it is routed to the 24 GiB one from the start',
      workflow: txt2img({ ckpt: SDXL, width: 1024, height: 1024, batch: 1, steps: 25, seed, prompt: 'misty fjord at dawn, wide angle' }),
    },
    {
      name: 'sdxl-batch8',
      expect: 'needs the 24 GiB GPU: routed there from the start, every image kept',
      workflow: txt2img({ ckpt: SDXL, width: 1024, height: 1024, batch: 8, steps: 20, seed, prompt: 'product shots of a ceramic teapot' }),
      options: { maxRetries: 8 },
    },
    {
      name: 'sd15-missing-model',
      expect: 'the checkpoint is on no server: falls back to SD1.5',
      workflow: txt2img({ ckpt: 'dreamshaper_8.safetensors', width: 512, height: 512, batch: 1, steps: 20, seed, prompt: 'a dragon made of paper' }),
      options: { fallbackModels: [SD15] },
    },
    {
      name: 'sd15-batch8-large',
      expect: 'too big for the 6 GiB GPU: routed to the 24 GiB one from the start, every image kept',
      workflow: txt2img({ ckpt: SD15, width: 1024, height: 1024, batch: 8, steps: 15, seed, prompt: 'isometric city blocks, pastel' }),
      options: { maxRetries: 8 },
    },
    {
      name: 'bad-sampler',
      expect: 'permanent error: fails at once with COMFYUI_INVALID_PARAMETERS, no retries',
      workflow: txt2img({ ckpt: SD15, width: 512, height: 512, batch: 1, steps: 20, seed, prompt: 'this one cannot run', sampler: 'euler_typo' }),
    },
  ];
  return samples[i % samples.length]!;
}
