/**
 * A failure found before anything is sent: no server of the pool has a node type or a model the
 * workflow needs. The pool knows exactly what is missing, so this is classified from that data
 * directly — never by dressing it up as a ComfyUI validation body and parsing it back, which loses
 * names with spaces, quotes or newlines.
 */
import type { Classification } from './classify.js';
import { ERROR_REGISTRY } from './codes.js';
import { scrubText } from './scrub.js';

/** What the pool found missing for one workflow (per server, then intersected). */
export interface MissingCapability {
  /** Node types no usable server has. */
  nodeTypes: string[];
  /** Models no usable server has. */
  models: Array<{ folder: string; name: string }>;
}

/** Bounded, single-line, user-safe rendering of a name taken from user input. */
function shown(name: string): string {
  const flat = name.replace(/[\r\n\t]+/g, ' ').trim();
  return scrubText(flat.length > 80 ? `${flat.slice(0, 77)}...` : flat);
}

function listed(names: string[]): string {
  const head = names.slice(0, 5).map((n) => `'${shown(n)}'`);
  return names.length > 5 ? `${head.join(', ')} and ${names.length - 5} more` : head.join(', ');
}

/**
 * Classifies a capability that no server of the pool offers. A node type nobody has is permanent for
 * this pool (routing cannot fix it; installing the node can, so a forced retry stays possible); a model
 * nobody has stays recoverable, as a fallback model may still apply.
 */
export function classifyMissingCapability(workflow: Record<string, { class_type?: unknown }>, missing: MissingCapability): Classification | null {
  if (missing.nodeTypes.length > 0) {
    const types = missing.nodeTypes.slice(0, 50);
    const first = types[0]!;
    const nodeId = Object.entries(workflow).find(([, n]) => n?.class_type === first)?.[0];
    const info = ERROR_REGISTRY.COMFYUI_MISSING_NODE;
    return {
      code: 'COMFYUI_MISSING_NODE',
      category: 'permanent',
      retryable: false,
      message: `No server in the pool has the node type ${listed(types)}${nodeId !== undefined ? ` (node '${shown(nodeId)}')` : ''}.`,
      hint: `${info.hint} Check the spelling of class_type: it must match a node type the server lists in /object_info.`,
      ...(nodeId !== undefined ? { nodeId } : {}),
      nodeType: first,
      missingNodeTypes: types,
      confidence: 'high',
      rule: 'pool.capability.node_type',
      evidenceKind: 'none',
    };
  }
  if (missing.models.length > 0) {
    const models = missing.models.slice(0, 50);
    const info = ERROR_REGISTRY.COMFYUI_MODEL_MISSING;
    return {
      code: 'COMFYUI_MODEL_MISSING',
      category: info.category,
      retryable: info.retryable,
      message: `No server in the pool has the model ${listed(models.map((m) => `${m.folder}/${m.name}`))}.`,
      hint: info.hint,
      missingModels: models.map((m) => ({ name: m.name, folder: m.folder })),
      confidence: 'high',
      rule: 'pool.capability.model',
      evidenceKind: 'none',
    };
  }
  return null;
}
