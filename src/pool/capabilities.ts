/**
 * What a server can run: its node types (`GET /object_info`) and model files (`GET /models` and
 * `/models/{folder}`), and what a workflow needs of them.
 */
import type { CallOptions, ComfyApi } from '../comfy/api.js';
import { ComfyRequestError } from '../comfy/errors.js';
import type { ApiWorkflow } from '../comfy/types.js';
import { classTypes, referencedModels } from '../comfy/workflow.js';

/** The discovered capabilities of one server. */
export interface Capabilities {
  nodeTypes: ReadonlySet<string>;
  /** folder -> file names exactly as the server lists them. */
  models: ReadonlyMap<string, readonly string[]>;
  /** folder -> names with `\` turned into `/`, for matching across OSes. */
  normalised: ReadonlyMap<string, ReadonlySet<string>>;
  discoveredAt: number;
}

/** What a workflow needs from a server. */
export interface WorkflowNeeds {
  nodeTypes: string[];
  models: Array<{ folder: string; aliases: string[]; name: string }>;
}

/** What a server lacks to run a workflow (both empty: it can). */
export interface Missing {
  nodeTypes: string[];
  models: Array<{ folder: string; name: string }>;
}

/** Windows servers list subfolders with `\`; workflows written elsewhere use `/`. */
export function normaliseModelName(name: string): string {
  return name.replace(/\\/g, '/');
}

/** The node types and model files a workflow references (literal loader inputs only). */
export function workflowNeeds(workflow: ApiWorkflow): WorkflowNeeds {
  const seen = new Set<string>();
  const models: WorkflowNeeds['models'] = [];
  for (const m of referencedModels(workflow)) {
    const key = `${m.folder}\u0000${m.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    models.push({ folder: m.folder, aliases: m.aliases, name: m.name });
  }
  return { nodeTypes: classTypes(workflow), models };
}

/** What `caps` lacks for `needs`. */
export function missingFrom(caps: Capabilities, needs: WorkflowNeeds): Missing {
  const nodeTypes = needs.nodeTypes.filter((t) => !caps.nodeTypes.has(t));
  const models = needs.models
    .filter((m) => !hasModel(caps, m.folder, m.name, m.aliases))
    .map((m) => ({ folder: m.folder, name: m.name }));
  return { nodeTypes, models };
}

/** Whether the server lists `name` in `folder` (or one of its legacy aliases). */
export function hasModel(caps: Capabilities, folder: string, name: string, aliases: readonly string[] = []): boolean {
  const wanted = normaliseModelName(name);
  for (const f of [folder, ...aliases]) if (caps.normalised.get(f)?.has(wanted)) return true;
  return false;
}

/** Builds a Capabilities value from raw lists (discovery, and fakes in tests and benchmarks). */
export function makeCapabilities(nodeTypes: Iterable<string>, models: Record<string, readonly string[]>, discoveredAt: number): Capabilities {
  const raw = new Map<string, readonly string[]>();
  const normalised = new Map<string, ReadonlySet<string>>();
  for (const [folder, names] of Object.entries(models)) {
    raw.set(folder, Object.freeze([...names]));
    normalised.set(folder, new Set(names.map(normaliseModelName)));
  }
  return { nodeTypes: new Set(nodeTypes), models: raw, normalised, discoveredAt };
}

/** Thrown when a server answers but its capability lists cannot be trusted. */
export class CapabilityDiscoveryError extends Error {
  readonly code = 'ERR_COMFYGUARD_CAPABILITIES';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CapabilityDiscoveryError';
  }
}

/**
 * Reads a server's node types and model lists. A folder that fails to list is left out (the
 * server still works for everything else); an empty `/object_info` means the server is not ready
 * (protocol facts §14) and is an error, so the previous capabilities are kept.
 */
export async function discoverCapabilities(
  client: Pick<ComfyApi, 'getObjectInfo' | 'getModelFolders' | 'getModels'>,
  opts: CallOptions & { now: () => number; folderConcurrency?: number },
): Promise<Capabilities> {
  const call: CallOptions = { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) };
  const [nodeTypes, folders] = await Promise.all([nodeTypesOf(client, call), client.getModelFolders(call)]);
  if (nodeTypes.length === 0) throw new CapabilityDiscoveryError('object_info is empty: the server is not ready or its nodes failed to load');
  const models: Record<string, string[]> = {};
  const queue = [...new Set(folders)];
  const worker = async () => {
    for (let folder = queue.shift(); folder !== undefined; folder = queue.shift()) {
      opts.signal?.throwIfAborted();
      try {
        models[folder] = await client.getModels(folder, call);
      } catch (e) {
        if (opts.signal?.aborted) throw e;
        // One unreadable folder must not hide the others; it simply lists nothing.
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.folderConcurrency ?? 4) }, worker));
  return makeCapabilities(nodeTypes, models, opts.now());
}

/**
 * The class names of `GET /object_info`. Routing needs only the names, so when one definition
 * fails the client's strict schema (a field shape this client does not expect, such as V3 nodes'
 * `null` output tooltips) the names are read from the JSON body the error carries instead of
 * making the whole server unroutable.
 */
async function nodeTypesOf(client: Pick<ComfyApi, 'getObjectInfo'>, call: CallOptions): Promise<string[]> {
  try {
    return Object.keys(await client.getObjectInfo(call));
  } catch (err) {
    if (err instanceof ComfyRequestError && err.kind === 'invalid_response' && typeof err.body === 'object' && err.body !== null && !Array.isArray(err.body)) {
      return Object.entries(err.body as Record<string, unknown>)
        .filter(([, def]) => typeof def === 'object' && def !== null)
        .map(([name]) => name);
    }
    throw err;
  }
}
