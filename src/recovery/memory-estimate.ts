/**
 * A workflow's peak memory estimated from its shape alone (no server, no history). ComfyUI keeps
 * every model part it loaded for a prompt on the device, so the estimate walks the graph in
 * execution order and takes, at each node that uses the device,
 *
 *   device peak = CUDA context + model parts loaded so far + the node's working memory
 *
 * Working memory, per family (FAMILY_FACTORS, bytes per image per megapixel of the latent's pixel
 * size): a sampler `sample`, a full VAE decode/encode `decode`, a tiled decode `tiled` (one tile,
 * whatever the size), a text encoder 0.1 GiB, a model upscaler one tile plus its output image.
 * CPU tensors (EmptyImage, image scaling) are estimated apart: the largest single allocation.
 * The factors are fp16 weights of the public checkpoints and ComfyUI's working-memory sizes seen
 * on 8-24 GiB cards, rounded up; the memory model (memory-model.ts) corrects them per server and
 * workflow shape from what OOMs and successes show. Steps do not change the peak, only the time.
 */
import { topologicalOrder } from '../comfy/workflow.js';
import type { ApiWorkflow, NodeInputValue, WorkflowNode } from '../comfy/types.js';
import { isCheckpointLoader, isLatentNode, isLink, isUnetLoader, sortedNodes } from './graph.js';

export const GIB = 2 ** 30;
const g = (n: number): number => Math.round(n * GIB);

export type ModelFamily = 'sd15' | 'sdxl' | 'sd3' | 'flux';

/** Bytes of each model part and working memory of each phase for one family. */
export interface FamilyFactors {
  unet: number;
  clip: number;
  vae: number;
  /** Sampler working memory per image per megapixel. */
  sample: number;
  /** Full VAE decode working memory per image per megapixel. */
  decode: number;
  /** Tiled VAE decode working memory (one tile). */
  tiled: number;
}

/**
 * Per-family factors. SD1.5: 1.6 GiB UNet, 0.24 GiB CLIP-L; SDXL: 4.8 GiB UNet, 1.35 GiB CLIP-L+G;
 * SD3: 4.2 + 1.5 GiB; Flux: 11.1 GiB UNet, 4.6 GiB T5+CLIP-L; every VAE 0.16 GiB. Decoding needs
 * about 1.5 GiB per megapixel per image whatever the family (the VAE is the same size).
 */
export const FAMILY_FACTORS: Readonly<Record<ModelFamily, FamilyFactors>> = {
  sd15: { unet: g(1.6), clip: g(0.24), vae: g(0.16), sample: g(0.6), decode: g(1.5), tiled: g(0.35) },
  sdxl: { unet: g(4.8), clip: g(1.35), vae: g(0.16), sample: g(0.45), decode: g(1.5), tiled: g(0.35) },
  sd3: { unet: g(4.2), clip: g(1.5), vae: g(0.16), sample: g(0.8), decode: g(1.5), tiled: g(0.35) },
  flux: { unet: g(11.1), clip: g(4.6), vae: g(0.16), sample: g(1.2), decode: g(1.5), tiled: g(0.35) },
};

/** What the CUDA context and allocator keep whatever runs. */
export const CUDA_CONTEXT_BYTES = g(0.3);
/** RAM of the ComfyUI process itself (counts on a CPU server). */
export const PROCESS_RAM_BYTES = g(1.5);
export const LORA_BYTES = g(0.15);
export const TEXT_ENCODE_BYTES = g(0.1);
/** A model upscaler (ESRGAN-class) and the working memory of one of its 512 px tiles. */
export const UPSCALE_MODEL_BYTES = g(0.07);
export const UPSCALE_TILE_BYTES = g(0.6);

/** The family a model file name suggests; null when the name says nothing. */
export function familyFromName(name: string): ModelFamily | null {
  const n = name.toLowerCase();
  if (n.includes('flux')) return 'flux';
  if (/sd3|sd_3|stable-diffusion-3/.test(n)) return 'sd3';
  if (n.includes('xl')) return 'sdxl';
  if (/v1-5|sd15|sd_15|sd-v1|1\.5|v1_5/.test(n)) return 'sd15';
  return null;
}

/** Class types that only one family uses. */
const FAMILY_BY_CLASS: Readonly<Record<string, ModelFamily>> = {
  EmptySD3LatentImage: 'sd3',
  CLIPTextEncodeSD3: 'sd3',
  CLIPTextEncodeFlux: 'flux',
  FluxGuidance: 'flux',
  CLIPTextEncodeSDXL: 'sdxl',
  CLIPTextEncodeSDXLRefiner: 'sdxl',
};

/** The peak of one kind of memory and where it happens. */
export interface Peak {
  bytes: number;
  nodeId: string | null;
  what: string;
}

/** The estimate of one workflow. */
export interface WorkflowEstimate {
  /** Peak device memory on a GPU, CUDA context included. */
  gpu: Peak;
  /** Largest single CPU tensor (system memory), without the process's own RAM. */
  cpu: Peak;
  /** Peak when everything runs on the CPU (a `--cpu` server): process RAM + models + the larger working set. */
  cpuDevice: Peak;
  /** Bytes of every model part the workflow loads. */
  modelBytes: number;
  family: ModelFamily | null;
  /** Class types the estimate knows nothing about (their memory is not counted). */
  unknownNodes: string[];
}

interface Part {
  key: string;
  bytes: number;
}
type Value =
  | { t: 'model'; family: ModelFamily; parts: Part[] }
  | { t: 'latent'; width: number; height: number; batch: number }
  | { t: 'image'; width: number; height: number; batch: number };

/** Nodes that change nothing the estimate tracks (their first linked input passes through). */
const PASS_THROUGH = /^(SaveImage|PreviewImage|SaveLatent|Note|Reroute|ModelSamplingDiscrete|ModelSampling\w*|CLIPSetLastLayer|ConditioningCombine|ConditioningSetArea\w*|ConditioningZeroOut|ControlNetApply\w*|FreeU\w*|LatentFromBatch|RepeatLatentBatch|SetLatentNoiseMask|Primitive\w*|KSamplerSelect|BasicScheduler|RandomNoise|CFGGuider|BasicGuider|DualCFGGuider|SamplerCustom\w*|ImageInvert|ImageToMask|MaskToImage|ImageBlur|SaveImageWebsocket|LoadImage|ImageOnlyCheckpointLoader)$/;

const num = (v: NodeInputValue | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: NodeInputValue | undefined): string | null => (typeof v === 'string' ? v : null);
const mp = (v: { width: number; height: number }): number => (v.width * v.height) / 2 ** 20;

/** Execution order; a cyclic graph (ComfyUI rejects it anyway) falls back to id order. */
function order(wf: ApiWorkflow): string[] {
  try {
    return topologicalOrder(wf);
  } catch {
    return sortedNodes(wf).map(([id]) => id);
  }
}

/** The family the workflow's class types or model names point to, sd15 when nothing does. */
function workflowFamily(wf: ApiWorkflow): ModelFamily | null {
  for (const [, n] of sortedNodes(wf)) {
    const f = FAMILY_BY_CLASS[n.class_type];
    if (f) return f;
  }
  for (const [, n] of sortedNodes(wf)) {
    for (const k of ['ckpt_name', 'unet_name']) {
      const name = str(n.inputs[k]);
      const f = name ? familyFromName(name) : null;
      if (f) return f;
    }
  }
  return null;
}

/**
 * Estimates the peak memory of `wf` from its shape (see the module comment for the model).
 * @example estimateWorkflow(sdxl1024x8).gpu.bytes / 2 ** 30 // ~18.6 (VAE decode of 8 images)
 */
export function estimateWorkflow(wf: ApiWorkflow): WorkflowEstimate {
  const hint = workflowFamily(wf);
  const fallback: ModelFamily = hint ?? 'sd15';
  const values = new Map<string, Value[]>();
  const loaded = new Map<string, number>();
  const gpu: Peak = { bytes: CUDA_CONTEXT_BYTES, nodeId: null, what: 'CUDA context' };
  const cpu: Peak = { bytes: 0, nodeId: null, what: 'nothing' };
  let workingMax = 0;
  const unknown = new Set<string>();
  const input = (node: WorkflowNode, name: string): Value | undefined => {
    const v = node.inputs[name];
    return isLink(v) ? values.get(v[0])?.[v[1]] : undefined;
  };
  const firstLinked = (node: WorkflowNode): Value | undefined => {
    for (const v of Object.values(node.inputs)) if (isLink(v)) return values.get(v[0])?.[v[1]];
    return undefined;
  };
  const useDevice = (id: string, parts: Part[], working: number, what: string): void => {
    for (const p of parts) loaded.set(p.key, p.bytes);
    let sum = CUDA_CONTEXT_BYTES;
    for (const b of loaded.values()) sum += b;
    workingMax = Math.max(workingMax, working);
    if (sum + working > gpu.bytes) Object.assign(gpu, { bytes: sum + working, nodeId: id, what });
  };
  const useCpu = (id: string, bytes: number, what: string): void => {
    if (bytes > cpu.bytes) Object.assign(cpu, { bytes, nodeId: id, what });
  };
  const modelOf = (v: Value | undefined): Extract<Value, { t: 'model' }> =>
    v?.t === 'model' ? v : { t: 'model', family: fallback, parts: [] };

  for (const id of order(wf)) {
    const node = wf[id];
    if (!node) continue;
    const ct = node.class_type;
    if (isCheckpointLoader(node) && ct !== 'ImageOnlyCheckpointLoader') {
      const file = str(node.inputs['ckpt_name']) ?? id;
      const f = familyFromName(file) ?? fallback;
      const p = FAMILY_FACTORS[f];
      values.set(id, [
        { t: 'model', family: f, parts: [{ key: `ckpt/${file}#unet`, bytes: p.unet }] },
        { t: 'model', family: f, parts: [{ key: `ckpt/${file}#clip`, bytes: p.clip }] },
        { t: 'model', family: f, parts: [{ key: `ckpt/${file}#vae`, bytes: p.vae }] },
      ]);
    } else if (isUnetLoader(node)) {
      // Stand-alone diffusion models are mostly Flux-class; fp8 weights take half.
      const file = str(node.inputs['unet_name']) ?? id;
      const f = familyFromName(file) ?? (hint === 'sd15' || hint === null ? 'flux' : hint);
      const half = String(node.inputs['weight_dtype'] ?? '').startsWith('fp8') ? 0.5 : 1;
      values.set(id, [{ t: 'model', family: f, parts: [{ key: `unet/${file}`, bytes: FAMILY_FACTORS[f].unet * half }] }]);
    } else if (/^(CLIPLoader|DualCLIPLoader|TripleCLIPLoader)$/.test(ct)) {
      const f = hint ?? (ct === 'DualCLIPLoader' ? 'flux' : 'sd15');
      values.set(id, [{ t: 'model', family: f, parts: [{ key: `clip/${id}`, bytes: FAMILY_FACTORS[f].clip }] }]);
    } else if (ct === 'VAELoader') {
      const name = str(node.inputs['vae_name']) ?? id;
      const tiny = /^(pixel_space|taesd\w*|taef1)$/.test(name);
      const f = familyFromName(name) ?? fallback;
      values.set(id, [{ t: 'model', family: f, parts: [{ key: `vae/${name}`, bytes: tiny ? g(0.01) : FAMILY_FACTORS[f].vae }] }]);
    } else if (/^Lora\w*Loader/.test(ct) || /^LoraLoader/.test(ct)) {
      const file = str(node.inputs['lora_name']) ?? id;
      const m = modelOf(input(node, 'model'));
      const c = input(node, 'clip');
      const out: Value[] = [{ ...m, parts: [...m.parts, { key: `lora/${file}#model`, bytes: LORA_BYTES }] }];
      if (c?.t === 'model') out.push({ ...c, parts: [...c.parts, { key: `lora/${file}#clip`, bytes: Math.round(LORA_BYTES / 4) }] });
      values.set(id, out);
    } else if (isLatentNode(node)) {
      const w = num(node.inputs['width']) ?? 512;
      const h = num(node.inputs['height']) ?? 512;
      const b = num(node.inputs['batch_size']) ?? 1;
      if (ct === 'EmptyImage') {
        // torch.full per channel, then torch.cat into three float32 channels.
        useCpu(id, b * h * w * 3 * 4, `${ct} ${w}x${h}x${b}`);
        values.set(id, [{ t: 'image', width: w, height: h, batch: b }]);
      } else {
        useCpu(id, b * 16 * Math.floor(h / 8) * Math.floor(w / 8) * 4, `${ct} ${w}x${h}x${b}`);
        values.set(id, [{ t: 'latent', width: Math.floor(w / 8) * 8, height: Math.floor(h / 8) * 8, batch: b }]);
      }
    } else if (/^(KSampler|KSamplerAdvanced|SamplerCustom|SamplerCustomAdvanced)$/.test(ct)) {
      const m = modelOf(input(node, 'model') ?? input(node, 'guider'));
      const lat = input(node, 'latent_image');
      const l = lat?.t === 'latent' ? lat : { t: 'latent' as const, width: 1024, height: 1024, batch: 1 };
      useDevice(id, m.parts, l.batch * mp(l) * FAMILY_FACTORS[m.family].sample, `${ct} ${l.width}x${l.height}x${l.batch}`);
      values.set(id, [l, l]);
    } else if (/^CLIPTextEncode/.test(ct)) {
      const c = input(node, 'clip');
      if (c?.t === 'model') useDevice(id, c.parts, TEXT_ENCODE_BYTES, ct);
    } else if (ct === 'VAEDecode' || ct === 'VAEDecodeTiled' || ct === 'VAEEncode') {
      const v = modelOf(input(node, 'vae'));
      const src = input(node, ct === 'VAEEncode' ? 'pixels' : 'samples');
      const s = src && src.t !== 'model' ? src : { width: 1024, height: 1024, batch: 1 };
      const working = ct === 'VAEDecodeTiled' ? FAMILY_FACTORS[v.family].tiled : s.batch * mp(s) * FAMILY_FACTORS[v.family].decode;
      useDevice(id, v.parts, working, `${ct} ${s.width}x${s.height}x${s.batch}`);
      values.set(id, [{ t: ct === 'VAEEncode' ? 'latent' : 'image', width: s.width, height: s.height, batch: s.batch }]);
    } else if (ct === 'LatentUpscale' || ct === 'LatentUpscaleBy' || ct === 'ImageScale' || ct === 'ImageScaleBy') {
      const src = firstLinked(node);
      if (src && src.t !== 'model') {
        const by = num(node.inputs['scale_by']);
        const w = by !== null ? Math.round(src.width * by) : (num(node.inputs['width']) ?? src.width) || src.width;
        const h = by !== null ? Math.round(src.height * by) : (num(node.inputs['height']) ?? src.height) || src.height;
        if (src.t === 'image') useCpu(id, src.batch * w * h * 3 * 4, `${ct} ${w}x${h}x${src.batch}`);
        values.set(id, [{ ...src, width: w, height: h }]);
      }
    } else if (ct === 'UpscaleModelLoader') {
      values.set(id, [{ t: 'model', family: fallback, parts: [{ key: `upscale/${str(node.inputs['model_name']) ?? id}`, bytes: UPSCALE_MODEL_BYTES }] }]);
    } else if (ct === 'ImageUpscaleWithModel') {
      const m = modelOf(input(node, 'upscale_model'));
      const img = input(node, 'image');
      const s = img && img.t !== 'model' ? img : { width: 1024, height: 1024, batch: 1 };
      // ESRGAN-class models are 4x; the output image is held on the device while tiles are written.
      const out = { t: 'image' as const, width: s.width * 4, height: s.height * 4, batch: s.batch };
      useDevice(id, m.parts, UPSCALE_TILE_BYTES + out.batch * out.width * out.height * 3 * 4, `${ct} ${out.width}x${out.height}x${out.batch}`);
      values.set(id, [out]);
    } else {
      if (!PASS_THROUGH.test(ct)) unknown.add(ct);
      const pass = firstLinked(node);
      if (pass) values.set(id, [pass, pass]);
    }
  }
  let modelBytes = 0;
  for (const b of loaded.values()) modelBytes += b;
  const cpuWorking = Math.max(workingMax, cpu.bytes);
  const cpuDevice: Peak = {
    bytes: PROCESS_RAM_BYTES + modelBytes + cpuWorking,
    nodeId: cpu.bytes >= workingMax ? cpu.nodeId : gpu.nodeId,
    what: cpu.bytes >= workingMax ? cpu.what : gpu.what,
  };
  return { gpu, cpu, cpuDevice, modelBytes, family: hint ?? (modelBytes > 0 ? fallback : null), unknownNodes: [...unknown].sort() };
}

/** Model inputs that name a file (the shape key and label use them). */
const MODEL_INPUTS = ['ckpt_name', 'unet_name', 'vae_name', 'lora_name', 'clip_name', 'clip_name1', 'clip_name2', 'model_name'];

/**
 * A short description of a workflow's shape for people (doctor, the API): the family, the model
 * files and the class types, in the terms `shapeKey` groups by (sizes, batch and steps left out).
 * @example shapeLabel(sdxlTxt2img) // 'sdxl: sd_xl_base_1.0.safetensors; CLIPTextEncode, CheckpointLoaderSimple, EmptyLatentImage, KSampler, SaveImage, VAEDecode'
 */
export function shapeLabel(wf: ApiWorkflow): string {
  const models = new Set<string>();
  const types = new Set<string>();
  for (const [, n] of sortedNodes(wf)) {
    types.add(n.class_type);
    for (const k of MODEL_INPUTS) {
      const v = str(n.inputs[k]);
      if (v !== null) models.add(v);
    }
  }
  const family = estimateWorkflow(wf).family;
  const label = `${family ?? 'no model family'}: ${models.size > 0 ? `${[...models].join(', ')}; ` : ''}${[...types].sort().join(', ')}`;
  return label.length > 200 ? `${label.slice(0, 199)}…` : label;
}

/**
 * A key for "the same kind of workflow": class types and model names, not sizes, batch or steps
 * (the estimate scales with those). What the memory model learns for one key applies to every size
 * of that workflow. A tiled decode is its own shape: its peak is at another node (the sampler, not
 * the decode), so a ratio learned from a full decode's OOM would wrongly raise it, and a tiled
 * success would say nothing about a full decode.
 * @example shapeKey(wf) // 'k1a2b3c4d'
 */
export function shapeKey(wf: ApiWorkflow): string {
  const parts: string[] = [];
  for (const [, n] of sortedNodes(wf)) {
    const ct = n.class_type;
    const model = MODEL_INPUTS.map((k) => str(n.inputs[k]))
      .filter((v): v is string => v !== null);
    parts.push([ct, ...model].join('\u0001'));
  }
  parts.sort();
  // FNV-1a, 32 bit: a short stable key, not a security boundary.
  let h = 0x811c9dc5;
  for (const ch of parts.join('\u0000')) {
    h ^= ch.codePointAt(0) ?? 0;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return `k${h.toString(16).padStart(8, '0')}`;
}
