/**
 * Property tests of the workflow patcher (src/recovery/patcher.ts) over workflows with arbitrary
 * node ids, class types and inputs, the spellings that once sent recovery into an endless loop
 * included: every patch returns a copy or null or throws a PatchError, never touches its input,
 * reports exactly what it changed, and every reduction ladder ends.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ApiWorkflow } from '../../src/comfy/types.js';
import { isPatchError } from '../../src/recovery/patch-error.js';
import { applyParams, reduceBatch, reduceResolution, reduceSteps, scaleQuality, switchModel, useTiledVae, type PatchResult } from '../../src/recovery/patcher.js';
import { deepFreeze } from '../fixtures/workflows/index.js';

const CLASS_TYPES = ['KSampler', 'KSamplerAdvanced', 'EmptyLatentImage', 'EmptySD3LatentImage', 'VAEDecode', 'VAEDecodeTiled', 'CheckpointLoaderSimple', 'UNETLoader', 'SaveImage', 'CLIPTextEncode', 'LatentUpscale', 'My Node', 'Image Save', 'a\nb'];
const INPUTS = ['width', 'height', 'batch_size', 'steps', 'cfg', 'seed', 'denoise', 'ckpt_name', 'unet_name', 'text', 'samples', 'vae', 'images', 'tile_size', 'filename_prefix'];

const nodeId = fc.oneof(fc.integer({ min: 1, max: 50 }).map(String), fc.constantFrom('a\nb', "5'", ' ', '__proto__x', '1.2', 'node:9'), fc.string({ minLength: 1, maxLength: 12 }));
const value = fc.oneof(
  fc.integer({ min: -10, max: 5_000 }),
  fc.double({ noNaN: false }),
  fc.string({ maxLength: 20 }),
  fc.constantFrom('model.safetensors', 'SDXL\\base.safetensors', 'sub/dir/x.ckpt'),
  fc.tuple(fc.integer({ min: 1, max: 50 }).map(String), fc.integer({ min: 0, max: 3 })),
  fc.constant(null),
  fc.boolean(),
);
const node = fc.record({
  class_type: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...CLASS_TYPES) }, { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 20 }) }),
  inputs: fc.dictionary(fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...INPUTS) }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) }), value, { maxKeys: 6 }),
});
const workflow: fc.Arbitrary<ApiWorkflow> = fc.dictionary(nodeId, node, { minKeys: 1, maxKeys: 8 }) as fc.Arbitrary<ApiWorkflow>;

/** Runs a patch: a result, null, or a PatchError; anything else thrown fails the property. */
function attempt(fn: () => PatchResult | null): PatchResult | null | 'patch-error' {
  try {
    return fn();
  } catch (e) {
    if (isPatchError(e)) return 'patch-error';
    throw e;
  }
}

/** Every reported change is a real difference, and every difference is reported. */
function expectExactChanges(before: ApiWorkflow, r: PatchResult): void {
  const touched = new Set(r.changes.map((c) => `${c.nodeId}\u0000${c.input}`));
  expect(Object.keys(r.workflow).sort()).toEqual(Object.keys(before).sort());
  for (const [id, after] of Object.entries(r.workflow)) {
    const b = before[id]!;
    if (after.class_type !== b.class_type) expect(touched.has(`${id}\u0000class_type`)).toBe(true);
    for (const k of new Set([...Object.keys(after.inputs), ...Object.keys(b.inputs)])) {
      if (!Object.is(after.inputs[k], b.inputs[k]) && JSON.stringify(after.inputs[k]) !== JSON.stringify(b.inputs[k])) expect(touched.has(`${id}\u0000${k}`), `${id}.${k}`).toBe(true);
    }
  }
}

const RUNS = { numRuns: 200 };

describe('workflow patcher properties', () => {
  it('never mutates its input and reports exactly what it changed, whatever the node ids and types', () => {
    fc.assert(
      fc.property(workflow, fc.double({ min: 0.05, max: 1, noNaN: true }), fc.string({ minLength: 1, maxLength: 30 }), (wf, factor, model) => {
        const frozen = deepFreeze(structuredClone(wf));
        const patches: Array<() => PatchResult | null> = [
          () => useTiledVae(frozen),
          () => reduceBatch(frozen),
          () => reduceResolution(frozen, frozen),
          () => reduceSteps(frozen, frozen),
          () => scaleQuality(frozen, factor),
          () => switchModel(frozen, model),
        ];
        for (const p of patches) {
          const r = attempt(p);
          if (r !== null && r !== 'patch-error') expectExactChanges(frozen, r);
        }
      }),
      RUNS,
    );
  });

  it('applies arbitrary params or refuses them with a PatchError, never another error', () => {
    const params = fc.dictionary(fc.oneof(fc.constantFrom('width', 'height', 'seed', 'steps', 'cfg', 'denoise', 'ckpt_name', 'prompt', 'negative_prompt', 'batch_size', '1.width', "5'.text", 'a\nb.seed'), fc.string({ maxLength: 12 })), fc.oneof(value, fc.jsonValue({ maxDepth: 2 })), { maxKeys: 4 });
    fc.assert(
      fc.property(workflow, params, (wf, p) => {
        const frozen = deepFreeze(structuredClone(wf));
        const r = attempt(() => applyParams(frozen, p as never));
        if (r !== null && r !== 'patch-error') expectExactChanges(frozen, r);
      }),
      RUNS,
    );
  });

  it('ends every reduction ladder: batch, resolution and steps stop changing within a bounded number of steps', () => {
    fc.assert(
      fc.property(workflow, (wf) => {
        const original = deepFreeze(structuredClone(wf));
        for (const step of [(w: ApiWorkflow) => reduceBatch(w), (w: ApiWorkflow) => reduceResolution(w, original), (w: ApiWorkflow) => reduceSteps(w, original)]) {
          let current = original;
          let n = 0;
          for (;;) {
            const r = attempt(() => step(current));
            if (r === null || r === 'patch-error' || r.changes.length === 0) break;
            current = r.workflow;
            n++;
            // Each step keeps at most 80%, so even Number.MAX_VALUE reaches any floor in < 3,200 steps.
            expect(n, 'a reduction ladder that never ends').toBeLessThan(4_000);
          }
        }
      }),
      RUNS,
    );
  });
});
