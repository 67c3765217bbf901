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
    expect(recoveryStory(job)).toEqual(['  1. attempt 1 failed with COMFYUI_OOM (CUDA out of memory. Tried to allocate 2 GiB); reduce_batch: node 5 EmptyLatentImage.batch_size 8 -> 4 -> succeeded']);
    expect(describeChanges([])).toBe('');
  });

  it('prints plain progress lines every 10 % off a terminal, and redraws one bar on a terminal', () => {
    let plain = '';
    const v = new ProgressView((s) => (plain += s), false);
    v.attempt(1, 'gpu-1');
    for (const p of [1, 5, 12, 18, 40, 100]) v.event({ type: 'progress', jobId: 'j', progress: p, node: '3', attempt: 1, at: 0 });
    v.done();
    expect(plain.trimEnd().split('\n')).toEqual([
      'attempt 1 running on gpu-1',
      'progress 1% (attempt 1, node 3)',
      'progress 12% (attempt 1, node 3)',
      'progress 40% (attempt 1, node 3)',
      'progress 100% (attempt 1, node 3)',
    ]);

    let tty = '';
    const t = new ProgressView((s) => (tty += s), true);
    t.event({ type: 'progress', jobId: 'j', progress: 50, node: null, attempt: 2, at: 0 });
    t.done();
    expect(tty).toBe(`\r[${'#'.repeat(15)}${'.'.repeat(15)}]  50%  attempt 2\x1b[K\n`);
  });
});
