/**
 * Builders for job records used by the store tests and the store benchmark's sanity checks.
 */
import { randomUUID } from 'node:crypto';
import type { ApiWorkflow } from '../../src/comfy/types.js';
import { newJobRecord, type AttemptRecord, type Checkpoint, type JobRecord, type RecoveryStep } from '../../src/jobs/types.js';
import type { Clock, TimerHandle } from '../../src/util/clock.js';
import { until } from '../support/wait.js';

/** A text-to-image workflow shaped like ComfyUI's default graph, with a seed above 2^32. */
export function sampleWorkflow(seed = 1125899906842597): ApiWorkflow {
  return {
    '3': {
      class_type: 'KSampler',
      inputs: { seed, steps: 20, cfg: 8, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] },
    },
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'v1-5-pruned-emaonly.safetensors' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: 512, height: 512, batch_size: 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: 'a lighthouse at dusk, "quoted", ünïcødé ✓', clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry', clip: ['4', 1] } },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'ComfyUI', images: ['8', 0] }, _meta: { title: 'Save Image' } },
  };
}

/** A queued job with every field set to something valid. */
export function makeJob(overrides: Partial<JobRecord> = {}): JobRecord {
  const createdAt = overrides.createdAt ?? 1_700_000_000_000;
  return {
    ...newJobRecord({
      id: overrides.id ?? randomUUID(),
      workflow: sampleWorkflow(),
      params: { width: 512, height: 512, seed: 1125899906842597, prompt: 'a lighthouse' },
      options: { maxRetries: 3, timeoutMs: 600_000, recovery: { COMFYUI_OOM: ['free_memory', 'reduce_batch'] } },
      now: createdAt,
    }),
    ...overrides,
  };
}

/** One attempt on `server`. */
export function makeAttempt(number: number, overrides: Partial<AttemptRecord> = {}): AttemptRecord {
  return {
    number,
    server: 'http://gpu-1:8188',
    promptId: `prompt-${number}-${randomUUID()}`,
    status: 'running',
    workflow: sampleWorkflow(),
    startedAt: 1_700_000_000_500 + number,
    ...overrides,
  };
}

/** One recovery step. */
export function makeStep(overrides: Partial<RecoveryStep> = {}): RecoveryStep {
  return {
    attempt: 1,
    code: 'COMFYUI_OOM',
    strategy: 'free_memory',
    changes: [],
    success: null,
    server: 'http://gpu-1:8188',
    promptId: null,
    message: 'freeing VRAM and retrying',
    startedAt: 1_700_000_001_000,
    endedAt: null,
    ...overrides,
  };
}

/** A checkpoint with one completed output node. */
export function makeCheckpoint(progress: number): Checkpoint {
  return {
    progress,
    completedOutputs: { '9': { images: [{ filename: 'ComfyUI_00001_.png', subfolder: '', type: 'output' }] } },
    cacheServer: 'http://gpu-1:8188',
    promptId: 'p-1',
    updatedAt: 1_700_000_002_000,
  };
}

/** A clock whose `now` the test sets; timers are real (drivers need them for their sockets). */
export class ManualClock implements Clock {
  constructor(public current = 1_800_000_000_000) {}
  now(): number {
    return this.current;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    return setTimeout(fn, ms);
  }
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  }
}

/** Polls `cond` until it holds, failing after `timeoutMs` with `what` in the message. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  await until(cond, what, { timeoutMs });
}
