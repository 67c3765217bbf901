/**
 * Read-only helpers over API-format workflows: node lookup by class type, links, literal inputs and
 * output nodes. Pure functions; nothing here mutates a workflow.
 */
import type { ApiWorkflow, WorkflowNode } from '../comfy/types.js';
import { isLink, outputNodeIds as comfyOutputNodeIds } from '../comfy/workflow.js';

export { isLink };

/** Nodes that create the image/latent canvas: their width, height and batch_size are the job's size. */
export const LATENT_NODE_TYPES: readonly string[] = [
  'EmptyLatentImage',
  'EmptySD3LatentImage',
  'EmptyHunyuanLatentVideo',
  'EmptyMochiLatentVideo',
  'EmptyLTXVLatentVideo',
  'EmptyCosmosLatentVideo',
  'EmptyHunyuanImageLatent',
  'EmptyImage',
];

/** Checkpoint loaders: their `ckpt_name` input names a file in the `checkpoints` folder. */
export const CHECKPOINT_LOADER_TYPES: readonly string[] = [
  'CheckpointLoaderSimple',
  'CheckpointLoader',
  'ImageOnlyCheckpointLoader',
  'unCLIPCheckpointLoader',
];

/** Diffusion-model loaders: `unet_name` names a file in `diffusion_models` (alias `unet`). */
export const UNET_LOADER_TYPES: readonly string[] = ['UNETLoader', 'UnetLoaderGGUF'];

/** Standalone VAE loaders (`vae_name`). */
export const VAE_LOADER_TYPES: readonly string[] = ['VAELoader'];

/** Text encoders and the inputs that hold their prompt text. */
export const TEXT_ENCODER_INPUTS: Readonly<Record<string, readonly string[]>> = {
  CLIPTextEncode: ['text'],
  CLIPTextEncodeSDXL: ['text_g', 'text_l'],
  CLIPTextEncodeSDXLRefiner: ['text'],
  CLIPTextEncodeSD3: ['clip_l', 'clip_g', 't5xxl'],
  CLIPTextEncodeFlux: ['clip_l', 't5xxl'],
  CLIPTextEncodeHunyuanDiT: ['bert', 'mt5xl'],
};

/**
 * Orders node ids the way people read them: numeric ids by value ("9" before "10"), subgraph ids
 * ("12:3") part by part, other strings lexically. A stable order keeps change lists reproducible.
 */
export function compareNodeIds(a: string, b: string): number {
  const pa = a.split(':');
  const pb = b.split(':');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    const nx = /^\d+$/.test(x) ? Number(x) : NaN;
    const ny = /^\d+$/.test(y) ? Number(y) : NaN;
    if (!Number.isNaN(nx) && !Number.isNaN(ny)) return nx - ny;
    if (!Number.isNaN(nx)) return -1;
    if (!Number.isNaN(ny)) return 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

/** Every node whose class type is one of `classTypes`, ordered by node id. */
export function findNodes(wf: ApiWorkflow, classTypes: readonly string[]): Array<[string, WorkflowNode]> {
  const wanted = new Set(classTypes);
  return sortedNodes(wf).filter(([, node]) => wanted.has(node.class_type));
}

/** All nodes, ordered by node id. */
export function sortedNodes(wf: ApiWorkflow): Array<[string, WorkflowNode]> {
  return Object.entries(wf).sort(([a], [b]) => compareNodeIds(a, b));
}

/** True for a node that creates the canvas (known types, and `Empty*Latent*` nodes with a size). */
export function isLatentNode(node: WorkflowNode): boolean {
  if (LATENT_NODE_TYPES.includes(node.class_type)) return true;
  return /^Empty\w*Latent/.test(node.class_type) && typeof node.inputs['width'] === 'number' && typeof node.inputs['height'] === 'number';
}

/** True for nodes that take part in sampling: samplers, schedulers, guiders and noise sources. */
export function isSamplingNode(node: WorkflowNode): boolean {
  return /KSampler|SamplerCustom|Scheduler$|Guider$|^RandomNoise$/.test(node.class_type);
}

/** True for a checkpoint loader (known types, and any `*CheckpointLoader*` with a `ckpt_name`). */
export function isCheckpointLoader(node: WorkflowNode): boolean {
  return CHECKPOINT_LOADER_TYPES.includes(node.class_type) || (/CheckpointLoader/.test(node.class_type) && 'ckpt_name' in node.inputs);
}

/** True for a diffusion-model loader. */
export function isUnetLoader(node: WorkflowNode): boolean {
  return UNET_LOADER_TYPES.includes(node.class_type) || (/UNETLoader|UnetLoader/i.test(node.class_type) && 'unet_name' in node.inputs);
}

/**
 * Where a literal value for `input` of `nodeId` really lives. A literal stays where it is; a link is
 * followed to a primitive node (`PrimitiveInt`, `Seed (rgthree)`, a string node...) that holds it.
 * Returns null when no literal of the wanted kind is reachable.
 */
export function resolveLiteral(
  wf: ApiWorkflow,
  nodeId: string,
  input: string,
  kind: 'number' | 'string',
  depth = 0,
): { nodeId: string; input: string } | null {
  const node = wf[nodeId];
  if (!node || depth > 4) return null;
  const value = node.inputs[input];
  if (typeof value === kind) return { nodeId, input };
  if (!isLink(value)) return null;
  const [srcId] = value;
  const src = wf[srcId];
  if (!src) return null;
  // Primitive nodes name their value differently; try the same name first, then the usual ones.
  const names = [input, 'value', ...(kind === 'number' ? ['seed', 'int', 'float'] : ['text', 'string'])];
  for (const name of new Set(names)) {
    const found = resolveLiteral(wf, srcId, name, kind, depth + 1);
    if (found) return found;
  }
  return null;
}

/**
 * The output nodes of a workflow in id order (stock output class types; the engine may pass the
 * server's own list instead, from object_info).
 */
export function outputNodeIds(wf: ApiWorkflow): string[] {
  return comfyOutputNodeIds(wf).sort(compareNodeIds);
}
