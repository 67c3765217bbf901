/**
 * An in-memory ComfyApi for pool tests and the routing benchmark: it answers the calls the pool
 * makes (system stats, queue depth, object_info, model lists) from plain fields, counts them, and
 * can be switched down. Job submission is not modelled: the simulator does that over real sockets.
 */
import type { CallOptions, ComfyApi, RouteRequest, RouteResponse } from '../comfy/api.js';
import { ComfyRequestError } from '../comfy/errors.js';
import type { ApiWorkflow, HistoryMap, NodeDefinition, ObjectInfo, PromptResponse, QueueState, SystemStats, UploadResult } from '../comfy/types.js';

/** The state a FakeComfyApi answers from; change it at any time. */
export interface FakeServerState {
  up: boolean;
  version: string;
  vramTotal: number;
  vramFree: number;
  queueRemaining: number;
  nodeTypes: string[];
  models: Record<string, string[]>;
}

const GiB = 2 ** 30;

/** Node types of a stock ComfyUI that the usual text-to-image workflow needs. */
export const STOCK_NODE_TYPES = ['CheckpointLoaderSimple', 'CLIPTextEncode', 'EmptyLatentImage', 'KSampler', 'VAEDecode', 'SaveImage', 'LoraLoader', 'VAELoader'];

/** A ComfyApi backed by a FakeServerState. */
export class FakeComfyApi implements ComfyApi {
  readonly baseUrl: string;
  readonly name: string;
  readonly state: FakeServerState;
  readonly calls: Record<string, number> = {};
  closed = false;

  constructor(name: string, state: Partial<FakeServerState> = {}) {
    this.name = name;
    this.baseUrl = `http://fake.invalid/${name}`;
    this.state = {
      up: true,
      version: '0.3.64',
      vramTotal: 8 * GiB,
      vramFree: 6 * GiB,
      queueRemaining: 0,
      nodeTypes: [...STOCK_NODE_TYPES],
      models: { checkpoints: ['sd15.safetensors'], loras: [], vae: [] },
      ...state,
    };
  }

  async getSystemStats(opts?: CallOptions): Promise<SystemStats> {
    this.#count('getSystemStats', opts);
    return {
      system: { os: 'posix', comfyui_version: this.state.version },
      devices: [{ name: 'cuda:0 fake', type: 'cuda', index: 0, vram_total: this.state.vramTotal, vram_free: this.state.vramFree, torch_vram_total: 0, torch_vram_free: 0 }],
    };
  }

  async getPromptStatus(opts?: CallOptions): Promise<{ exec_info: { queue_remaining: number } }> {
    this.#count('getPromptStatus', opts);
    return { exec_info: { queue_remaining: this.state.queueRemaining } };
  }

  async getObjectInfo(opts?: CallOptions): Promise<ObjectInfo> {
    this.#count('getObjectInfo', opts);
    return Object.fromEntries(this.state.nodeTypes.map((t) => [t, nodeDefinition(t)]));
  }

  async getNodeInfo(classType: string, opts?: CallOptions): Promise<ObjectInfo> {
    this.#count('getNodeInfo', opts);
    return this.state.nodeTypes.includes(classType) ? { [classType]: nodeDefinition(classType) } : {};
  }

  async getModelFolders(opts?: CallOptions): Promise<string[]> {
    this.#count('getModelFolders', opts);
    return Object.keys(this.state.models);
  }

  async getModels(folder: string, opts?: CallOptions): Promise<string[]> {
    this.#count('getModels', opts);
    const list = this.state.models[folder];
    if (!list) throw new ComfyRequestError({ kind: 'http', status: 404, message: `GET /models/${folder}: 404`, server: this.name });
    return [...list];
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  submitPrompt(): Promise<PromptResponse> {
    return this.#unsupported('submitPrompt');
  }
  getQueue(): Promise<QueueState> {
    return this.#unsupported('getQueue');
  }
  deleteFromQueue(): Promise<void> {
    return this.#unsupported('deleteFromQueue');
  }
  clearQueue(): Promise<void> {
    return this.#unsupported('clearQueue');
  }
  getHistory(): Promise<HistoryMap> {
    return this.#unsupported('getHistory');
  }
  getAllHistory(): Promise<HistoryMap> {
    return this.#unsupported('getAllHistory');
  }
  deleteHistory(): Promise<void> {
    return this.#unsupported('deleteHistory');
  }
  clearHistory(): Promise<void> {
    return this.#unsupported('clearHistory');
  }
  interrupt(): Promise<void> {
    return this.#unsupported('interrupt');
  }
  free(): Promise<void> {
    return this.#unsupported('free');
  }
  view(): Promise<{ contentType: string; data: Uint8Array }> {
    return this.#unsupported('view');
  }
  uploadImage(): Promise<UploadResult> {
    return this.#unsupported('uploadImage');
  }
  /** No custom routes here: every one answers 404, like a ComfyUI without the custom node. */
  async send(req: RouteRequest, opts?: CallOptions): Promise<RouteResponse> {
    this.#count('send', opts);
    throw new ComfyRequestError({ kind: 'http', status: 404, message: `${req.method} ${req.path}: HTTP 404 Not Found`, server: this.name, method: req.method, path: req.path });
  }

  #count(method: string, opts?: CallOptions): void {
    this.calls[method] = (this.calls[method] ?? 0) + 1;
    opts?.signal?.throwIfAborted();
    if (!this.state.up) {
      throw new ComfyRequestError({ kind: 'transport', transportCode: 'ECONNREFUSED', message: `connect ECONNREFUSED (${this.name})`, server: this.name });
    }
  }

  #unsupported(method: string): Promise<never> {
    return Promise.reject(new ComfyRequestError({ kind: 'invalid_response', message: `FakeComfyApi does not model ${method}`, server: this.name }));
  }
}

function nodeDefinition(name: string): NodeDefinition {
  return {
    input: { required: {} },
    output: [],
    output_is_list: [],
    output_name: [],
    name,
    display_name: name,
    description: '',
    python_module: 'nodes',
    category: 'fake',
    output_node: name === 'SaveImage',
  };
}

/** The usual text-to-image workflow (API format) with the given checkpoint. */
export function txt2img(ckpt = 'sd15.safetensors', extra: { lora?: string; nodeType?: string } = {}): ApiWorkflow {
  const wf: ApiWorkflow = {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: ckpt } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: 512, height: 512, batch_size: 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: 'a cat', clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry', clip: ['4', 1] } },
    '3': {
      class_type: 'KSampler',
      inputs: { seed: 1, steps: 20, cfg: 7, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] },
    },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'out', images: ['8', 0] } },
  };
  if (extra.lora) wf['10'] = { class_type: 'LoraLoader', inputs: { lora_name: extra.lora, strength_model: 1, strength_clip: 1, model: ['4', 0], clip: ['4', 1] } };
  if (extra.nodeType) wf['11'] = { class_type: extra.nodeType, inputs: {} };
  return wf;
}
