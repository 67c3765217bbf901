/**
 * Recovery: the policy that picks each next attempt, and the workflow patcher it uses.
 * Pure data in, decision out: no I/O and no timers in this folder.
 */
export {
  applyParams,
  findNodes,
  PARAM_NAMES,
  reduceBatch,
  reduceResolution,
  reduceSteps,
  scaleQuality,
  switchModel,
  useTiledVae,
  MIN_RESOLUTION,
  MIN_STEPS,
  REDUCTION_FACTOR,
} from './patcher.js';
export type { PatchResult, TiledVaeOptions } from './patcher.js';
export { PatchError, isPatchError } from './patch-error.js';
export type { PatchErrorCode } from './patch-error.js';
export { DEFAULT_POLICY, compilePolicy, decideNext, RecoveryPolicyError } from './policy.js';
export type { DecisionInput, PolicyIssue, PoolServer, PoolView, RecoveryDecision, RecoveryPolicy, ServerConstraint } from './policy.js';
export { DEFAULT_FALLBACK_MODELS, describeChanges } from './strategies.js';
export { createMemoryModel, memoryModelFromJSON, mergeMemoryStates } from './memory-model.js';
export type { LearnedBounds, MemoryKind, MemoryModel, MemoryModelOptions, MemoryModelState, MemoryPrediction, ServerMemory } from './memory-model.js';
export { estimateWorkflow, shapeKey, FAMILY_FACTORS } from './memory-estimate.js';
export type { FamilyFactors, ModelFamily, WorkflowEstimate } from './memory-estimate.js';
export { DEFAULT_OOM_RETRIES, planOom, serverMemory } from './oom-plan.js';
export type { OomMemoryInput } from './oom-plan.js';
export { computeDegraded, degradedForJob, describeDegraded, diffWorkflows, outputChanges, requestedWorkflow } from './degraded.js';
