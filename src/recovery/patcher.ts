/**
 * The workflow patcher: every function takes a workflow and returns a changed copy plus the exact
 * list of inputs it changed. Inputs are never mutated. The ladder functions (`useTiledVae`,
 * `reduceBatch`, `reduceResolution`, `reduceSteps`, `switchModel`) return null when there is
 * nothing left to change, which is how the recovery policy knows a step cannot apply.
 */
import type { ApiWorkflow } from '../comfy/types.js';
import type { InputChange } from '../jobs/types.js';
import { beginEdit, roundTo8, setClassType, setInput, type Edit } from './edit.js';
import { findNodes, isCheckpointLoader, isLatentNode, isSamplingNode, isUnetLoader, resolveLiteral, sortedNodes } from './graph.js';
import { setSteps } from './params.js';
import { PatchError } from './patch-error.js';

export { applyParams, PARAM_NAMES } from './params.js';
export { findNodes } from './graph.js';

/** A changed copy of a workflow and what changed. */
export interface PatchResult {
  workflow: ApiWorkflow;
  changes: InputChange[];
}

/** Floors of the OOM ladder (DESIGN.md): never below these unless the original was already lower. */
export const MIN_RESOLUTION = 512;
export const MIN_STEPS = 20;
/** Each resolution or steps reduction keeps this share. */
export const REDUCTION_FACTOR = 0.8;

/** Tiling used when VAEDecode is swapped for VAEDecodeTiled (ComfyUI's own defaults). */
export interface TiledVaeOptions {
  /** @default 512 */
  tileSize?: number;
  /** @default 64 */
  overlap?: number;
  /** Frames decoded at a time by video VAEs. @default 64 */
  temporalSize?: number;
  /** @default 8 */
  temporalOverlap?: number;
}

const done = (edit: Edit): PatchResult | null => (edit.changes.length > 0 ? edit : null);

/**
 * Swaps every `VAEDecode` for `VAEDecodeTiled`, keeping its samples and vae links.
 * Returns null when the workflow has no plain VAEDecode left.
 * @example useTiledVae(wf) // node 8: class_type VAEDecode -> VAEDecodeTiled, tile_size null -> 512, ...
 */
export function useTiledVae(wf: ApiWorkflow, opts: TiledVaeOptions = {}): PatchResult | null {
  const edit = beginEdit(wf);
  for (const [id] of findNodes(wf, ['VAEDecode'])) {
    setClassType(edit, id, 'VAEDecodeTiled');
    setInput(edit, id, 'tile_size', opts.tileSize ?? 512);
    setInput(edit, id, 'overlap', opts.overlap ?? 64);
    setInput(edit, id, 'temporal_size', opts.temporalSize ?? 64);
    setInput(edit, id, 'temporal_overlap', opts.temporalOverlap ?? 8);
  }
  return done(edit);
}

/** Literal locations of one input on every latent node (links followed to their primitive). */
function latentTargets(wf: ApiWorkflow, input: string): Array<{ nodeId: string; input: string; value: number }> {
  const out: Array<{ nodeId: string; input: string; value: number }> = [];
  for (const [id, node] of sortedNodes(wf)) {
    if (!isLatentNode(node)) continue;
    const t = resolveLiteral(wf, id, input, 'number');
    const value = t ? wf[t.nodeId]?.inputs[t.input] : undefined;
    if (t && typeof value === 'number' && !out.some((o) => o.nodeId === t.nodeId && o.input === t.input)) out.push({ ...t, value });
  }
  return out;
}

/**
 * Halves `batch_size` on every latent node (floor, min 1). Returns null when every batch is already 1.
 * @example reduceBatch(wf) // batch_size 8 -> 4
 */
export function reduceBatch(wf: ApiWorkflow): PatchResult | null {
  const edit = beginEdit(wf);
  for (const t of latentTargets(wf, 'batch_size')) {
    if (t.value > 1) setInput(edit, t.nodeId, t.input, Math.max(1, Math.floor(t.value / 2)));
  }
  return done(edit);
}

/** The value of the same node's input in `original`, when it is the same kind of node. */
function originalNumber(wf: ApiWorkflow, original: ApiWorkflow, nodeId: string, input: string): number | undefined {
  const now = wf[nodeId];
  const then = original[nodeId];
  if (!now || !then || now.class_type !== then.class_type) return undefined;
  const v = then.inputs[input];
  return typeof v === 'number' ? v : undefined;
}

/** Scales a latent node's width and height by (at most) `factor`, keeping the aspect ratio and the floors. */
function scaleSize(edit: Edit, wf: ApiWorkflow, original: ApiWorkflow | null, nodeId: string, factor: number): void {
  const w = resolveLiteral(wf, nodeId, 'width', 'number');
  const h = resolveLiteral(wf, nodeId, 'height', 'number');
  const wv = w ? edit.workflow[w.nodeId]?.inputs[w.input] : undefined;
  const hv = h ? edit.workflow[h.nodeId]?.inputs[h.input] : undefined;
  if (!w || !h || typeof wv !== 'number' || typeof hv !== 'number') return;
  const floorW = Math.min(MIN_RESOLUTION, (original && originalNumber(wf, original, w.nodeId, w.input)) ?? wv);
  const floorH = Math.min(MIN_RESOLUTION, (original && originalNumber(wf, original, h.nodeId, h.input)) ?? hv);
  // One factor for both sides: clamping each side alone would squash the picture at the floor.
  const s = Math.max(factor, floorW / wv, floorH / hv);
  if (s >= 1) return;
  setInput(edit, w.nodeId, w.input, Math.min(wv, Math.max(floorW, roundTo8(wv * s))));
  setInput(edit, h.nodeId, h.input, Math.min(hv, Math.max(floorH, roundTo8(hv * s))));
}

/**
 * Scales width and height of every latent node by 0.8, rounded to a multiple of 8, never below 512
 * (or below the ORIGINAL value when that was smaller). Both sides share one factor so the aspect
 * ratio holds; a side already at its floor stops the node. Returns null when nothing can shrink.
 * @example reduceResolution(wf, original) // 1024x1024 -> 816x816 -> 656x656 -> 528x528 -> 512x512 -> null
 */
export function reduceResolution(wf: ApiWorkflow, original: ApiWorkflow): PatchResult | null {
  const edit = beginEdit(wf);
  for (const [id, node] of sortedNodes(wf)) if (isLatentNode(node)) scaleSize(edit, wf, original, id, REDUCTION_FACTOR);
  return done(edit);
}

/** Scales `steps` on every sampler/scheduler by `factor` (rounded), never below the floor. */
function scaleSteps(edit: Edit, wf: ApiWorkflow, original: ApiWorkflow | null, factor: number): void {
  const seen = new Set<string>();
  for (const [id, node] of sortedNodes(wf)) {
    if (!isSamplingNode(node) || !('steps' in node.inputs)) continue;
    const t = resolveLiteral(wf, id, 'steps', 'number');
    const key = t ? `${t.nodeId}\u0000${t.input}` : '';
    if (!t || seen.has(key)) continue;
    seen.add(key);
    const cur = wf[t.nodeId]?.inputs[t.input];
    if (typeof cur !== 'number') continue;
    const floor = Math.min(MIN_STEPS, (original && originalNumber(wf, original, t.nodeId, t.input)) ?? cur);
    const next = Math.max(floor, Math.round(cur * factor));
    if (next < cur) setSteps(edit, t.nodeId, t.input, next);
  }
}

/**
 * Reduces `steps` on every sampler and scheduler by 20% (rounded), never below 20 (or below the
 * ORIGINAL value when that was smaller). KSamplerAdvanced start/end windows scale along.
 * Returns null when every sampler is at its floor.
 * @example reduceSteps(wf, original) // 30 -> 24 -> 20 -> null
 */
export function reduceSteps(wf: ApiWorkflow, original: ApiWorkflow): PatchResult | null {
  const edit = beginEdit(wf);
  scaleSteps(edit, wf, original, REDUCTION_FACTOR);
  return done(edit);
}

/** Model folders as ComfyUI names them; `unet` is the old name of `diffusion_models`. */
export function isUnetFolder(folder: string | undefined): boolean {
  return folder === 'unet' || folder === 'diffusion_models';
}

/** Compares model names the way servers list them (Windows servers use `\` in subfolders). */
export function sameModelName(a: string, b: string): boolean {
  return a.replaceAll('\\', '/') === b.replaceAll('\\', '/');
}

/**
 * Points the model loaders at `to`: checkpoint loaders' `ckpt_name`, or UNETLoader's `unet_name`
 * when `folder` is `unet`/`diffusion_models`. With `from`, only loaders that load one of those
 * names change (e.g. only the refiner of an SDXL base+refiner graph). Returns null if none changes.
 * @example switchModel(wf, 'sd_xl_base_1.0.safetensors', { from: ['missing.safetensors'] })
 */
export function switchModel(wf: ApiWorkflow, to: string, opts: { from?: string[]; folder?: string } = {}): PatchResult | null {
  const unet = isUnetFolder(opts.folder);
  const input = unet ? 'unet_name' : 'ckpt_name';
  const edit = beginEdit(wf);
  for (const [id, node] of sortedNodes(wf)) {
    if (!(unet ? isUnetLoader(node) : isCheckpointLoader(node))) continue;
    const t = resolveLiteral(wf, id, input, 'string');
    const cur = t ? wf[t.nodeId]?.inputs[t.input] : undefined;
    if (!t || typeof cur !== 'string') continue;
    if (opts.from && !opts.from.some((f) => sameModelName(f, cur))) continue;
    setInput(edit, t.nodeId, t.input, to);
  }
  return done(edit);
}

/**
 * Lowers the cost of a workflow to about `factor` of it (degradation): batch first, and only what
 * the batch cannot absorb comes out of resolution and steps (cost ~ width x height x steps, so each
 * side and the steps scale by the cube root). Floors are 512 px and 20 steps, or the current value
 * when lower. `factor` 1 changes nothing.
 * @throws PatchError INVALID_ARGUMENT when factor is not in (0, 1].
 * @example scaleQuality(wf, 0.5) // batch 4 -> 2; or, at batch 1, 1024x1024/30 steps -> 816x816/24
 */
export function scaleQuality(wf: ApiWorkflow, factor: number): PatchResult {
  if (!(typeof factor === 'number' && factor > 0 && factor <= 1)) {
    throw new PatchError('INVALID_ARGUMENT', `quality factor must be a number in (0, 1], got ${String(factor)}`, {
      param: 'factor',
      expected: 'a number in (0, 1]',
      received: factor,
    });
  }
  const edit = beginEdit(wf);
  if (factor === 1) return edit;
  let before = 0;
  let after = 0;
  for (const t of latentTargets(wf, 'batch_size')) {
    const next = Math.max(1, Math.floor(t.value * factor));
    before += t.value;
    after += next;
    setInput(edit, t.nodeId, t.input, next);
  }
  const remaining = before > 0 ? (factor * before) / after : factor;
  // A tiny remainder (rounding) is not worth a visible quality change.
  if (remaining < 0.99) {
    // The level's factor applies to resolution and steps each (80 % of both at "high"), as the
    // degradation levels promise; the floors of the OOM ladder still hold.
    const s = remaining;
    const sized = edit.workflow;
    for (const [id, node] of sortedNodes(sized)) if (isLatentNode(node)) scaleSize(edit, sized, null, id, s);
    scaleSteps(edit, edit.workflow, null, s);
  }
  return edit;
}
