/**
 * Named job parameters (width, height, batch_size, steps, cfg, seed, denoise, ckpt_name, prompt...)
 * mapped onto the nodes that carry them, found by class type and by following links.
 */
import type { ApiWorkflow, NodeInputValue, WorkflowNode } from '../comfy/types.js';
import type { InputChange, JobParams } from '../jobs/types.js';
import { beginEdit, setInput, type Edit } from './edit.js';
import {
  TEXT_ENCODER_INPUTS,
  VAE_LOADER_TYPES,
  isCheckpointLoader,
  isLatentNode,
  isLink,
  isSamplingNode,
  isUnetLoader,
  resolveLiteral,
  sortedNodes,
} from './graph.js';
import { PatchError } from './patch-error.js';

/** One place a parameter's value lives. */
interface Target {
  nodeId: string;
  input: string;
}

interface ParamSpec {
  /** Human wording of the accepted values, used in type errors. */
  expected: string;
  valid(v: unknown): boolean;
  /** Which nodes take it, in words, for PARAM_NOT_APPLICABLE. */
  takenBy: string;
  targets(wf: ApiWorkflow): Target[];
}

const isPositiveInt = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
const isString = (v: unknown): boolean => typeof v === 'string';
const isNonEmptyString = (v: unknown): boolean => typeof v === 'string' && v.length > 0;

/** Nodes matching `pick`, with the literal behind `inputs` (first name present wins). */
function literalTargets(wf: ApiWorkflow, pick: (n: WorkflowNode) => boolean, inputs: string[], kind: 'number' | 'string'): Target[] {
  const out: Target[] = [];
  const seen = new Set<string>();
  for (const [id, node] of sortedNodes(wf)) {
    if (!pick(node)) continue;
    const name = inputs.find((i) => i in node.inputs);
    if (name === undefined) continue;
    const t = resolveLiteral(wf, id, name, kind);
    // Two samplers may share one primitive node: set it once.
    if (t && !seen.has(`${t.nodeId}\u0000${t.input}`)) {
      seen.add(`${t.nodeId}\u0000${t.input}`);
      out.push(t);
    }
  }
  return out;
}

const latentNumber = (input: string): ParamSpec => ({
  expected: 'a positive integer',
  valid: isPositiveInt,
  takenBy: 'an empty latent/image node (EmptyLatentImage, EmptySD3LatentImage, EmptyHunyuanLatentVideo, EmptyImage...)',
  targets: (wf) => literalTargets(wf, isLatentNode, [input], 'number'),
});

const samplerInput = (inputs: string[], expected: string, valid: (v: unknown) => boolean, kind: 'number' | 'string'): ParamSpec => ({
  expected,
  valid,
  takenBy: 'a sampler, scheduler or guider node (KSampler, KSamplerAdvanced, SamplerCustom, BasicScheduler...)',
  targets: (wf) => literalTargets(wf, isSamplingNode, inputs, kind),
});

const loaderInput = (pick: (n: WorkflowNode) => boolean, input: string, takenBy: string): ParamSpec => ({
  expected: 'a non-empty string (a model file name)',
  valid: isNonEmptyString,
  takenBy,
  targets: (wf) => literalTargets(wf, pick, [input], 'string'),
});

const promptSpec = (polarity: 'positive' | 'negative'): ParamSpec => ({
  expected: 'a string',
  valid: isString,
  takenBy: `a text encoder (CLIPTextEncode...) feeding a sampler's ${polarity} input`,
  targets: (wf) => promptTargets(wf, polarity),
});

/** The named parameters and where they go. Order here is the order of the docs, nothing more. */
export const PARAM_SPECS: Readonly<Record<string, ParamSpec>> = {
  width: latentNumber('width'),
  height: latentNumber('height'),
  batch_size: latentNumber('batch_size'),
  steps: samplerInput(['steps'], 'a positive integer', isPositiveInt, 'number'),
  cfg: samplerInput(['cfg'], 'a finite number >= 0', (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0, 'number'),
  seed: samplerInput(
    ['seed', 'noise_seed'],
    'an integer >= 0',
    (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0,
    'number',
  ),
  denoise: samplerInput(['denoise'], 'a number between 0 and 1', (v) => typeof v === 'number' && v >= 0 && v <= 1, 'number'),
  sampler_name: samplerInput(['sampler_name'], 'a non-empty string', isNonEmptyString, 'string'),
  scheduler: samplerInput(['scheduler'], 'a non-empty string', isNonEmptyString, 'string'),
  ckpt_name: loaderInput(isCheckpointLoader, 'ckpt_name', 'a checkpoint loader (CheckpointLoaderSimple...)'),
  unet_name: loaderInput(isUnetLoader, 'unet_name', 'a diffusion model loader (UNETLoader)'),
  vae_name: loaderInput((n) => VAE_LOADER_TYPES.includes(n.class_type), 'vae_name', 'a VAE loader (VAELoader)'),
  prompt: promptSpec('positive'),
  negative_prompt: promptSpec('negative'),
};

/** The names `applyParams` understands (besides `<nodeId>.<input>` addresses). */
export const PARAM_NAMES: readonly string[] = Object.keys(PARAM_SPECS);

/** Nodes that consume conditioning without passing the text through (their source text is irrelevant). */
const CONDITIONING_SINKS = new Set(['ConditioningZeroOut']);

/**
 * The prompt text inputs behind the samplers' `positive` (or `negative`) inputs. Links are followed
 * through conditioning nodes (FluxGuidance, ControlNetApply...) to the text encoders, then to a
 * primitive string node if the text itself is linked. An encoder reachable from both sides only
 * counts as positive, so a negative prompt never overwrites the positive text.
 */
function promptTargets(wf: ApiWorkflow, polarity: 'positive' | 'negative'): Target[] {
  const encoders = (side: 'positive' | 'negative'): string[] => {
    const found = new Set<string>();
    const visited = new Set<string>();
    const walk = (value: NodeInputValue | undefined): void => {
      if (!isLink(value)) return;
      const id = value[0];
      const node = wf[id];
      if (!node || visited.has(id) || CONDITIONING_SINKS.has(node.class_type)) return;
      visited.add(id);
      if (TEXT_ENCODER_INPUTS[node.class_type]) {
        found.add(id);
        return;
      }
      // A node with its own positive/negative pair (ControlNetApplyAdvanced, CFGGuider) keeps the side.
      if (side in node.inputs) walk(node.inputs[side]);
      else for (const [name, v] of Object.entries(node.inputs)) if (/^conditioning/.test(name)) walk(v);
    };
    for (const [, node] of sortedNodes(wf)) {
      if (!isSamplingNode(node)) continue;
      walk(node.inputs[side]);
      if (side === 'positive' && node.class_type === 'BasicGuider') walk(node.inputs['conditioning']);
      if (side === 'positive' && node.class_type === 'DualCFGGuider') for (const c of ['cond1', 'cond2']) walk(node.inputs[c]);
    }
    return [...found];
  };
  const positive = encoders('positive');
  const ids = polarity === 'positive' ? positive : encoders('negative').filter((id) => !positive.includes(id));
  const out: Target[] = [];
  for (const [id, node] of sortedNodes(wf)) {
    if (!ids.includes(id)) continue;
    for (const input of TEXT_ENCODER_INPUTS[node.class_type] ?? []) {
      const t = resolveLiteral(wf, id, input, 'string');
      if (t && !out.some((o) => o.nodeId === t.nodeId && o.input === t.input)) out.push(t);
    }
  }
  return out;
}

/**
 * Sets `steps` on a node. On KSamplerAdvanced the start/end step window is rescaled with it, so a
 * base+refiner split (e.g. 20 of 25 steps, then the rest) keeps its proportions.
 */
export function setSteps(edit: Edit, nodeId: string, input: string, to: number): void {
  const node = edit.workflow[nodeId];
  if (!node) return;
  const from = node.inputs[input];
  if (!setInput(edit, nodeId, input, to)) return;
  if (input !== 'steps' || typeof from !== 'number' || from <= 0 || !('start_at_step' in node.inputs)) return;
  for (const bound of ['start_at_step', 'end_at_step']) {
    const v = node.inputs[bound];
    // 10000 ("to the end") and other values past the old step count stay as they are.
    if (typeof v === 'number' && v > 0 && v <= from) setInput(edit, nodeId, bound, Math.round((v * to) / from));
  }
}

/**
 * Applies named parameters to a copy of `workflow` and reports every input it changed.
 * Parameters are applied in the order of the `params` object; each one goes to every node that
 * takes it. `"<nodeId>.<input>"` sets one input of one node directly. Undefined values are skipped.
 *
 * @throws PatchError UNKNOWN_PARAM, PARAM_NOT_APPLICABLE (no node takes it) or PARAM_INVALID_TYPE.
 * @example applyParams(wf, { width: 768, seed: 42, prompt: 'a red fox' })
 */
export function applyParams(workflow: ApiWorkflow, params: JobParams): { workflow: ApiWorkflow; changes: InputChange[] } {
  const edit = beginEdit(workflow);
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    const spec = Object.hasOwn(PARAM_SPECS, name) ? PARAM_SPECS[name] : undefined;
    if (!spec) {
      applyAddressed(edit, name, value);
      continue;
    }
    if (!spec.valid(value)) {
      throw new PatchError('PARAM_INVALID_TYPE', `parameter "${name}" must be ${spec.expected}, got ${describe(value)}`, {
        param: name,
        expected: spec.expected,
        received: value,
      });
    }
    const targets = spec.targets(edit.workflow);
    if (targets.length === 0) {
      throw new PatchError('PARAM_NOT_APPLICABLE', `parameter "${name}" does not apply to this workflow: it needs ${spec.takenBy}`, {
        param: name,
      });
    }
    for (const t of targets) {
      if (name === 'steps') setSteps(edit, t.nodeId, t.input, value as number);
      else setInput(edit, t.nodeId, t.input, value as NodeInputValue);
    }
  }
  return edit;
}

/** `"12.denoise"`: one input of one node. The node must exist; a literal keeps its type. */
function applyAddressed(edit: Edit, name: string, value: unknown): void {
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || dot === name.length - 1) {
    throw new PatchError('UNKNOWN_PARAM', `unknown parameter "${name}": use one of ${PARAM_NAMES.join(', ')} or "<nodeId>.<input>"`, {
      param: name,
    });
  }
  const nodeId = name.slice(0, dot);
  const input = name.slice(dot + 1);
  const node = edit.workflow[nodeId];
  if (!node) {
    throw new PatchError('PARAM_NOT_APPLICABLE', `parameter "${name}" does not apply to this workflow: there is no node "${nodeId}"`, {
      param: name,
    });
  }
  const current = node.inputs[input];
  const primitive = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
  const expected = current !== undefined && !isLink(current) && current !== null ? `a ${typeof current}` : 'a string, number or boolean';
  if (!primitive || (current !== undefined && !isLink(current) && current !== null && typeof current !== typeof value)) {
    throw new PatchError('PARAM_INVALID_TYPE', `parameter "${name}" must be ${expected}, got ${describe(value)}`, {
      param: name,
      expected,
      received: value,
    });
  }
  setInput(edit, nodeId, input, value);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === 'number') return `the number ${v}`;
  return `a ${typeof v}`;
}
