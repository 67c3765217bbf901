/**
 * The recovery planner: a failed attempt (or a failure found before sending) and what the pool looks
 * like -> the next attempt's plan, or the end with the error the user sees. Decided once and stored
 * with the recovery step (`step.plan`), so a restarted process, or another one on the same queue,
 * reads the plan instead of deciding again. Pure apart from the injected `now`.
 *
 * It also holds the ceiling on the work one job can cause: every decision is charged to the budget
 * (see recovery/context `retriesUsed`), and a step that would run the same workflow on the same
 * servers as an earlier step of the job is never taken twice.
 */
import { createHash } from 'node:crypto';
import type { ApiWorkflow } from '../comfy/types.js';
import type { Classification } from '../errors/index.js';
import { isErrorCode } from '../errors/codes.js';
import { decideNext, type OomMemoryInput, type PoolView, type RecoveryDecision, type RecoveryPolicy } from '../recovery/index.js';
import { budgetBase } from './reducer.js';
import type { AttemptRecord, FailureDetails, InputChange, JobErrorInfo, JobRecord, RecoveryStep, StepPlan, StrategyName } from './types.js';

/** Strategies whose repetition is the point (time passes, the server may come back); the budget bounds them. */
const REPEATABLE: ReadonlySet<StrategyName> = new Set(['retry', 'resume']);
/** Bounds on what one recovery step adds to the job record. */
const MAX_STEP_MESSAGE = 500;
const MAX_STEP_CHANGES = 50;

/** The next attempt, as the driver runs it. */
export interface PlannedAttempt {
  workflow: ApiWorkflow;
  changes: InputChange[];
  server: StepPlan['server'];
  strategy?: StrategyName;
  freeMemoryFirst?: boolean;
  partialTargets?: string[];
  /** Restart recovery: follow this already-recorded attempt instead of submitting a new one. */
  reattach?: AttemptRecord;
  manual?: boolean;
}

/** What the planner needs from the guard: its policy, budget, pool view and words. */
export interface PlannerDeps {
  policyFor(job: JobRecord): RecoveryPolicy;
  maxRetries: number;
  pool(): PoolView;
  /** Servers a constraint leaves eligible (blocked and drained ones removed), for the no-repeat check. */
  eligible(job: JobRecord, server: StepPlan['server']): string[];
  /** The backoff before retry number `n` (1-based), honouring a server's Retry-After. */
  delayMs(n: number, retryAfterMs: number | undefined): number;
  /** The user's view of a classification (rendered, scrubbed). */
  errorInfo(c: Classification, server: string | undefined): JobErrorInfo;
  now(): number;
  /** Comfyguard restarted while the job's prompt was lost: resubmitting is refused past this age. */
  maxRecoveryAgeMs: number;
  /** The OOM budget (decisions for COMFYUI_OOM, apart from maxRetries). */
  oomRetries: number;
}

/** A failure the planner decides on. `attempt` is absent for a failure found before sending. */
export interface PlannerFailure {
  attempt: AttemptRecord | null;
  classification: Classification;
  /** The prompt vanished from its server (in neither queue nor history). */
  lost: boolean;
  /** It vanished while comfyguard was down. */
  afterRestart: boolean;
  /** What the failed attempt ran, or would have run. */
  workflow: ApiWorkflow;
  server: string | null;
  /** For an OOM: the memory model (already told about this failure) and what the OOM said. */
  memory?: OomMemoryInput;
}

export type PlanResult =
  | { kind: 'end'; error: JobErrorInfo; why: string }
  | { kind: 'attempt'; step: RecoveryStep; next: PlannedAttempt; delayMs: number };

/** The details a decision needs, as stored with the attempt or step. */
export function failureDetails(c: Classification): FailureDetails {
  return {
    category: c.category,
    retryable: c.retryable,
    ...(c.nodeId !== undefined ? { nodeId: c.nodeId } : {}),
    ...(c.nodeType !== undefined ? { nodeType: c.nodeType } : {}),
    ...(c.exceptionType !== undefined ? { exceptionType: c.exceptionType } : {}),
    ...(c.missingModels?.length ? { missingModels: c.missingModels.map((m) => ({ name: m.name, ...(m.folder !== undefined ? { folder: m.folder } : {}) })) } : {}),
    ...(c.missingNodeTypes?.length ? { missingNodeTypes: [...c.missingNodeTypes] } : {}),
    ...(c.retryAfterMs !== undefined ? { retryAfterMs: c.retryAfterMs } : {}),
    confidence: c.confidence,
  };
}

/** Decides what follows a failure. Never throws: a policy bug ends the job with INTERNAL_ERROR words. */
export function planRecovery(job: JobRecord, failure: PlannerFailure, deps: PlannerDeps): PlanResult {
  const c = failure.classification;
  const server = failure.server || undefined;
  if (failure.lost && failure.afterRestart && deps.now() - job.createdAt > deps.maxRecoveryAgeMs) {
    return {
      kind: 'end',
      why: 'expired while comfyguard was down',
      error: {
        code: 'COMFYUI_TIMEOUT',
        category: 'transient',
        message: 'The job expired while comfyguard was down: the server no longer knows its prompt and the job is older than the maximum recovery age.',
        hint: 'Submit it again; raise maxRecoveryAgeMs to resubmit older jobs automatically after a restart.',
        retryable: true,
        ...(server ? { server } : {}),
      },
    };
  }
  const code = isErrorCode(c.code) ? c.code : 'INTERNAL_ERROR';
  // A failure found before sending has no attempt record: decide as if an attempt with the next number had failed.
  const failedAttempt: AttemptRecord = failure.attempt ?? {
    number: job.attempts.length + 1,
    server: failure.server ?? '',
    promptId: '',
    status: 'failed',
    workflow: failure.workflow,
    startedAt: deps.now(),
  };
  let decision: RecoveryDecision;
  try {
    decision = decideNext({
      code,
      classification: c,
      job,
      failedAttempt,
      pool: deps.pool(),
      policy: deps.policyFor(job),
      maxRetries: (job.options.maxRetries ?? deps.maxRetries) + budgetBase(job),
      ...(failure.memory && code === 'COMFYUI_OOM' ? { memory: failure.memory, oomRetries: deps.oomRetries } : {}),
    });
  } catch (err) {
    return { kind: 'end', why: `the recovery policy failed: ${err instanceof Error ? err.message : String(err)}`, error: deps.errorInfo(c, server) };
  }
  if (decision.action === 'abort') {
    const error = deps.errorInfo(c, server);
    if (decision.refused === undefined) return { kind: 'end', why: decision.reason, error };
    // The user asked for the exact result: say which change would have run it, so they can choose.
    return {
      kind: 'end',
      why: decision.reason,
      error: {
        ...error,
        message: `${error.message} Quality "exact" refused the change that would have run it: ${decision.refused}.`,
        hint: `Submit it without quality "exact" to accept that change (the result then lists it in degraded). ${error.hint}`,
      },
    };
  }

  const fingerprint = stepFingerprint(decision, deps.eligible(job, decision.server));
  if (!REPEATABLE.has(decision.strategy) && job.recoveryHistory.some((s) => s.fingerprint === fingerprint)) {
    return { kind: 'end', why: `${decision.strategy} would repeat an earlier step unchanged`, error: deps.errorInfo(c, server) };
  }
  const delayMs = decision.useBackoff ? deps.delayMs(job.retryCount + 1, c.retryAfterMs) : 0;
  const plan: StepPlan = {
    workflow: decision.workflow,
    server: decision.server,
    delayMs,
    ...(decision.freeMemoryFirst ? { freeMemoryFirst: true } : {}),
    ...(decision.partialTargets ? { partialTargets: decision.partialTargets } : {}),
  };
  const now = deps.now();
  const step: RecoveryStep = {
    attempt: failedAttempt.number,
    code: c.code,
    strategy: decision.strategy,
    changes: decision.changes.slice(0, MAX_STEP_CHANGES),
    success: null,
    server: null,
    promptId: null,
    message: decision.message.length > MAX_STEP_MESSAGE ? `${decision.message.slice(0, MAX_STEP_MESSAGE - 3)}...` : decision.message,
    startedAt: now,
    endedAt: null,
    fingerprint,
    plan,
    ...(failure.attempt ? {} : { failure: failureDetails(c) }),
  };
  return { kind: 'attempt', step, next: plannedFromStep(step, decision.workflow), delayMs };
}

/** The attempt a stored step decided on (after a restart: read, not re-decided). */
export function plannedFromStep(step: RecoveryStep, fallbackWorkflow: ApiWorkflow): PlannedAttempt {
  const plan = step.plan;
  return {
    workflow: plan?.workflow ?? fallbackWorkflow,
    changes: step.changes,
    strategy: step.strategy,
    server: plan?.server ?? {},
    ...(plan?.freeMemoryFirst ? { freeMemoryFirst: true } : {}),
    ...(plan?.partialTargets ? { partialTargets: plan.partialTargets } : {}),
  };
}

/** Hash of what a step would run: the workflow and the servers it may go to. */
export function stepFingerprint(decision: Extract<RecoveryDecision, { action: 'attempt' }>, eligible: string[]): string {
  return createHash('sha256')
    .update(decision.strategy)
    .update('\u0000')
    .update(JSON.stringify(decision.workflow))
    .update('\u0000')
    .update([...eligible].sort().join('\u0000'))
    .update(decision.freeMemoryFirst ? '\u0000free' : '')
    .digest('base64url')
    .slice(0, 22);
}
