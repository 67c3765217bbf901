import { describe, expect, it } from 'vitest';
import { parseParams } from '../../src/cli/run/input.js';
import { describeChanges, ProgressView, recoveryStory } from '../../src/cli/run/render.js';
import { makeAttempt, makeJob, makeStep } from '../store/fixtures.js';

describe('parseParams', () => {
  it('turns numbers, booleans and JSON into values and keeps other text as is', () => {
    expect(parseParams(['width=768', 'cfg=6.5', 'tiled=true', 'prompt=a red fox = fast', 'loras=["a","b"]'])).toEqual({
      width: 768,
      cfg: 6.5,
      tiled: true,
      prompt: 'a red fox = fast',
      loras: ['a', 'b'],
    });
  });

  it('names the bad parameter', () => {
    expect(() => parseParams(['width'])).toThrow('--param "width": expected key=value');
    expect(() => parseParams(['=3'])).toThrow('--param "=3": expected key=value');
    expect(() => parseParams(['a=1', 'a=2'])).toThrow('"a" is given twice');
    expect(() => parseParams(['x={oops'])).toThrow('--param "x={oops": the value looks like JSON');
  });
});

describe('run output', () => {
  it('tells each recovery step: what failed, what changed, how it went', () => {
    const job = makeJob({
      attempts: [makeAttempt(1, { status: 'failed', code: 'COMFYUI_OOM', message: 'CUDA out of memory. Tried to allocate 2 GiB\n(traceback)' }), makeAttempt(2, { status: 'completed' })],
      recoveryHistory: [
        makeStep({ attempt: 1, strategy: 'reduce_batch', success: true, changes: [{ nodeId: '5', classType: 'EmptyLatentImage', input: 'batch_size', from: 8, to: 4 }] }),
      ],
    });
    expect(recoveryStory(job)).toEqual([
      `  1. attempt 1 on ${job.attempts[0]!.server} failed with COMFYUI_OOM (CUDA out of memory. Tried to allocate 2 GiB); reduce_batch: node 5 EmptyLatentImage.batch_size 8 -> 4 -> attempt 2 completed`,
    ]);
    expect(describeChanges([])).toBe('');
  });

  it('explains each outcome from the attempt that followed, never with a bare "x"; attempt N is the N-th submission', () => {
    const job = makeJob({
      status: 'failed',
      // Record numbers need not be 1..N: the story counts submissions.
      attempts: [
        makeAttempt(3, { status: 'failed', code: 'COMFYUI_MODEL_MISSING', message: 'Value not in list' }),
        makeAttempt(7, { status: 'failed', code: 'COMFYUI_OOM', message: 'CUDA out of memory' }),
        makeAttempt(8, { status: 'failed', code: 'COMFYUI_OOM', message: 'CUDA out of memory' }),
      ],
      recoveryHistory: [
        makeStep({ attempt: 3, code: 'COMFYUI_MODEL_MISSING', strategy: 'switch_model', success: false }),
        makeStep({ attempt: 7, code: 'COMFYUI_OOM', strategy: 'free_memory', success: false }),
      ],
    });
    const story = recoveryStory(job);
    expect(story[0]).toMatch(/^ {2}1\. attempt 1 on \S+ failed with COMFYUI_MODEL_MISSING \(Value not in list\); switch_model -> attempt 2 got past COMFYUI_MODEL_MISSING but failed with COMFYUI_OOM$/);
    // The OOM step quotes the OOM's message, not the missing model's.
    expect(story[1]).toMatch(/^ {2}2\. attempt 2 on \S+ failed with COMFYUI_OOM \(CUDA out of memory\); free_memory -> attempt 3 failed again with COMFYUI_OOM$/);
  });

  it('prints plain progress lines every 10 % off a terminal with elapsed time, ETA and the node type, and redraws one bar on a terminal', () => {
    let plain = '';
    let now = 0;
    const v = new ProgressView((s) => (plain += s), false, { now: () => now, workflow: { '3': { class_type: 'KSampler', inputs: {} } } });
    v.attempt(1, 'gpu-1');
    for (const p of [1, 5, 12, 18, 40, 100]) {
      now += 1_000;
      v.event({ type: 'progress', jobId: 'j', progress: p, node: '3', attempt: 1, at: 0 });
    }
    v.done();
    expect(plain.trimEnd().split('\n')).toEqual([
      'attempt 1 running on gpu-1',
      'progress 1% 1.0 s elapsed, ETA 1 min 39 s (attempt 1, node 3 KSampler)',
      'progress 12% 3.0 s elapsed, ETA 22 s (attempt 1, node 3 KSampler)',
      'progress 40% 5.0 s elapsed, ETA 7.5 s (attempt 1, node 3 KSampler)',
      'progress 100% 6.0 s elapsed (attempt 1, node 3 KSampler)',
    ]);

    let steps = '';
    const st = new ProgressView((x) => (steps += x), false, { now: () => 0 });
    st.event({ type: 'comfy', jobId: 'j', attempt: 1, server: 'gpu-1', promptId: 'p', message: { type: 'progress', data: { value: 12, max: 20, node: '3' } }, at: 0 });
    st.event({ type: 'progress', jobId: 'j', progress: 55, node: '3', attempt: 1, at: 0 });
    expect(steps).toContain('progress 55% 0.0 s elapsed, ETA 0.0 s (attempt 1, node 3, step 12/20)');

    let tty = '';
    now = 0;
    const t = new ProgressView((s) => (tty += s), true, { now: () => now });
    t.attempt(2, 'gpu-2');
    now = 4_000;
    t.event({ type: 'progress', jobId: 'j', progress: 50, node: null, attempt: 2, at: 0 });
    t.done();
    expect(tty).toBe(`attempt 2 running on gpu-2\n\r[${'#'.repeat(15)}${'.'.repeat(15)}]  50%  4.0 s elapsed, ETA 4.0 s  attempt 2  on gpu-2\x1b[K\n`);
  });
});
