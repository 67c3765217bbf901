/**
 * Bounds on what one request body can cost: JSON nesting depth (checked on the raw text before
 * parsing, so a 5,000-deep body never reaches a recursive walk), prototype-poisoning keys, and the
 * number of nodes in a workflow (checked before schema validation, which is linear in the nodes).
 */
import { ApiError } from './api-error.js';

/** @default 64: a workflow needs about 8 levels (body, workflow, node, inputs, value, link). */
export const DEFAULT_MAX_BODY_DEPTH = 64;
/** @default 2_000: ComfyUI workflows in the wild stay well under 1,000 nodes. */
export const DEFAULT_MAX_WORKFLOW_NODES = 2_000;

/**
 * The deepest nesting of arrays and objects in a JSON text, stopping as soon as `limit` is passed.
 * Linear, no recursion; brackets inside strings do not count.
 */
export function jsonDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return max;
}

/** True when a parsed value has an own `__proto__` key, or `constructor` holding a `prototype`, at any depth. */
export function hasForbiddenKey(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
      continue;
    }
    const o = v as Record<string, unknown>;
    if (Object.prototype.hasOwnProperty.call(o, '__proto__')) return true;
    const ctor = Object.prototype.hasOwnProperty.call(o, 'constructor') ? o['constructor'] : undefined;
    if (ctor !== null && typeof ctor === 'object' && Object.prototype.hasOwnProperty.call(ctor, 'prototype')) return true;
    for (const k of Object.keys(o)) stack.push(o[k]);
  }
  return false;
}

/** Parses a JSON request body within the depth limit; `undefined` for an empty body. Throws ApiError. */
export function parseJsonBody(text: string, maxDepth: number): unknown {
  if (text.trim() === '') return undefined;
  if (jsonDepth(text, maxDepth) > maxDepth) {
    throw new ApiError(400, 'BODY_TOO_DEEP', `the request body is nested deeper than ${maxDepth} levels`, { field: 'body' });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, 'INVALID_JSON', `Body is not valid JSON: ${err instanceof Error ? err.message.slice(0, 200) : 'parse error'}`, { field: 'body', cause: err });
  }
  // Cheap substring test first: almost no body mentions either key.
  if ((text.includes('__proto__') || text.includes('constructor')) && hasForbiddenKey(value)) {
    throw new ApiError(400, 'FORBIDDEN_KEY', 'the request body has a "__proto__" or "constructor.prototype" key, which is refused', { field: 'body' });
  }
  return value;
}

/** Throws 413 WORKFLOW_TOO_LARGE when a workflow object has more than `max` nodes. */
export function checkWorkflowSize(workflow: unknown, max: number, field: string): void {
  if (workflow === null || typeof workflow !== 'object' || Array.isArray(workflow)) return;
  let n = 0;
  for (const k in workflow) {
    if (Object.prototype.hasOwnProperty.call(workflow, k) && ++n > max) {
      throw new ApiError(413, 'WORKFLOW_TOO_LARGE', `${field}: the workflow has more than ${max} nodes`, { field });
    }
  }
}
