import { describe, expect, it } from 'vitest';
import { sd15Txt2img } from '../../test/fixtures/workflows/index.js';
import { beginAttempt, budgetBase, completeAttempt, failAttempt, finish, openRecovery, requeueForRetry, type Write } from './reducer.js';
import { newJobRecord, type AttemptRecord, type JobRecord, type RecoveryStep } from './types.js';

const wf = sd15Txt2img();
const job0 = (): JobRecord => newJobRecord({ id: 'j1', workflow: wf, now: 0 });
const attempt = (number: number, server = 'a'): AttemptRecord => ({ number, server, promptId: `p${number}`, status: 'pending', workflow: wf, startedAt: number * 10 });
const step = (attemptNo: number): RecoveryStep => ({
  attempt: attemptNo,
  code: 'COMFYUI_OOM',
  strategy: 'failover',
  changes: [],
  success: null,
  server: null,
  promptId: null,
  message: 'fail over',
  startedAt: 5,
  endedAt: null,
  plan: { workflow: wf, server: { exclude: ['a'] }, delayMs: 0 },
});

describe('the job reducer', () => {
  it('records a successful one-attempt job in two writes after its creation, the prompt id in the first', () => {
    const writes: Write[] = [];
    const begun = beginAttempt(job0(), attempt(1), 10);
    writes.push(begun.write);
    expect(begun.write).toMatchObject({ kind: 'transition', from: 'queued', to: 'running', patch: { promptId: 'p1', startedAt: 10 } });
    const done = completeAttempt(begun.job, attempt(1), { outputs: [], raw: { '9': { images: [] } } }, 20);
    writes.push(done.write);
    expect(done.write).toMatchObject({ kind: 'transition', from: 'running', to: 'completed' });
    expect(done.job.attempts[0]).toMatchObject({ status: 'completed', endedAt: 20 });
    expect(done.job.progress).toBe(100);
    expect(writes).toHaveLength(2);
  });

  it('records a failure and its recovery step in one write, and the next attempt in one more', () => {
    const running = beginAttempt(job0(), attempt(1), 10).job;
    const folded = failAttempt(running, attempt(1), { status: 'failed', code: 'COMFYUI_OOM', message: 'oom', failure: { category: 'recoverable', retryable: true, nodeId: '3' }, completedOutputs: {} }, 15);
    expect(folded.closedStep).toBeNull();
    const rec = openRecovery(folded.job, step(1), { workflowChanges: false }, 16);
    expect(rec.write).toMatchObject({ kind: 'transition', from: 'running', to: 'recovering' });
    // The failed attempt's verdict and details travel in the same write as the decision.
    const patch = (rec.write as Extract<Write, { kind: 'transition' }>).patch;
    expect(patch.attempts?.[0]).toMatchObject({ status: 'failed', code: 'COMFYUI_OOM', failure: { nodeId: '3' } });
    expect(patch.recoveryHistory?.at(-1)?.plan?.server).toEqual({ exclude: ['a'] });
    const next = beginAttempt(rec.job, attempt(2, 'b'), 20);
    expect(next.write).toMatchObject({ kind: 'transition', from: 'recovering', to: 'running', patch: { retryCount: 1 } });
    // Once the attempt holds the workflow, the step no longer keeps a second copy.
    const last = next.job.recoveryHistory.at(-1)!;
    expect(last).toMatchObject({ server: 'b', promptId: 'p2' });
    expect(last.plan?.workflow).toBeUndefined();
    const done = completeAttempt(next.job, attempt(2, 'b'), { outputs: [], raw: {} }, 30);
    expect(done.job.recoveryHistory.at(-1)).toMatchObject({ success: true, endedAt: 30 });
  });

  it('closes the open step as failed when its attempt fails, and keeps finished outputs in the checkpoint', () => {
    let job = beginAttempt(job0(), attempt(1), 10).job;
    job = openRecovery(job, step(1), { workflowChanges: false }, 12).job;
    job = beginAttempt(job, attempt(2, 'b'), 14).job;
    const folded = failAttempt(job, attempt(2, 'b'), { status: 'lost', code: 'COMFYUI_CONNECTION_ERROR', message: 'gone', failure: { category: 'transient', retryable: true }, completedOutputs: { '9': { images: [] } } }, 20);
    expect(folded.closedStep).toMatchObject({ success: false, endedAt: 20 });
    expect(folded.job.checkpoint?.completedOutputs).toHaveProperty('9');
    const ended = finish(folded.job, 'failed', 21, { code: 'X', category: 'transient', message: 'm', hint: 'h', retryable: true });
    expect(ended.write).toMatchObject({ kind: 'transition', from: 'running', to: 'failed', patch: { endedAt: 21 } });
  });

  it('gives a manual retry a fresh budget that any process reads from the record', () => {
    let job = beginAttempt(job0(), attempt(1), 10).job;
    job = finish(job, 'failed', 11).job;
    const again = requeueForRetry(job, 12);
    expect(again.write).toMatchObject({ kind: 'transition', from: 'failed', to: 'queued', patch: { budgetBase: 1, error: null } });
    expect(budgetBase(again.job)).toBe(1);
    expect(budgetBase(job)).toBe(0);
  });
});
