import { describe, expect, it } from 'vitest';
import { newJobRecord, type AttemptRecord } from '../jobs/types.js';
import { SD15, txt2img } from '../../test/support/sim-oracle.js';
import { computeDegraded, degradedForJob, diffWorkflows } from './degraded.js';
import { reduceBatch, useTiledVae } from './patcher.js';

describe('computeDegraded', () => {
  it('is null when the result is what was asked, parameters included', () => {
    const wf = txt2img({ ckpt: SD15, batch: 2 });
    const ran = txt2img({ ckpt: SD15, batch: 4 });
    expect(computeDegraded({ workflow: wf, params: { batch_size: 4 } }, ran, { reason: 'x' })).toBeNull();
  });

  it('lists every output change against the request and leaves a tiled decode out', () => {
    const wf = txt2img({ ckpt: SD15, batch: 8 });
    const ran = reduceBatch(useTiledVae(wf)!.workflow)!.workflow;
    expect(computeDegraded({ workflow: wf, params: {} }, ran, { reason: 'COMFYUI_OOM on g8' })).toEqual({
      changes: [{ node: '5', input: 'batch_size', from: 8, to: 4, classType: 'EmptyLatentImage' }],
      reason: 'COMFYUI_OOM on g8',
    });
  });

  it('names replaced and added nodes', () => {
    const wf = txt2img();
    const other = { ...txt2img(), '8': { class_type: 'VAEDecodeAudio', inputs: {} }, '30': { class_type: 'Upscale', inputs: {} } };
    const inputs = diffWorkflows(wf, other).map((c) => `${c.nodeId}.${c.input}`);
    expect(inputs).toContain('8.class_type');
    expect(inputs).toContain('30.(node)');
  });

  it('takes the reason from the recovery step that made the final attempt, and keeps the degradation level', () => {
    const wf = txt2img({ batch: 8 });
    const ran = reduceBatch(wf)!.workflow;
    const attempt: AttemptRecord = { number: 2, server: 'g8', promptId: 'p2', status: 'completed', workflow: ran, startedAt: 0 };
    const job = {
      ...newJobRecord({ id: 'j', workflow: wf, now: 0 }),
      degraded: { level: 'high', factor: 0.8 },
      recoveryHistory: [{ attempt: 1, code: 'COMFYUI_OOM', strategy: 'reduce_batch' as const, changes: [], success: true, server: 'g8', promptId: 'p2', message: 'halve the batch', startedAt: 0, endedAt: 1 }],
    };
    expect(degradedForJob(job, attempt)).toMatchObject({ reason: 'COMFYUI_OOM: halve the batch', level: 'high', factor: 0.8, changes: [{ input: 'batch_size', from: 8, to: 4 }] });
  });
});
