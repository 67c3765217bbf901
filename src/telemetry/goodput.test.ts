import { describe, expect, it } from 'vitest';
import type { GuardEvent } from '../jobs/events.js';
import type { AttemptRecord } from '../jobs/types.js';
import { GoodputAccumulator, goodputOf, goodputOfJob } from './goodput.js';

const started = (jobId: string, attempt: number, server: string): GuardEvent => ({ type: 'attempt_started', jobId, attempt, server, promptId: `${jobId}-${attempt}`, strategy: null, reattached: false, at: 0 });
const settled = (jobId: string, attempt: number, server: string, durationMs: number, code: string | null): GuardEvent => ({
  type: 'attempt_settled',
  jobId,
  attempt,
  server,
  promptId: `${jobId}-${attempt}`,
  outcome: code ? 'failed' : 'completed',
  code,
  message: null,
  durationMs,
  at: 0,
});
const comfy = (jobId: string, attempt: number, message: Extract<GuardEvent, { type: 'comfy' }>['message']): GuardEvent => ({ type: 'comfy', jobId, attempt, server: 's', promptId: `${jobId}-${attempt}`, message, at: 0 });

describe('goodputOf', () => {
  it('splits seconds into failed (by code and server) and succeeded, per job', () => {
    const r = goodputOf([
      started('j1', 1, 'small'),
      settled('j1', 1, 'small', 4000, 'COMFYUI_OOM'),
      started('j1', 2, 'big'),
      settled('j1', 2, 'big', 10_000, null),
      started('j2', 1, 'big'),
      settled('j2', 1, 'big', 2000, null),
    ]);
    expect(r.total).toEqual({ failedSeconds: 4, succeededSeconds: 12, savedSeconds: 0, attempts: 3, failedAttempts: 1 });
    expect(r.byJob['j1']).toMatchObject({ failedSeconds: 4, succeededSeconds: 10 });
    expect(r.byCode).toEqual({ COMFYUI_OOM: { failedSeconds: 4, succeededSeconds: 0, savedSeconds: 0, attempts: 1, failedAttempts: 1 } });
    expect(r.byServer['small']).toMatchObject({ failedSeconds: 4, attempts: 1 });
    expect(r.byServer['big']).toMatchObject({ succeededSeconds: 12, attempts: 2 });
  });

  it('credits a resume with the cached share of the failed attempt it follows', () => {
    const r = goodputOf([
      started('j', 1, 's'),
      settled('j', 1, 's', 8000, 'COMFYUI_CONNECTION_ERROR'),
      started('j', 2, 's'),
      comfy('j', 2, { type: 'execution_cached', data: { nodes: ['1', '2', '3'], prompt_id: 'j-2' } }),
      comfy('j', 2, { type: 'executing', data: { node: '4', prompt_id: 'j-2' } }),
      comfy('j', 2, { type: 'executing', data: { node: null, prompt_id: 'j-2' } }),
      settled('j', 2, 's', 1000, null),
    ]);
    expect(r.byJob['j']?.savedSeconds).toBe(6);
    expect(r.total.succeededSeconds).toBe(1);
  });

  it('counts nothing for a detached or cancelled attempt', () => {
    const r = goodputOf([started('j', 1, 's'), { ...(settled('j', 1, 's', 5000, null) as Extract<GuardEvent, { type: 'attempt_settled' }>), outcome: 'detached' }]);
    expect(r.total.attempts).toBe(0);
  });
});

describe('GoodputAccumulator', () => {
  it('returns what each settled attempt added, for counters', () => {
    const acc = new GoodputAccumulator({ perJob: false });
    expect(acc.observe(started('j', 1, 'small'))).toBeNull();
    expect(acc.observe(settled('j', 1, 'small', 3000, 'COMFYUI_OOM'))).toEqual({ jobId: 'j', server: 'small', code: 'COMFYUI_OOM', outcome: 'failed', seconds: 3, savedSeconds: 0 });
    acc.observe(started('j', 2, 'big'));
    expect(acc.observe(settled('j', 2, 'big', 5000, null))).toMatchObject({ code: null, outcome: 'succeeded', seconds: 5 });
    const r = acc.report();
    expect(r.byJob).toEqual({});
    expect(r.total).toMatchObject({ failedSeconds: 3, succeededSeconds: 5, attempts: 2 });
  });

  it('keeps at most maxJobs jobs, dropping the oldest', () => {
    const acc = new GoodputAccumulator({ maxJobs: 2 });
    for (const id of ['a', 'b', 'c']) {
      acc.observe(started(id, 1, 's'));
      acc.observe(settled(id, 1, 's', 1000, null));
    }
    const r = acc.report();
    expect(Object.keys(r.byJob)).toEqual(['b', 'c']);
    expect(r.total.attempts).toBe(3);
  });
});

describe('goodputOfJob', () => {
  it('splits the stored attempts into failed and succeeded seconds, ignoring running and cancelled ones', () => {
    const a = (number: number, status: AttemptRecord['status'], startedAt: number, endedAt?: number): AttemptRecord => ({ number, server: 's', promptId: `p${number}`, status, workflow: {}, startedAt, ...(endedAt !== undefined ? { endedAt } : {}) });
    expect(goodputOfJob({ attempts: [a(1, 'failed', 0, 2500), a(2, 'lost', 3000, 4000), a(3, 'completed', 5000, 9000)] })).toEqual({
      failedSeconds: 3.5,
      succeededSeconds: 4,
      savedSeconds: 0,
      attempts: 3,
      failedAttempts: 2,
    });
    expect(goodputOfJob({ attempts: [a(1, 'running', 0), a(2, 'cancelled', 0, 1000)] }).attempts).toBe(0);
  });
});
