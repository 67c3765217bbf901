/**
 * Graph helpers over API-format workflows, used by the pool (capabilities), the job engine and
 * recovery (partial targets, patching). None of them mutates its input.
 */
import type { ApiWorkflow, NodeDefinition, ObjectInfo, WorkflowNode } from './types.js';

const kWorkflowFormatError = Symbol.for('comfyguard.WorkflowFormatError');

/** What is wrong with a value that should be an API-format workflow. */
export type WorkflowProblem =
  | 'not_an_object'
  | 'ui_format'
  | 'empty'
  | 'node_not_an_object'
  | 'missing_class_type'
  | 'inputs_not_an_object'
  | 'link_to_missing_node'
  | 'cycle';

/** A malformed workflow, detected locally before anything is sent. Maps to `COMFYUI_WORKFLOW_ERROR`. */
export class WorkflowFormatError extends Error {
  readonly code = 'COMFYUI_WORKFLOW_ERROR' as const;
  readonly problem: WorkflowProblem;
  readonly nodeId: string | undefined;

  constructor(problem: WorkflowProblem, message: string, nodeId?: string) {
    super(message);
    this.name = 'WorkflowFormatError';
    this.problem = problem;
    this.nodeId = nodeId;
    Object.defineProperty(this, kWorkflowFormatError, { value: true });
  }

  /** Cross-realm safe check. */
  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[kWorkflowFormatError] === true;
  }
}

/** A link inside a workflow: `to.input` reads output `slot` of node `from`. */
export interface WorkflowLink {
  from: string;
  slot: number;
  to: string;
  input: string;
}

/** A model file a workflow names in a literal loader input. */
export interface ModelReference {
  nodeId: string;
  classType: string;
  input: string;
  /** The `/models/{folder}` to look in. */
  folder: string;
  /** Legacy folder names that hold the same files on older servers. */
  aliases: string[];
  name: string;
}

/** True for ComfyUI's link shape `[source node id (string), output slot (int)]` (graph_utils.is_link). */
export function isLink(value: unknown): value is [string, number] {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'number' && Number.isInteger(value[1]);
}

/** True when `value` is an API-format workflow (see `assertApiWorkflow` for the reasons it may not be). */
export function isApiWorkflow(value: unknown): value is ApiWorkflow {
  return findProblem(value) === undefined;
}

/**
 * Throws a `WorkflowFormatError` naming the problem when `value` is not an API-format workflow:
 * not an object, a UI-format graph (`nodes`/`links` arrays), empty, a node without `class_type` or
 * `inputs`, or a link to a node that is not in the graph.
 */
export function assertApiWorkflow(value: unknown): asserts value is ApiWorkflow {
  const problem = findProblem(value);
  if (problem) throw problem;
}

function findProblem(value: unknown): WorkflowFormatError | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return new WorkflowFormatError('not_an_object', `workflow must be a JSON object of nodes, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`);
  }
  const obj = value as Record<string, unknown>;
  if (Array.isArray(obj['nodes']) && (Array.isArray(obj['links']) || 'last_node_id' in obj)) {
    return new WorkflowFormatError(
      'ui_format',
      'workflow is in UI format (it has "nodes" and "links"); export it with "Save (API)" / "Export (API)" in ComfyUI',
    );
  }
  const ids = Object.keys(obj);
  if (ids.length === 0) return new WorkflowFormatError('empty', 'workflow has no nodes');
  for (const id of ids) {
    const node = obj[id];
    if (typeof node !== 'object' || node === null || Array.isArray(node)) {
      return new WorkflowFormatError('node_not_an_object', `node "${id}" is not an object`, id);
    }
    const n = node as Record<string, unknown>;
    if (typeof n['class_type'] !== 'string' || n['class_type'] === '') {
      return new WorkflowFormatError('missing_class_type', `node "${id}" has no "class_type"`, id);
    }
    const inputs = n['inputs'];
    if (typeof inputs !== 'object' || inputs === null || Array.isArray(inputs)) {
      return new WorkflowFormatError('inputs_not_an_object', `node "${id}" (${n['class_type']}) has no "inputs" object`, id);
    }
    for (const [input, v] of Object.entries(inputs)) {
      if (isLink(v) && !Object.prototype.hasOwnProperty.call(obj, v[0])) {
        return new WorkflowFormatError('link_to_missing_node', `node "${id}" input "${input}" links to node "${v[0]}", which is not in the workflow`, id);
      }
    }
  }
  return undefined;
}

/** The distinct class types of a workflow, sorted. */
export function classTypes(workflow: ApiWorkflow): string[] {
  return [...new Set(Object.values(workflow).map((n) => n.class_type))].sort();
}

/** Every link of the workflow, in node-id then input order. */
export function linksOf(workflow: ApiWorkflow): WorkflowLink[] {
  const out: WorkflowLink[] = [];
  for (const [to, node] of Object.entries(workflow)) {
    for (const [input, v] of Object.entries(node.inputs ?? {})) if (isLink(v)) out.push({ from: v[0], slot: v[1], to, input });
  }
  return out;
}

/**
 * The nodes needed to compute `nodeIds`: the ids themselves and all their transitive inputs,
 * in the workflow's key order. Ids not in the workflow are ignored.
 */
export function upstreamOf(workflow: ApiWorkflow, nodeIds: Iterable<string>): string[] {
  const seen = new Set<string>();
  const stack = [...nodeIds].filter((id) => hasNode(workflow, id));
  while (stack.length > 0) {
    const id = stack.pop() as string;
    if (seen.has(id)) continue;
    seen.add(id);
    const node = workflow[id];
    for (const v of Object.values(node?.inputs ?? {})) if (isLink(v) && hasNode(workflow, v[0]) && !seen.has(v[0])) stack.push(v[0]);
  }
  return Object.keys(workflow).filter((id) => seen.has(id));
}

/**
 * Node ids ordered so that every node comes after the nodes it reads from (Kahn's algorithm,
 * ties broken by key order). Links to missing nodes are ignored. Throws `cycle` on a cycle.
 */
export function topologicalOrder(workflow: ApiWorkflow): string[] {
  const ids = Object.keys(workflow);
  const indegree = new Map<string, number>(ids.map((id) => [id, 0]));
  const consumers = new Map<string, string[]>();
  for (const link of linksOf(workflow)) {
    if (!indegree.has(link.from)) continue;
    indegree.set(link.to, (indegree.get(link.to) ?? 0) + 1);
    const list = consumers.get(link.from);
    if (list) list.push(link.to);
    else consumers.set(link.from, [link.to]);
  }
  const ready = ids.filter((id) => indegree.get(id) === 0);
  const order: string[] = [];
  while (ready.length > 0) {
    const id = ready.shift() as string;
    order.push(id);
    for (const c of consumers.get(id) ?? []) {
      const d = (indegree.get(c) ?? 0) - 1;
      indegree.set(c, d);
      if (d === 0) ready.push(c);
    }
  }
  if (order.length !== ids.length) {
    const done = new Set(order);
    const stuck = ids.filter((id) => !done.has(id));
    throw new WorkflowFormatError('cycle', `workflow has a dependency cycle through nodes ${stuck.map((s) => `"${s}"`).join(', ')}`, stuck[0]);
  }
  return order;
}

/** Output class types of stock ComfyUI (and common packs), used when no object_info is at hand. */
export const KNOWN_OUTPUT_CLASS_TYPES: ReadonlySet<string> = new Set([
  'SaveImage',
  'PreviewImage',
  'SaveImageWebsocket',
  'SaveAnimatedWEBP',
  'SaveAnimatedPNG',
  'SaveWEBM',
  'SaveVideo',
  'PreviewVideo',
  'SaveAudio',
  'SaveAudioMP3',
  'SaveAudioOpus',
  'PreviewAudio',
  'SaveLatent',
  'SaveGLB',
  'Preview3D',
  'Preview3DAnimation',
  'PreviewAny',
  'SaveLoRA',
  'SaveLoRANode',
  'CheckpointSave',
  'CLIPSave',
  'VAESave',
  'ModelSave',
  'ImageOnlyCheckpointSave',
  'VHS_VideoCombine',
]);

/**
 * The ids of the workflow's output nodes, in key order. With `objectInfo`, a class is an output
 * when its definition says `output_node: true` (classes missing from it fall back to the built-in
 * list); without it, the built-in list of known output class types decides.
 */
export function outputNodeIds(workflow: ApiWorkflow, objectInfo?: ObjectInfo): string[] {
  return Object.entries(workflow)
    .filter(([, node]) => isOutputClass(node.class_type, objectInfo?.[node.class_type]))
    .map(([id]) => id);
}

function isOutputClass(classType: string, def: NodeDefinition | undefined): boolean {
  return def ? def.output_node === true : KNOWN_OUTPUT_CLASS_TYPES.has(classType);
}

/** Loader input name -> model folder (and legacy aliases), for every class. */
const INPUT_FOLDERS: Readonly<Record<string, { folder: string; aliases: string[] }>> = {
  ckpt_name: { folder: 'checkpoints', aliases: [] },
  unet_name: { folder: 'diffusion_models', aliases: ['unet'] },
  vae_name: { folder: 'vae', aliases: [] },
  lora_name: { folder: 'loras', aliases: [] },
  clip_name: { folder: 'text_encoders', aliases: ['clip'] },
  clip_name1: { folder: 'text_encoders', aliases: ['clip'] },
  clip_name2: { folder: 'text_encoders', aliases: ['clip'] },
  clip_name3: { folder: 'text_encoders', aliases: ['clip'] },
  clip_name4: { folder: 'text_encoders', aliases: ['clip'] },
  control_net_name: { folder: 'controlnet', aliases: ['t2i_adapter'] },
  style_model_name: { folder: 'style_models', aliases: [] },
  hypernetwork_name: { folder: 'hypernetworks', aliases: [] },
  gligen_name: { folder: 'gligen', aliases: [] },
};

/** Class-specific exceptions where an input name means another folder. */
function folderFor(classType: string, input: string): { folder: string; aliases: string[] } | undefined {
  if (input === 'clip_name' && classType === 'CLIPVisionLoader') return { folder: 'clip_vision', aliases: [] };
  if (input === 'model_name' && /upscale/i.test(classType)) return { folder: 'upscale_models', aliases: [] };
  return INPUT_FOLDERS[input];
}

/**
 * Model files named by literal loader inputs (`ckpt_name`, `unet_name`, `vae_name`, `lora_name`,
 * `clip_name*`, `control_net_name`, `model_name` on upscale loaders, ...), in node key order.
 * Linked values are skipped: they are only known at execution time.
 */
export function referencedModels(workflow: ApiWorkflow): ModelReference[] {
  const out: ModelReference[] = [];
  for (const [nodeId, node] of Object.entries(workflow)) {
    for (const [input, value] of Object.entries(node.inputs ?? {})) {
      if (typeof value !== 'string' || value === '') continue;
      const where = folderFor(node.class_type, input);
      if (where) out.push({ nodeId, classType: node.class_type, input, folder: where.folder, aliases: [...where.aliases], name: value });
    }
  }
  return out;
}

function hasNode(workflow: ApiWorkflow, id: string): boolean {
  return Object.prototype.hasOwnProperty.call(workflow, id);
}

/** The node with `id`, or undefined. */
export function nodeById(workflow: ApiWorkflow, id: string): WorkflowNode | undefined {
  return hasNode(workflow, id) ? workflow[id] : undefined;
}
