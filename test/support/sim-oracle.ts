/**
 * The simulator's memory behaviour as a test oracle: runs a workflow's nodes through the
 * simulator's own node behaviours and memory bookkeeping (no HTTP, no timers) and says whether it
 * fits, or the exception text it fails with. Plus the txt2img workflows the capacity tests use.
 */
import type { ApiWorkflow } from '../../src/comfy/types.js';
import { topologicalOrder, isLink } from '../../src/comfy/workflow.js';
import { AllocationError, MemoryModel as SimMemory, GiB } from '../../src/sim/memory.js';
import { BEHAVIORS, type NodeRun, type SimValue } from '../../src/sim/node-behaviors.js';

export { GiB };

/** What happened when the simulator ran `wf` on a fresh server. */
export type OracleResult = { ok: true; peakUsed: number } | { ok: false; nodeId: string; text: string; cudaOom: boolean };

/**
 * Runs `wf` on a simulated server of `vram` (device `cuda`) or `ram` (device `cpu`). Models loaded
 * earlier stay loaded when `memory` is passed in again (as on a real server between prompts).
 */
export async function runOnSim(wf: ApiWorkflow, opts: { vram?: number; ram?: number; device?: 'cuda' | 'cpu'; memory?: SimMemory } = {}): Promise<OracleResult> {
  const mem = opts.memory ?? new SimMemory(opts.device ?? 'cuda', opts.vram ?? 24 * GiB, opts.ram ?? 32 * GiB);
  const outputs = new Map<string, SimValue[]>();
  let peakUsed = 0;
  for (const id of topologicalOrder(wf)) {
    const node = wf[id]!;
    const behavior = BEHAVIORS[node.class_type];
    if (!behavior) throw new Error(`the simulator has no behaviour for ${node.class_type}`);
    const inputs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node.inputs)) inputs[k] = isLink(v) ? outputs.get(v[0])?.[v[1]] : v;
    const run: NodeRun = {
      nodeId: id,
      classType: node.class_type,
      previews: false,
      work: async () => undefined,
      progress: async () => undefined,
      gpu: (parts, activation) => {
        mem.useDevice(parts, activation);
        peakUsed = Math.max(peakUsed, mem.vramTotal - mem.vramFree() + activation);
      },
      cpu: (bytes) => mem.allocCpu(bytes),
      modelExists: () => true,
      saveImages: async () => [],
      readInput: () => undefined,
    };
    try {
      outputs.set(id, (await behavior(run, inputs)).outputs);
    } catch (e) {
      if (e instanceof AllocationError) {
        if (e.cudaOom) mem.unloadAll();
        return { ok: false, nodeId: id, text: e.message, cudaOom: e.cudaOom };
      }
      throw e;
    }
  }
  return { ok: true, peakUsed };
}

/** A stock txt2img graph: checkpoint, two prompts, empty latent, KSampler, VAEDecode, SaveImage. */
export function txt2img(opts: { ckpt?: string; width?: number; height?: number; batch?: number; steps?: number; tiled?: boolean } = {}): ApiWorkflow {
  return {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: opts.ckpt ?? 'v1-5-pruned-emaonly.ckpt' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: opts.width ?? 512, height: opts.height ?? 512, batch_size: opts.batch ?? 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: 'a lighthouse at dusk', clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry', clip: ['4', 1] } },
    '3': {
      class_type: 'KSampler',
      inputs: { seed: 1, steps: opts.steps ?? 30, cfg: 7, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] },
    },
    '8': opts.tiled
      ? { class_type: 'VAEDecodeTiled', inputs: { samples: ['3', 0], vae: ['4', 2], tile_size: 512, overlap: 64, temporal_size: 64, temporal_overlap: 8 } }
      : { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'cap', images: ['8', 0] } },
  };
}

export const SDXL = 'sd_xl_base_1.0.safetensors';
export const SD15 = 'v1-5-pruned-emaonly.ckpt';

/** The capture's allocation: EmptyImage of `size`² × `batch` saved. */
export function emptyImage(size: number, batch: number): ApiWorkflow {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: size, height: size, batch_size: batch, color: 0 } },
    '2': { class_type: 'SaveImage', inputs: { filename_prefix: 'capture_oom', images: ['1', 0] } },
  };
}
