/**
 * The job model: plain serialisable data, so any store can persist it and a restarted process can
 * rebuild everything from a row. No I/O here.
 */
import type { ApiWorkflow, NodeOutput } from '../comfy/types.js';

export const JOB_STATUSES = ['queued', 'running', 'recovering', 'completed', 'failed', 'timed_out', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['completed', 'failed', 'timed_out', 'cancelled']);

/** True for completed, failed, timed_out and cancelled. */
export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

/** Names of the recovery strategies, as written in the recovery history and configuration. */
export const STRATEGY_NAMES = [
  'retry',
  'failover',
  'free_memory',
  'tiled_vae',
  'reduce_batch',
  'reduce_resolution',
  'reduce_steps',
  'switch_model',
  'fallback_workflow',
  'resume',
  'abort',
] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** Named parameters that map onto workflow nodes (see recovery/patcher). */
export interface JobParams {
  width?: number;
  height?: number;
  batch_size?: number;
  steps?: number;
  cfg?: number;
  seed?: number;
  denoise?: number;
  ckpt_name?: string;
  prompt?: string;
  negative_prompt?: string;
  [name: string]: unknown;
}

/** Per-code override of the strategy list, e.g. `{ COMFYUI_OOM: ['free_memory', 'reduce_batch'] }`. */
export type RecoveryOverrides = Partial<Record<string, StrategyName[]>>;

/** What a user passes with a job. Everything optional; defaults come from the guard's options. */
export interface JobOptions {
  /** Retries after the first attempt. @default guard's maxRetries (3) */
  maxRetries?: number;
  /** Total budget for the job from submit to terminal state. @default 600_000 */
  timeoutMs?: number;
  /** Generation timeout of one attempt (submit to terminal event). @default 300_000 */
  generationTimeoutMs?: number;
  /** HTTP request timeout. @default 30_000 */
  requestTimeoutMs?: number;
  /** No event and no queue movement for this long while running = stalled. @default 60_000 */
  stallTimeoutMs?: number;
  recovery?: RecoveryOverrides;
  /** Checkpoint names to try, in order, when the model is missing. */
  fallbackModels?: string[];
  /** Whole workflows to try, in order, when every other strategy is exhausted. */
  fallbackWorkflows?: ApiWorkflow[];
  /** Higher runs first. @default 0 */
  priority?: number;
  idempotencyKey?: string;
  webhookUrl?: string;
  /** Let the pool's degradation level scale resolution/steps/batch. @default false */
  allowDegradation?: boolean;
  /** Only use servers with all of these tags. */
  serverTags?: string[];
  /**
   * `exact`: recovery may only make changes that keep the output (failover, free memory, tiled
   * VAE); anything else (batch, size, steps, model, workflow) fails the job naming the refused
   * change. `any`: such changes are allowed and listed in `degraded`. @default 'any'
   */
  quality?: JobQuality;
}

export const JOB_QUALITIES = ['exact', 'any'] as const;
export type JobQuality = (typeof JOB_QUALITIES)[number];

/** One input whose value in the result differs from the request. */
export interface DegradedChange {
  node: string;
  /** The input name, or `class_type` when the node itself was replaced, or `(node)` when added/removed. */
  input: string;
  from: unknown;
  to: unknown;
  /** The node's class type in the request (absent for added nodes). */
  classType?: string;
}

/** How a result differs from what was asked: every changed input, and why. */
export interface Degraded {
  changes: DegradedChange[];
  reason: string;
  /** The pool's degradation level, when that made the change. */
  level?: string;
  factor?: number;
}

/**
 * The level-only form written before `degraded` listed its changes (still written by the engine's
 * degradation-level path until it calls `computeDegraded`); readers accept both.
 */
export interface LevelDegraded {
  level: string;
  factor: number;
}

/** One input changed by a recovery strategy or the degradation level. */
export interface InputChange {
  nodeId: string;
  classType: string;
  input: string;
  from: unknown;
  to: unknown;
}

export type AttemptStatus = 'pending' | 'submitted' | 'running' | 'completed' | 'failed' | 'interrupted' | 'lost' | 'cancelled';

/**
 * What the classifier found out about a failure, kept with the attempt (or the recovery step, for a
 * failure found before sending) so that a restarted process, or another one sharing the queue,
 * decides from it instead of re-deriving it.
 */
export interface FailureDetails {
  category: string;
  retryable: boolean;
  nodeId?: string;
  nodeType?: string;
  exceptionType?: string;
  missingModels?: Array<{ name: string; folder?: string }>;
  missingNodeTypes?: string[];
  retryAfterMs?: number;
  /** The classifier's confidence in its verdict (a low-confidence permanent verdict gets one retry). */
  confidence?: 'high' | 'low';
}

/** Where and how the attempt after a recovery step runs: decided once, stored with the step. */
export interface StepPlan {
  /** The next attempt's workflow; kept only until that attempt is recorded (it then holds it). */
  workflow?: ApiWorkflow;
  server: { prefer?: string; exclude?: string[]; require?: string[]; moreVramThan?: string };
  freeMemoryFirst?: boolean;
  partialTargets?: string[];
  /** The backoff decided before the next attempt. */
  delayMs: number;
}

/** One submission of one concrete workflow to one server under one prompt id. */
export interface AttemptRecord {
  number: number;
  server: string;
  /** Chosen and persisted before submitting. */
  promptId: string;
  status: AttemptStatus;
  /** The exact workflow this attempt ran. */
  workflow: ApiWorkflow;
  /** The strategy that produced this attempt (absent for the first). */
  strategy?: StrategyName;
  changes?: InputChange[];
  /** Output nodes this attempt was limited to (resume with partial execution). */
  partialTargets?: string[];
  /** The first attempt after a manual retry: earlier attempts no longer count against the budget. */
  manual?: boolean;
  code?: string;
  message?: string;
  /** The classification's details, for decisions made from the record. */
  failure?: FailureDetails;
  startedAt: number;
  endedAt?: number;
}

/** One recovery decision and how it turned out. */
export interface RecoveryStep {
  /** The attempt that failed and triggered this step. */
  attempt: number;
  code: string;
  strategy: StrategyName;
  changes: InputChange[];
  /** null while the resulting attempt runs. */
  success: boolean | null;
  server: string | null;
  promptId: string | null;
  message: string;
  startedAt: number;
  endedAt: number | null;
  /** What the step would run (workflow and eligible servers), hashed: a step is never taken twice unchanged. */
  fingerprint?: string;
  /** The decided plan; after a restart the next attempt is read from here, never re-decided. */
  plan?: StepPlan;
  /** Details of a failure found before sending (no attempt record holds them). */
  failure?: FailureDetails;
}

/** An output file produced by a job. */
export interface OutputRef {
  node: string;
  filename: string;
  subfolder: string;
  type: string;
  /** Download URL through comfyguard. */
  url: string;
  server: string;
}

/** What the user sees of a failure (rendered from a ComfyGuardError). */
export interface JobErrorInfo {
  code: string;
  category: string;
  message: string;
  hint: string;
  retryable: boolean;
  nodeId?: string;
  nodeType?: string;
  server?: string;
}

/** Enough to resume: the last progress, finished outputs, and the server whose cache holds them. */
export interface Checkpoint {
  progress: number;
  completedOutputs: Record<string, NodeOutput>;
  cacheServer: string | null;
  promptId: string | null;
  updatedAt: number;
}

/** A job as stored. */
export interface JobRecord {
  id: string;
  status: JobStatus;
  /** The original workflow, never modified. */
  workflow: ApiWorkflow;
  /** The original named parameters, never modified. */
  params: JobParams;
  options: JobOptions;
  priority: number;
  idempotencyKey: string | null;
  /** 0..100 */
  progress: number;
  /** Server and prompt id of the current (or last) attempt. */
  server: string | null;
  promptId: string | null;
  attempts: AttemptRecord[];
  recoveryHistory: RecoveryStep[];
  retryCount: number;
  outputs: OutputRef[];
  error: JobErrorInfo | null;
  checkpoint: Checkpoint | null;
  /** Attempts made before the last manual retry: they do not count against the retry budget. */
  budgetBase?: number;
  /** Set by `cancel()` from any process; whichever process runs the job honours it. */
  cancelRequestedAt?: number | null;
  /** Set when the result differs from the request (recovery changes, degradation level); null otherwise. */
  degraded: Degraded | LevelDegraded | null;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  endedAt: number | null;
}

/** A fresh queued job with no attempts yet; priority and idempotencyKey come from `options`. */
export function newJobRecord(init: { id: string; workflow: ApiWorkflow; params?: JobParams; options?: JobOptions; now: number }): JobRecord {
  const options = init.options ?? {};
  return {
    id: init.id,
    status: 'queued',
    workflow: init.workflow,
    params: init.params ?? {},
    options,
    priority: options.priority ?? 0,
    idempotencyKey: options.idempotencyKey ?? null,
    progress: 0,
    server: null,
    promptId: null,
    attempts: [],
    recoveryHistory: [],
    retryCount: 0,
    outputs: [],
    error: null,
    checkpoint: null,
    degraded: null,
    createdAt: init.now,
    updatedAt: init.now,
    startedAt: null,
    endedAt: null,
  };
}
