/**
 * The job reducer: what happened to a job -> its new record and the one store write that records it.
 * Pure (no I/O, no clock: `now` is passed in), so every step of the engine is unit-tested on plain
 * data, and the writes per job are counted by reading this file: a successful one-attempt job is
 * created, started with its first attempt (one write, the prompt id is in it), and completed (one
 * write); each recovery step is one write (the failed attempt and the decision together) plus one to
 * start its attempt.
 */
import type { NodeOutput } from '../comfy/types.js';
import { degradedForJob } from '../recovery/index.js';
import type { AttemptRecord, Checkpoint, FailureDetails, JobErrorInfo, JobRecord, JobStatus, OutputRef, RecoveryStep } from './types.js';

/** One store write: a compare-and-set status change with a patch, or a patch of a job in place. */
export type Write =
  | { kind: 'transition'; from: JobStatus; to: JobStatus; patch: Partial<JobRecord> }
  | { kind: 'patch'; patch: Partial<Omit<JobRecord, 'id' | 'status'>> };

/** A new record and the write that makes the store agree with it. */
export interface Reduced {
  job: JobRecord;
  write: Write;
}

function replaceAttempt(list: readonly AttemptRecord[], a: AttemptRecord): AttemptRecord[] {
  return list.some((x) => x.number === a.number) ? list.map((x) => (x.number === a.number ? a : x)) : [...list, a];
}

/** The open recovery step (the last one, while its attempt has not ended), if any. */
export function openStep(job: JobRecord): RecoveryStep | undefined {
  const last = job.recoveryHistory.at(-1);
  return last && last.success === null ? last : undefined;
}

function withLastStep(job: JobRecord, step: RecoveryStep): RecoveryStep[] {
  return [...job.recoveryHistory.slice(0, -1), step];
}

function writeFor(job: JobRecord, to: JobStatus, patch: Partial<JobRecord>): Write {
  return job.status === to ? { kind: 'patch', patch } : { kind: 'transition', from: job.status, to, patch };
}

/**
 * An attempt is recorded (its prompt id chosen) before anything is sent: queued -> running for the
 * first, recovering -> running after a recovery step (the retry is counted), a patch when running.
 */
export function beginAttempt(job: JobRecord, attempt: AttemptRecord, now: number, degraded?: JobRecord['degraded']): Reduced {
  const step = openStep(job);
  const patch: Partial<JobRecord> = {
    attempts: replaceAttempt(job.attempts, attempt),
    server: attempt.server,
    promptId: attempt.promptId,
    updatedAt: now,
  };
  if (step) {
    // The attempt holds its workflow from now on: the step keeps where it went, not a second copy.
    const plan = step.plan ? { ...step.plan } : undefined;
    if (plan) delete plan.workflow;
    patch.recoveryHistory = withLastStep(job, { ...step, server: attempt.server, promptId: attempt.promptId, ...(plan ? { plan } : {}) });
  }
  if (job.status === 'queued') patch.startedAt = job.startedAt ?? now;
  if (job.status === 'recovering') patch.retryCount = job.retryCount + 1;
  if (degraded !== undefined && degraded !== job.degraded) patch.degraded = degraded;
  return { job: { ...job, ...patch, status: 'running' }, write: writeFor(job, 'running', patch) };
}

/** The attempt produced its outputs: running -> completed, the open step closed as a success. */
export function completeAttempt(
  job: JobRecord,
  attempt: AttemptRecord,
  result: { outputs: OutputRef[]; raw: Record<string, NodeOutput> },
  now: number,
): Reduced {
  const ended: AttemptRecord = { ...attempt, status: 'completed', endedAt: now };
  const step = openStep(job);
  const attempts = replaceAttempt(job.attempts, ended);
  // Never a silent change: what the result differs from the request by is on the job.
  const degraded = degradedForJob({ ...job, attempts }, ended);
  const patch: Partial<JobRecord> = {
    attempts,
    degraded,
    progress: 100,
    outputs: result.outputs,
    error: null,
    endedAt: now,
    updatedAt: now,
    checkpoint: { progress: 100, completedOutputs: result.raw, cacheServer: attempt.server, promptId: attempt.promptId, updatedAt: now },
    ...(step ? { recoveryHistory: withLastStep(job, { ...step, success: true, endedAt: now }) } : {}),
  };
  return { job: { ...job, ...patch, status: 'completed' }, write: writeFor(job, 'completed', patch) };
}

/**
 * The attempt failed: the record now holds its verdict and details, the open step is closed as a
 * failure, and outputs it finished join the checkpoint. No write of its own: the decision that
 * follows (a recovery step or the end) is written together with it.
 */
export function failAttempt(
  job: JobRecord,
  attempt: AttemptRecord,
  verdict: { status: AttemptRecord['status']; code: string; message: string; failure: FailureDetails; completedOutputs: Record<string, NodeOutput> },
  now: number,
): { job: JobRecord; closedStep: RecoveryStep | null } {
  const ended: AttemptRecord = { ...attempt, status: verdict.status, code: verdict.code, message: verdict.message, failure: verdict.failure, endedAt: now };
  let next: JobRecord = { ...job, attempts: replaceAttempt(job.attempts, ended), updatedAt: now };
  const step = openStep(job);
  let closedStep: RecoveryStep | null = null;
  if (step) {
    closedStep = { ...step, success: false, endedAt: now };
    next = { ...next, recoveryHistory: withLastStep(job, closedStep) };
  }
  if (Object.keys(verdict.completedOutputs).length > 0) {
    const checkpoint: Checkpoint = {
      progress: job.progress,
      completedOutputs: { ...(job.checkpoint?.completedOutputs ?? {}), ...verdict.completedOutputs },
      cacheServer: attempt.server,
      promptId: attempt.promptId,
      updatedAt: now,
    };
    next = { ...next, checkpoint };
  }
  return { job: next, closedStep };
}

/** A failure found before anything was sent closes the open step too (its attempt never existed). */
export function closeOpenStep(job: JobRecord, now: number): { job: JobRecord; closedStep: RecoveryStep | null } {
  const step = openStep(job);
  if (!step) return { job, closedStep: null };
  const closedStep = { ...step, success: false, endedAt: now };
  return { job: { ...job, recoveryHistory: withLastStep(job, closedStep) }, closedStep };
}

/** A recovery step was decided: running -> recovering with the failed attempt and the new step. */
export function openRecovery(job: JobRecord, step: RecoveryStep, opts: { workflowChanges: boolean }, now: number): Reduced {
  const patch: Partial<JobRecord> = {
    attempts: job.attempts,
    recoveryHistory: [...job.recoveryHistory, step],
    error: null,
    updatedAt: now,
    // Outputs finished by a different workflow must not be skipped by a later resume.
    ...(job.checkpoint ? { checkpoint: opts.workflowChanges ? { ...job.checkpoint, completedOutputs: {} } : job.checkpoint } : {}),
  };
  return { job: { ...job, ...patch, status: 'recovering' }, write: writeFor(job, 'recovering', patch) };
}

/** The job ends without success (failed, timed out or cancelled), with everything the attempt left. */
export function finish(job: JobRecord, to: 'failed' | 'timed_out' | 'cancelled', now: number, error: JobErrorInfo | null = null): Reduced {
  const patch: Partial<JobRecord> = {
    attempts: job.attempts,
    recoveryHistory: job.recoveryHistory,
    error,
    endedAt: now,
    updatedAt: now,
    ...(job.checkpoint ? { checkpoint: job.checkpoint } : {}),
  };
  return { job: { ...job, ...patch, status: to }, write: writeFor(job, to, patch) };
}

/**
 * A manual retry: back to queued with a fresh budget (earlier attempts stop counting), whichever
 * process runs it next reads that from the record.
 */
export function requeueForRetry(job: JobRecord, now: number): Reduced {
  const patch: Partial<JobRecord> = { error: null, endedAt: null, progress: 0, budgetBase: job.attempts.length, cancelRequestedAt: null, updatedAt: now };
  return { job: { ...job, ...patch, status: 'queued' }, write: writeFor(job, 'queued', patch) };
}

/** How many attempts and decisions count against the budget: those after the last manual retry. */
export function budgetBase(job: JobRecord): number {
  if (typeof job.budgetBase === 'number') return job.budgetBase;
  // Records written before budgetBase existed mark the manual attempt instead.
  for (let i = job.attempts.length - 1; i >= 0; i--) if (job.attempts[i]?.manual) return i;
  return 0;
}
