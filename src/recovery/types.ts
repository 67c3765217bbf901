/**
 * The recovery layer's plain-data types (the compiled policy, what the engine tells it, what it
 * decides), apart from the code so that `policy`, `decide`, `context` and `strategies` share them
 * without importing each other.
 */
import type { ApiWorkflow } from '../comfy/types.js';
import type { ErrorCode } from '../errors/codes.js';
import type { AttemptRecord, InputChange, JobRecord, StrategyName } from '../jobs/types.js';
import type { MemoryModel } from './memory-model.js';

/** A compiled policy: every code has a non-empty strategy list. Frozen. */
export type RecoveryPolicy = Readonly<Record<ErrorCode, readonly StrategyName[]>>;

/** What the engine tells the policy about its servers (plain data). */
export interface PoolView {
  servers: Array<{
    name: string;
    healthy: boolean;
    breakerOpen: boolean;
    vramTotal: number | null;
    vramFree: number | null;
    /** folder -> file names, as `GET /models/{folder}` lists them; null when unknown. */
    models: Record<string, string[]> | null;
    /** Installed class types; null when unknown. */
    nodeTypes: string[] | null;
    /** ComfyUI >= 0.3.48 (`partial_execution_targets`). */
    supportsPartialTargets: boolean;
    /** `/system_stats` devices[0].type (`cuda`, `cpu`, `mps`...); absent/null when unknown. */
    device?: string | null;
    /** `/system_stats` system.ram_total; absent/null when unknown. */
    ramTotal?: number | null;
  }>;
}

/** One server of a PoolView. */
export type PoolServer = PoolView['servers'][number];

/** Everything `decideNext` needs; all of it plain, persisted data. */
export interface DecisionInput {
  code: ErrorCode;
  classification: {
    retryable: boolean;
    missingModels?: Array<{ name: string; folder?: string }>;
    missingNodeTypes?: string[];
    nodeId?: string;
    /** The classifier's confidence; a `low` permanent verdict gets one retry (decide.ts). Absent: high. */
    confidence?: 'high' | 'low';
  };
  /** Includes the original workflow, params, options (fallbackModels, fallbackWorkflows), attempts, recoveryHistory. */
  job: JobRecord;
  /** The attempt that just failed; its workflow is what ran. */
  failedAttempt: AttemptRecord;
  pool: PoolView;
  policy: RecoveryPolicy;
  /** Resolved budget: attempts after the first. */
  maxRetries: number;
  /** Output node ids of the failed attempt's workflow, when the engine knows them from object_info. */
  outputNodes?: string[];
  /**
   * The memory model and what the OOM showed. With it, COMFYUI_OOM is planned in one step
   * (oom-plan.ts) and charged to `oomRetries` instead of `maxRetries`.
   */
  memory?: OomMemoryInput;
  /** Resolved OOM budget: recovery decisions for COMFYUI_OOM after the first attempt (only with `memory`). @default 2 */
  oomRetries?: number;
}

/** Where the next attempt may run. */
export interface ServerConstraint {
  /** Try this server first (its cache, or the memory just freed). */
  prefer?: string;
  /** Never these. */
  exclude?: string[];
  /**
   * Only these servers, best first: the ones that had what the step needs (the missing model or
   * node type, more VRAM) when the decision was made. Absent when any server will do.
   */
  require?: string[];
  /** The model names that made `require` (for messages and for an engine that re-checks). */
  requireModels?: string[];
  /** The class types that made `require`. */
  requireNodeTypes?: string[];
  /** The step is about more VRAM than this server has. */
  moreVramThan?: string;
}

/** What to do after a failed attempt. */
export type RecoveryDecision =
  | {
      action: 'attempt';
      strategy: StrategyName;
      workflow: ApiWorkflow;
      changes: InputChange[];
      server: ServerConstraint;
      /** The engine calls POST /free on the target before submitting. */
      freeMemoryFirst?: boolean;
      /** resume: only these output nodes. */
      partialTargets?: string[];
      /** The engine waits the retry policy's delay first. */
      useBackoff: boolean;
      /** Plain words, for the recovery history. */
      message: string;
    }
  | {
      action: 'abort';
      reason: string;
      /** Set when `quality: 'exact'` refused the change that would have helped: that change, in words (for the user's error). */
      refused?: string;
    };

/** What the engine passes so an OOM can be planned with the memory model. */
export interface OomMemoryInput {
  /** The model (after `observeOom` for the failure being decided). */
  model: Pick<MemoryModel, 'predict'>;
  /** The OOM's exception text (torch's or the CPU allocator's message), when known. */
  oomText?: string;
  /**
   * Bytes other workflows' models held on the failed server when the attempt started (vram_total
   * minus vram_free before submit, minus what an idle server holds); 0 or absent when none.
   */
  residentBytes?: number;
}
