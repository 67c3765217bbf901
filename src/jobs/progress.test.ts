import { describe, expect, it } from 'vitest';
import { ProgressTracker } from './progress.js';
import type { ApiWorkflow } from '../comfy/types.js';

const wf: ApiWorkflow = {
  '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'a.safetensors' } },
  '5': { class_type: 'EmptyLatentImage', inputs: { width: 512, height: 512, batch_size: 1 } },
  '3': { class_type: 'KSampler', inputs: { steps: 20, model: ['4', 0], latent_image: ['5', 0] } },
  '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
  '9': { class_type: 'SaveImage', inputs: { images: ['8', 0] } },
};

describe('ProgressTracker', () => {
  it('weights sampler steps above plain nodes and never reaches 100 before success', () => {
    const t = new ProgressTracker(wf);
    t.executing('4');
    t.executing('5');
    const beforeSampler = t.executing('3');
    const halfway = t.step('3', 10, 20);
    expect(halfway).toBeGreaterThan(beforeSampler + 20);
    t.executing('8');
    t.executing('9');
    expect(t.finished('9')).toBe(99);
    expect(t.complete()).toBe(100);
  });

  it('excludes cached nodes so a partly cached run still spans the whole range', () => {
    const t = new ProgressTracker(wf);
    expect(t.cached(['4', '5', '3'])).toBe(0);
    t.executing('8');
    expect(t.finished('8')).toBeGreaterThanOrEqual(70);
  });

  it('is monotonic even when a snapshot reports less', () => {
    const t = new ProgressTracker(wf);
    t.executing('3');
    const high = t.step('3', 15, 20);
    const after = t.snapshot({ '3': { value: 2, max: 20, state: 'running', node_id: '3', prompt_id: 'p' } });
    expect(after).toBe(high);
  });

  it('ignores step events without a node or with a zero max', () => {
    const t = new ProgressTracker(wf);
    expect(t.step(null, 1, 2)).toBe(0);
    expect(t.step('3', 1, 0)).toBe(0);
  });
});
