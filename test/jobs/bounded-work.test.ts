import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { ApiWorkflow } from '../../src/comfy/types.js';
import { startRig, type Rig } from './harness.js';

let rig: Rig | null = null;
afterEach(async () => {
  await rig?.close();
  rig = null;
});

describe('the work one job can cause is bounded', () => {
  it('fails a workflow whose node type no server has, with the node named, after no attempt and a bounded history', async () => {
    rig = await startRig([{}], { maxRetries: 3 });
    const { id } = await rig.guard.submit({ 'a\nb': { class_type: 'My Node', inputs: {} } } as ApiWorkflow);
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('COMFYUI_MISSING_NODE');
    expect(job.error?.category).toBe('permanent');
    expect(job.error?.retryable).toBe(false);
    expect(job.error?.message).toContain('My Node');
    expect(job.attempts).toHaveLength(0);
    expect(job.recoveryHistory.length).toBeLessThanOrEqual(3);
    expect(job.retryCount).toBeLessThanOrEqual(3);
  });

  it('fails a custom node with a quote in its id and a space in its type the same way', async () => {
    rig = await startRig([{}, {}], { maxRetries: 3 });
    const { id } = await rig.guard.submit({ "5'": { class_type: 'Image Save', inputs: {} } } as ApiWorkflow);
    const job = await rig.guard.wait(id);
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('COMFYUI_MISSING_NODE');
    expect(job.error?.message).toContain('Image Save');
    expect(job.recoveryHistory.length).toBeLessThanOrEqual(3);
  });

  it('ends every job with unknown node ids and types in bounded steps (property)', async () => {
    rig = await startRig([{}], { maxRetries: 2 });
    const g = rig.guard;
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 12 }),
        fc.string({ minLength: 1, maxLength: 24 }).filter((t) => t.trim() !== '' && !['SaveImage', 'EmptyImage', 'ImageInvert'].includes(t)),
        async (nodeId, classType) => {
          if (nodeId === '__proto__' || nodeId === 'constructor' || nodeId === 'prototype') return;
          let id: string;
          try {
            ({ id } = await g.submit({ [nodeId]: { class_type: classType, inputs: {} } } as ApiWorkflow));
          } catch {
            return; // refused at submit time: bounded by definition
          }
          const job = await g.wait(id);
          expect(job.status).toBe('failed');
          expect(job.recoveryHistory.length).toBeLessThanOrEqual(2);
          expect(job.attempts.length).toBeLessThanOrEqual(3);
        },
      ),
      { numRuns: 40 },
    );
  });
});
