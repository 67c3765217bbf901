/**
 * Never a silent change: what a result differs from the request in. The request is the original
 * workflow with the job's named parameters applied; the result is what the final attempt ran.
 * Changes that keep the output (a tiled VAE decode) are not listed; everything else is: batch,
 * size, steps, model, and nodes replaced, added or removed.
 */
import type { ApiWorkflow } from '../comfy/types.js';
import type { AttemptRecord, Degraded, DegradedChange, InputChange, JobParams, JobRecord, LevelDegraded } from '../jobs/types.js';
import { compareNodeIds } from './graph.js';
import { applyParams } from './params.js';

/** Most changes listed; a replaced workflow would otherwise list every node. */
const MAX_CHANGES = 50;

/** Inputs the tiled decoder adds; they tune memory use, not the picture. */
const TILING_INPUTS = new Set(['tile_size', 'overlap', 'temporal_size', 'temporal_overlap']);

/** Every input that differs between two workflows, node by node in id order (links compared as values). */
export function diffWorkflows(from: ApiWorkflow, to: ApiWorkflow): InputChange[] {
  const ids = [...new Set([...Object.keys(from), ...Object.keys(to)])].sort(compareNodeIds);
  const out: InputChange[] = [];
  for (const id of ids) {
    const a = from[id];
    const b = to[id];
    if (!a || !b) {
      out.push({ nodeId: id, classType: (a ?? b)!.class_type, input: '(node)', from: a?.class_type ?? null, to: b?.class_type ?? null });
      continue;
    }
    if (a.class_type !== b.class_type) out.push({ nodeId: id, classType: a.class_type, input: 'class_type', from: a.class_type, to: b.class_type });
    for (const input of [...new Set([...Object.keys(a.inputs), ...Object.keys(b.inputs)])].sort()) {
      const x = a.inputs[input] ?? null;
      const y = b.inputs[input] ?? null;
      if (JSON.stringify(x) !== JSON.stringify(y)) out.push({ nodeId: id, classType: a.class_type, input, from: x, to: y });
    }
  }
  return out;
}

/** True for a change that keeps the output: VAEDecode -> VAEDecodeTiled and the tiling inputs it sets. */
export function preservesOutput(c: InputChange, to: ApiWorkflow): boolean {
  if (c.input === 'class_type') return c.from === 'VAEDecode' && c.to === 'VAEDecodeTiled';
  return TILING_INPUTS.has(c.input) && to[c.nodeId]?.class_type === 'VAEDecodeTiled' && c.from === null;
}

/** Only the changes that alter the output. */
export function outputChanges(changes: InputChange[], to: ApiWorkflow): InputChange[] {
  return changes.filter((c) => !preservesOutput(c, to));
}

/** What the user asked for: the original workflow with its named parameters applied. */
export function requestedWorkflow(workflow: ApiWorkflow, params: JobParams): ApiWorkflow {
  try {
    return applyParams(workflow, params).workflow;
  } catch {
    // Parameters that did not apply were refused at submit; compare with the workflow itself.
    return workflow;
  }
}

/**
 * The `degraded` value of a result: null when `finalWorkflow` gives the output that was asked for.
 * @example
 * computeDegraded({ workflow, params }, attempt.workflow, { reason: 'COMFYUI_OOM on gpu-8: ...' })
 * // { changes: [{ node: '5', input: 'batch_size', from: 8, to: 2, classType: 'EmptyLatentImage' }], reason: '...' }
 */
export function computeDegraded(
  request: { workflow: ApiWorkflow; params: JobParams },
  finalWorkflow: ApiWorkflow,
  why: { reason: string; level?: string; factor?: number },
): Degraded | null {
  const requested = requestedWorkflow(request.workflow, request.params);
  const changes = outputChanges(diffWorkflows(requested, finalWorkflow), finalWorkflow);
  if (changes.length === 0) return null;
  const listed: DegradedChange[] = changes.slice(0, MAX_CHANGES).map((c) => ({ node: c.nodeId, input: c.input, from: c.from, to: c.to, classType: c.classType }));
  const more = changes.length > MAX_CHANGES ? ` (${changes.length - MAX_CHANGES} more changes not listed)` : '';
  return {
    changes: listed,
    reason: why.reason + more,
    ...(why.level !== undefined ? { level: why.level } : {}),
    ...(why.factor !== undefined ? { factor: why.factor } : {}),
  };
}

/**
 * `degraded` for a job whose `finalAttempt` succeeded: the reason is the recovery step that made
 * that attempt (or the degradation level already on the job).
 */
export function degradedForJob(job: JobRecord, finalAttempt: AttemptRecord): Degraded | null {
  const step = [...job.recoveryHistory].reverse().find((s) => s.promptId === finalAttempt.promptId) ?? [...job.recoveryHistory].reverse().find((s) => s.changes.length > 0);
  const level = job.degraded && 'level' in job.degraded && job.degraded.level !== undefined ? (job.degraded as LevelDegraded) : null;
  const reason = step ? (step.message.startsWith(step.code) ? step.message : `${step.code}: ${step.message}`) : level ? `the pool's degradation level ${level.level} scaled the job (factor ${level.factor})` : 'the workflow that ran differs from the request';
  return computeDegraded({ workflow: job.workflow, params: job.params }, finalAttempt.workflow, {
    reason,
    ...(level ? { level: level.level, factor: level.factor } : {}),
  });
}

/** "node 5 batch_size 8 -> 2, node 5 width 1024 -> 816" for messages. */
export function describeDegraded(d: Degraded): string {
  return d.changes.map((c) => `node ${c.node} ${c.input} ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`).join(', ');
}
