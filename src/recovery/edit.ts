/**
 * The single place where workflow inputs are written. Every write goes through `setInput`, which
 * records an exact InputChange only when the value really changes, so change lists never lie.
 */
import type { ApiWorkflow, NodeInputValue } from '../comfy/types.js';
import type { InputChange } from '../jobs/types.js';

/** A workflow copy being edited, with the changes made so far. */
export interface Edit {
  workflow: ApiWorkflow;
  changes: InputChange[];
}

/** Starts an edit on a deep copy; the input workflow is never touched. */
export function beginEdit(wf: ApiWorkflow): Edit {
  return { workflow: structuredClone(wf), changes: [] };
}

/**
 * Sets one input and records the change. `from` is null when the input was absent (JSON has no
 * undefined, and the history must survive a round trip through the store).
 */
export function setInput(edit: Edit, nodeId: string, input: string, to: NodeInputValue): boolean {
  const node = edit.workflow[nodeId];
  if (!node) return false;
  const from = input in node.inputs ? node.inputs[input] : null;
  if (sameValue(from, to)) return false;
  node.inputs[input] = to;
  edit.changes.push({ nodeId, classType: node.class_type, input, from: from ?? null, to });
  return true;
}

/** Replaces a node's class type; recorded as a change of the pseudo-input `class_type`. */
export function setClassType(edit: Edit, nodeId: string, classType: string): boolean {
  const node = edit.workflow[nodeId];
  if (!node || node.class_type === classType) return false;
  edit.changes.push({ nodeId, classType: node.class_type, input: 'class_type', from: node.class_type, to: classType });
  node.class_type = classType;
  return true;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Rounds to the nearest multiple of 8 (latent space is 1/8 of pixel space). */
export function roundTo8(x: number): number {
  return Math.max(8, Math.round(x / 8) * 8);
}
