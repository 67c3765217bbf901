/**
 * `decideNext`: walks the policy's strategy list for the failure's code and returns the first
 * strategy that applies, or an abort with the reason. Pure and deterministic: the same persisted
 * job and pool view always give the same decision.
 */
import { ERROR_REGISTRY, type ErrorCode } from '../errors/codes.js';
import type { StrategyName } from '../jobs/types.js';
import { buildContext, retriesUsed, serverHasModel, timesUsed, type DecisionContext } from './context.js';
import { outputChanges } from './degraded.js';
import { DEFAULT_OOM_RETRIES, planOom } from './oom-plan.js';
import type { DecisionInput, RecoveryDecision } from './types.js';
import { describeChanges, plan } from './strategies.js';

/**
 * Strategies that do not make progress by themselves: the k-th time one is listed allows its k-th
 * use for the code (`['retry', 'failover', 'retry']` = retry, fail over, retry again). The others
 * progress on their own (next server, next model, smaller batch) and say when they are exhausted.
 */
const COUNTED: ReadonlySet<StrategyName> = new Set(['retry', 'resume']);

/** Strategies that change what the job produces: refused under `quality: 'exact'`. */
const CHANGES_OUTPUT: ReadonlySet<StrategyName> = new Set(['reduce_batch', 'reduce_resolution', 'reduce_steps', 'switch_model', 'fallback_workflow']);

/** OOM decisions since the last manual retry: charged to the OOM budget when the memory model plans them. */
function oomDecisions(ctx: DecisionContext): number {
  return ctx.prior.filter((s) => s.code === 'COMFYUI_OOM').length;
}

/**
 * Transient codes whose `retry` may repeat, once nothing else in the list applies, until the budget
 * is spent (a lone server that restarts or sheds load comes back). Not GENERATION_ERROR ("retry
 * once") nor SERVER_ERROR (ComfyUI's text 500 repeats for the same request).
 */
function retryRepeats(code: ErrorCode): boolean {
  return ERROR_REGISTRY[code].category === 'transient' && code !== 'COMFYUI_GENERATION_ERROR' && code !== 'COMFYUI_SERVER_ERROR';
}

/**
 * Chooses what the next attempt of a job is after `failedAttempt` failed with `code`.
 * - Permanent/fatal codes (policy `['abort']`) abort at once, except that a permanent verdict the
 *   classifier marked `confidence: 'low'` gets ONE retry first (its evidence is shared with other
 *   causes; a second failure with the same code aborts).
 * - At most `maxRetries` attempts after the first; when spent, abort naming the last code.
 * - The code's strategies are tried in order; the first that applies wins. History is read from
 *   `job.recoveryHistory` and `job.attempts`, never from memory.
 * @example
 * const d = decideNext({ code: 'COMFYUI_OOM', classification, job, failedAttempt, pool, policy, maxRetries: 3 });
 * if (d.action === 'attempt') runAttempt(d.workflow, d.server);
 */
export function decideNext(input: DecisionInput): RecoveryDecision {
  const { code, policy, maxRetries } = input;
  const list = policy[code] ?? ['abort'];
  const info = ERROR_REGISTRY[code];
  if (list[0] === 'abort') {
    const once = lowConfidenceRetry(input);
    if (once) return once;
    const kind = info.category === 'permanent' || info.category === 'fatal' ? `a ${info.category} error` : 'set to abort by the recovery policy';
    return { action: 'abort', reason: `${code} is ${kind}: failing without a retry (${info.message})` };
  }
  const ctx = buildContext(input);
  // With the memory model, OOMs have their own budget and do not eat the transient retries.
  const oomUsed = input.memory ? oomDecisions(ctx) : 0;
  if (input.memory && code === 'COMFYUI_OOM') {
    const budget = input.oomRetries ?? DEFAULT_OOM_RETRIES;
    if (oomUsed >= budget) {
      return { action: 'abort', reason: `out-of-memory budget exhausted: ${oomUsed} of ${budget} OOM recoveries used; last on ${ctx.failed.server}` };
    }
    const planned = planOom(ctx, list, input.memory);
    if (planned) return planned;
  }
  const used = retriesUsed(ctx) - (code === 'COMFYUI_OOM' ? 0 : oomUsed);
  if (used >= maxRetries) {
    return {
      action: 'abort',
      reason: `retry budget exhausted: ${used} of ${maxRetries} retries used; last error ${code} on ${ctx.failed.server}`,
    };
  }
  const skipped: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const strategy = list[i] as StrategyName;
    if (strategy === 'abort') return { action: 'abort', reason: `${code}: the recovery policy ends with abort (${skipped.join('; ') || 'nothing tried'})` };
    if (COUNTED.has(strategy)) {
      const allowed = list.slice(0, i + 1).filter((s) => s === strategy).length;
      if (timesUsed(ctx, strategy, code) >= allowed) {
        if (!skipped.includes(`${strategy}: already used`)) skipped.push(`${strategy}: already used`);
        continue;
      }
    }
    const outcome = plan(ctx, strategy);
    if ('plan' in outcome && input.job.options.quality === 'exact' && CHANGES_OUTPUT.has(strategy)) {
      const changed = outputChanges(outcome.plan.changes, outcome.plan.workflow);
      const what = changed.length > 0 ? describeChanges(changed) : 'replace the workflow';
      return { action: 'abort', reason: `${code}: quality "exact" refuses ${strategy} (${what}); ${skipped.join('; ') || 'nothing else applied'}`, refused: `${strategy.replace('_', ' ')}: ${what}` };
    }
    if ('plan' in outcome) return { action: 'attempt', strategy, ...outcome.plan };
    skipped.push(outcome.skip);
  }
  if (list.includes('retry') && retryRepeats(code)) {
    const outcome = plan(ctx, 'retry', true);
    if ('plan' in outcome) return { action: 'attempt', strategy: 'retry', ...outcome.plan };
  }
  return { action: 'abort', reason: exhaustedReason(ctx, skipped) };
}

/**
 * One retry for a low-confidence permanent verdict (fatal stays immediate): only while the budget
 * allows and if this job has not already retried this code.
 */
function lowConfidenceRetry(input: DecisionInput): RecoveryDecision | null {
  const { code, classification } = input;
  if (classification.confidence !== 'low' || ERROR_REGISTRY[code].category !== 'permanent') return null;
  const ctx = buildContext(input);
  if (retriesUsed(ctx) >= input.maxRetries || timesUsed(ctx, 'retry', code) > 0) return null;
  const outcome = plan(ctx, 'retry');
  if (!('plan' in outcome)) return null;
  return {
    action: 'attempt',
    strategy: 'retry',
    ...outcome.plan,
    message: `${code} is permanent, but the classification is low-confidence: retry once to confirm before failing`,
  };
}

/** Why nothing applies, in the words a user needs (the missing model or node named first). */
function exhaustedReason(ctx: DecisionContext, skipped: string[]): string {
  const detail = skipped.join('; ');
  const { missingModels, missingNodeTypes } = ctx;
  if (ctx.code === 'COMFYUI_MODEL_MISSING' && missingModels.length > 0) {
    const absent = missingModels.filter((m) => !ctx.usable.some((s) => serverHasModel(s, m.name, m.folder)));
    if (absent.length > 0) {
      const names = absent.map((m) => m.name).join(', ');
      return `model ${names} is not on any server; no fallback model or workflow is available (${detail})`;
    }
  }
  if (ctx.code === 'COMFYUI_MISSING_NODE' && missingNodeTypes.length > 0) {
    const absent = missingNodeTypes.filter((t) => !ctx.usable.some((s) => s.nodeTypes?.includes(t)));
    if (absent.length > 0) {
      return `node type ${absent.join(', ')} is not installed on any server; no fallback workflow is available (${detail})`;
    }
  }
  return `no recovery strategy left for ${ctx.code} (${detail})`;
}
