/**
 * What each node does when it runs. Tensors are symbolic (shape, colour, model family), which is
 * enough to reproduce ComfyUI's observable behaviour: which node fails and how, how much memory a
 * step needs, how many progress steps it reports, and the files it writes.
 */
import { FAMILIES, GiB, LORA_BYTES, TEXT_ENCODE_BYTES, familyOf, type ModelFamily, type ModelPart } from './memory.js';
import { pngInfo, solidPng } from './png.js';
import type { FileRef } from './storage.js';

export interface ImageValue {
  t: 'IMAGE';
  batch: number;
  height: number;
  width: number;
  channels: number;
  rgb: [number, number, number];
}
export interface MaskValue {
  t: 'MASK';
  batch: number;
  height: number;
  width: number;
}
export interface LatentValue {
  t: 'LATENT';
  batch: number;
  /** Pixel size the latent decodes to. */
  height: number;
  width: number;
  channels: number;
  seed?: number;
}
export interface ModelValue {
  t: 'MODEL' | 'CLIP' | 'VAE';
  family: ModelFamily;
  parts: ModelPart[];
}
export interface ConditioningValue {
  t: 'CONDITIONING';
  family: ModelFamily;
}
export type SimValue = ImageValue | MaskValue | LatentValue | ModelValue | ConditioningValue;

/** A Python exception raised inside a node's function. */
export class NodeException extends Error {
  constructor(
    readonly pyType: string,
    message: string,
    /** Traceback frames below ComfyUI's own execution frames. */
    readonly frames: string[] = [],
  ) {
    super(message);
    this.name = 'NodeException';
  }
}

/** The services a running node uses (implemented by the executor). */
export interface NodeRun {
  readonly nodeId: string;
  readonly classType: string;
  /** Simulated work: `steps` times the configured step duration; abortable. */
  work(steps: number): Promise<void>;
  /** `ProgressBar.update_absolute`: checks the interrupt flag, then reports progress (and a preview). */
  progress(value: number, max: number, preview?: Buffer): Promise<void>;
  /** Loads model parts on the device and allocates working memory; throws on OOM. */
  gpu(parts: readonly ModelPart[], activationBytes: number): void;
  /** Allocates a CPU tensor; throws on OOM. */
  cpu(bytes: number): void;
  modelExists(folder: string, name: string): boolean;
  saveImages(type: 'output' | 'temp', prefix: string, image: ImageValue): Promise<FileRef[]>;
  readInput(name: string): Buffer | undefined;
  /** Whether sampler previews are enabled (`--preview-method`). */
  readonly previews: boolean;
}

export interface NodeResult {
  outputs: SimValue[];
  /** UI output (`images`...), when the node returns one. */
  ui?: Record<string, unknown>;
}

export type NodeBehavior = (run: NodeRun, inputs: Record<string, unknown>) => Promise<NodeResult>;

const megapixels = (v: { width: number; height: number }) => (v.width * v.height) / 2 ** 20;

function modelNotFound(folder: string, name: string): NodeException {
  return new NodeException('FileNotFoundError', `Model in folder '${folder}' with filename '${name}' not found.`, [
    `  File "ComfyUI/folder_paths.py", line 293, in get_full_path_or_raise\n    raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")\n`,
  ]);
}

function requireModel(run: NodeRun, folder: string, name: unknown): string {
  const file = String(name);
  if (!run.modelExists(folder, file)) throw modelNotFound(folder, file);
  return file;
}

function asImage(v: unknown): ImageValue {
  return v as ImageValue;
}

function seedColour(seed: number): [number, number, number] {
  const s = Math.abs(Math.trunc(seed)) % 2147483647;
  return [(s * 37 + 40) % 256, (s * 91 + 90) % 256, (s * 151 + 140) % 256];
}

async function sample(run: NodeRun, model: ModelValue, latent: LatentValue, seed: number, steps: number): Promise<NodeResult> {
  const profile = FAMILIES[model.family];
  run.gpu(model.parts, latent.batch * megapixels(latent) * profile.sample);
  const preview = run.previews ? solidPng(Math.max(8, latent.width / 16), Math.max(8, latent.height / 16), seedColour(seed)) : undefined;
  for (let i = 0; i < steps; i++) {
    await run.work(1);
    await run.progress(i + 1, steps, preview);
  }
  return { outputs: [{ ...latent, seed }] };
}

async function saveImages(run: NodeRun, type: 'output' | 'temp', prefix: string, images: ImageValue): Promise<NodeResult> {
  await run.work(1);
  const refs = await run.saveImages(type, prefix, images);
  return { outputs: [], ui: { images: refs } };
}

/** Node behaviours by class_type. */
export const BEHAVIORS: Readonly<Record<string, NodeBehavior>> = {
  async CheckpointLoaderSimple(run, i) {
    const file = requireModel(run, 'checkpoints', i.ckpt_name);
    await run.work(1);
    const family = familyOf(file);
    const p = FAMILIES[family];
    const key = `checkpoints/${file}`;
    return {
      outputs: [
        { t: 'MODEL', family, parts: [{ key: `${key}#unet`, bytes: p.unet }] },
        { t: 'CLIP', family, parts: [{ key: `${key}#clip`, bytes: p.clip }] },
        { t: 'VAE', family, parts: [{ key: `${key}#vae`, bytes: p.vae }] },
      ],
    };
  },
  async UNETLoader(run, i) {
    const file = requireModel(run, 'diffusion_models', i.unet_name);
    await run.work(1);
    const family = familyOf(file.includes('xl') || file.includes('sd3') ? file : `flux-${file}`);
    const bytes = FAMILIES[family].unet * (String(i.weight_dtype).startsWith('fp8') ? 0.5 : 1);
    return { outputs: [{ t: 'MODEL', family, parts: [{ key: `diffusion_models/${file}#${String(i.weight_dtype)}`, bytes }] }] };
  },
  async VAELoader(run, i) {
    const name = String(i.vae_name);
    if (['pixel_space', 'taesd', 'taesdxl', 'taesd3', 'taef1'].includes(name)) {
      return { outputs: [{ t: 'VAE', family: name.includes('xl') ? 'sdxl' : 'sd15', parts: [{ key: `vae/${name}`, bytes: Math.round(0.01 * GiB) }] }] };
    }
    const file = requireModel(run, 'vae', name);
    await run.work(1);
    const family = familyOf(file);
    return { outputs: [{ t: 'VAE', family, parts: [{ key: `vae/${file}`, bytes: FAMILIES[family].vae }] }] };
  },
  async LoraLoader(run, i) {
    const model = i.model as ModelValue;
    const clip = i.clip as ModelValue;
    if (i.strength_model === 0 && i.strength_clip === 0) return { outputs: [model, clip] };
    const file = requireModel(run, 'loras', i.lora_name);
    await run.work(1);
    return {
      outputs: [
        { ...model, parts: [...model.parts, { key: `loras/${file}#model`, bytes: LORA_BYTES }] },
        { ...clip, parts: [...clip.parts, { key: `loras/${file}#clip`, bytes: Math.round(LORA_BYTES / 4) }] },
      ],
    };
  },
  async CLIPTextEncode(run, i) {
    const clip = i.clip as ModelValue | undefined;
    if (!clip) {
      throw new NodeException(
        'RuntimeError',
        'ERROR: clip input is invalid: None\n\nIf the clip is from a checkpoint loader node your checkpoint does not contain a valid clip or text encoder model.',
      );
    }
    run.gpu(clip.parts, TEXT_ENCODE_BYTES);
    await run.work(1);
    return { outputs: [{ t: 'CONDITIONING', family: clip.family }] };
  },
  async EmptyLatentImage(run, i) {
    const w = Number(i.width);
    const h = Number(i.height);
    const b = Number(i.batch_size);
    run.cpu(b * 4 * Math.floor(h / 8) * Math.floor(w / 8) * 4);
    await run.work(1);
    return { outputs: [{ t: 'LATENT', batch: b, width: Math.floor(w / 8) * 8, height: Math.floor(h / 8) * 8, channels: 4 }] };
  },
  async EmptySD3LatentImage(run, i) {
    const w = Number(i.width);
    const h = Number(i.height);
    const b = Number(i.batch_size);
    run.cpu(b * 16 * Math.floor(h / 8) * Math.floor(w / 8) * 4);
    await run.work(1);
    return { outputs: [{ t: 'LATENT', batch: b, width: Math.floor(w / 8) * 8, height: Math.floor(h / 8) * 8, channels: 16 }] };
  },
  async KSampler(run, i) {
    return sample(run, i.model as ModelValue, i.latent_image as LatentValue, Number(i.seed), Number(i.steps));
  },
  async KSamplerAdvanced(run, i) {
    const steps = Number(i.steps);
    const last = Math.min(Number(i.end_at_step), steps);
    const first = Number(i.start_at_step);
    return sample(run, i.model as ModelValue, i.latent_image as LatentValue, Number(i.noise_seed), Math.max(0, last - first));
  },
  async VAEDecode(run, i) {
    const vae = i.vae as ModelValue;
    const latent = i.samples as LatentValue;
    run.gpu(vae.parts, latent.batch * megapixels(latent) * FAMILIES[vae.family].decode);
    await run.work(1);
    return {
      outputs: [{ t: 'IMAGE', batch: latent.batch, height: latent.height, width: latent.width, channels: 3, rgb: seedColour(latent.seed ?? 0) }],
    };
  },
  async VAEDecodeTiled(run, i) {
    const vae = i.vae as ModelValue;
    const latent = i.samples as LatentValue;
    const tile = Math.max(64, Number(i.tile_size));
    run.gpu(vae.parts, FAMILIES[vae.family].tiled);
    const tiles = Math.max(1, latent.batch * Math.ceil(latent.width / tile) * Math.ceil(latent.height / tile));
    for (let t = 0; t < tiles; t++) {
      await run.work(1);
      await run.progress(t + 1, tiles);
    }
    return {
      outputs: [{ t: 'IMAGE', batch: latent.batch, height: latent.height, width: latent.width, channels: 3, rgb: seedColour(latent.seed ?? 0) }],
    };
  },
  async SaveImage(run, i) {
    return saveImages(run, 'output', String(i.filename_prefix), asImage(i.images));
  },
  async PreviewImage(run, i) {
    return saveImages(run, 'temp', `ComfyUI_temp_${Math.random().toString(36).slice(2, 7)}`, asImage(i.images));
  },
  async LoadImage(run, i) {
    const name = String(i.image);
    const data = run.readInput(name);
    if (!data) {
      throw new NodeException('FileNotFoundError', `[Errno 2] No such file or directory: 'ComfyUI/input/${name}'`);
    }
    const info = pngInfo(data) ?? { width: 512, height: 512, alpha: false };
    run.cpu(info.width * info.height * 3 * 4);
    await run.work(1);
    return {
      outputs: [
        { t: 'IMAGE', batch: 1, height: info.height, width: info.width, channels: 3, rgb: [120, 160, 200] },
        info.alpha ? { t: 'MASK', batch: 1, height: info.height, width: info.width } : { t: 'MASK', batch: 1, height: 64, width: 64 },
      ],
    };
  },
  async ImageScale(run, i) {
    const img = asImage(i.image);
    let width = Number(i.width);
    let height = Number(i.height);
    if (width === 0 && height === 0) return { outputs: [img] };
    if (width === 0) width = Math.max(1, Math.round((img.width * height) / img.height));
    else if (height === 0) height = Math.max(1, Math.round((img.height * width) / img.width));
    run.cpu(img.batch * width * height * img.channels * 4);
    await run.work(1);
    return { outputs: [{ ...img, width, height }] };
  },
  async ImageInvert(run, i) {
    const img = asImage(i.image);
    run.cpu(img.batch * img.width * img.height * img.channels * 4);
    await run.work(1);
    return { outputs: [{ ...img, rgb: [255 - img.rgb[0], 255 - img.rgb[1], 255 - img.rgb[2]] }] };
  },
  async EmptyImage(run, i) {
    const w = Number(i.width);
    const h = Number(i.height);
    const b = Number(i.batch_size);
    const color = Number(i.color);
    // torch.full([batch, height, width, 1]) per channel, then torch.cat into 3 channels.
    run.cpu(b * h * w * 4);
    run.cpu(b * h * w * 3 * 4);
    await run.work(1);
    return { outputs: [{ t: 'IMAGE', batch: b, height: h, width: w, channels: 3, rgb: [(color >> 16) & 0xff, (color >> 8) & 0xff, color & 0xff] }] };
  },
  async ImageToMask(run, i) {
    const img = asImage(i.image);
    const index = ['red', 'green', 'blue', 'alpha'].indexOf(String(i.channel));
    if (index >= img.channels) {
      throw new NodeException('IndexError', `index ${index} is out of bounds for dimension 3 with size ${img.channels}`);
    }
    await run.work(1);
    return { outputs: [{ t: 'MASK', batch: img.batch, height: img.height, width: img.width }] };
  },
  async MaskToImage(run, i) {
    const mask = i.mask as MaskValue;
    await run.work(1);
    return { outputs: [{ t: 'IMAGE', batch: mask.batch, height: mask.height, width: mask.width, channels: 3, rgb: [255, 255, 255] }] };
  },
  async ImageBlur(run, i) {
    const img = asImage(i.image);
    const radius = Number(i.blur_radius);
    if (radius === 0) return { outputs: [img] };
    run.cpu(img.batch * img.width * img.height * img.channels * 4);
    // A blur is slow and reports no progress: its cost grows with the radius.
    await run.work(radius);
    return { outputs: [img] };
  },
  async SaveImageWebsocket(run, i) {
    const img = asImage(i.images);
    const png = solidPng(Math.min(64, img.width), Math.min(64, img.height), img.rgb);
    for (let step = 0; step < img.batch; step++) {
      await run.work(1);
      await run.progress(step, img.batch, png);
    }
    return { outputs: [], ui: {} };
  },
};
