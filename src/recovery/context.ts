/**
 * What a recovery decision knows, derived only from persisted job data and the pool view, so a
 * restarted engine rebuilds exactly the same context and makes the same decision.
 */
import type { ApiWorkflow } from '../comfy/types.js';
import { referencedModels } from '../comfy/workflow.js';
import type { ErrorCode } from '../errors/codes.js';
import type { AttemptRecord, RecoveryStep, StrategyName } from '../jobs/types.js';
import type { DecisionInput, PoolServer } from './types.js';

export interface DecisionContext {
  input: DecisionInput;
  code: ErrorCode;
  failed: AttemptRecord;
  /** Recovery steps taken before the failed attempt (a step already recorded for it is ignored). */
  prior: RecoveryStep[];
  /** Attempts up to and including the failed one. */
  attempts: AttemptRecord[];
  /** What the failed attempt ran: the base of the next workflow. */
  base: ApiWorkflow;
  /** What this line of attempts started from: the floors of the reduce_* steps are relative to it. */
  original: ApiWorkflow;
  failedServer: PoolServer | undefined;
  /** Healthy servers with a closed breaker, in pool order. */
  usable: PoolServer[];
  /** From the classification, else read off the failing loader node (`classification.nodeId`). */
  missingModels: Array<{ name: string; folder?: string }>;
  /** From the classification, else the failing node's class type (MISSING_NODE only). */
  missingNodeTypes: string[];
}

/** Builds the context; attempts that replaced the workflow wholesale start a new lineage. */
export function buildContext(input: DecisionInput): DecisionContext {
  const failed = input.failedAttempt;
  const attempts = input.job.attempts.filter((a) => a.number < failed.number);
  attempts.push(failed);
  attempts.sort((a, b) => a.number - b.number);
  const lineageStart = [...attempts].reverse().find((a) => a.strategy === 'fallback_workflow') ?? attempts[0];
  const c = input.classification;
  const node = c.nodeId !== undefined ? failed.workflow[c.nodeId] : undefined;
  let missingModels = c.missingModels ?? [];
  if (missingModels.length === 0 && input.code === 'COMFYUI_MODEL_MISSING' && c.nodeId !== undefined) {
    missingModels = referencedModels(failed.workflow)
      .filter((r) => r.nodeId === c.nodeId)
      .map((r) => ({ name: r.name, folder: r.folder }));
  }
  let missingNodeTypes = c.missingNodeTypes ?? [];
  if (missingNodeTypes.length === 0 && input.code === 'COMFYUI_MISSING_NODE' && node) missingNodeTypes = [node.class_type];
  return {
    input,
    code: input.code,
    failed,
    // A manual retry starts afresh: steps before it neither count nor block a strategy's reuse.
    prior: input.job.recoveryHistory.filter((s) => s.attempt < failed.number && s.attempt > manualBase(input.job, attempts)),
    attempts,
    base: failed.workflow,
    original: lineageStart?.workflow ?? input.job.workflow,
    failedServer: input.pool.servers.find((s) => s.name === failed.server),
    usable: input.pool.servers.filter((s) => s.healthy && !s.breakerOpen),
    missingModels,
    missingNodeTypes,
  };
}

/** Attempts made before the last manual retry (the record's `budgetBase`, else the attempt marked manual). */
function manualBase(job: DecisionInput['job'], attempts: readonly AttemptRecord[]): number {
  if (typeof job.budgetBase === 'number') return job.budgetBase;
  for (let i = attempts.length - 1; i >= 0; i--) if (attempts[i]?.manual) return i;
  return 0;
}

/** How often `strategy` was used for `code` (any code when omitted). */
export function timesUsed(ctx: DecisionContext, strategy: StrategyName, code?: ErrorCode): number {
  return ctx.prior.filter((s) => s.strategy === strategy && (code === undefined || s.code === code)).length;
}

/**
 * Retries already spent: attempts after the first, or recovery decisions taken, whichever is more.
 * A decision is charged even when no attempt followed it (a failure found before sending), so a step
 * that keeps failing before it reaches a server still runs out of budget. Decisions before the last
 * manual retry are counted as the attempts they stood for (the caller adds those to the budget).
 */
export function retriesUsed(ctx: DecisionContext): number {
  const attempts = Math.max(0, ctx.attempts.length - 1);
  const base = manualBase(ctx.input.job, ctx.attempts);
  const decisions = base + ctx.input.job.recoveryHistory.filter((s) => s.attempt > base).length;
  return Math.max(attempts, decisions);
}

/** Servers on which this job already failed with `code` (the failed attempt's server included). */
export function serversFailedWith(ctx: DecisionContext, code: ErrorCode): string[] {
  const names: string[] = [];
  for (const a of ctx.attempts) {
    const failedHere = a === ctx.failed || a.code === code;
    if (failedHere && a.server && !names.includes(a.server)) names.push(a.server);
  }
  return names;
}

/** True when `server` has `name` in `folder` (any folder when none is given). */
export function serverHasModel(server: PoolServer, name: string, folder?: string): boolean {
  if (!server.models) return false;
  const norm = (s: string): string => s.replaceAll('\\', '/');
  const folders =
    folder === undefined ? Object.keys(server.models) : folder === 'unet' || folder === 'diffusion_models' ? ['unet', 'diffusion_models'] : [folder];
  return folders.some((f) => (server.models?.[f] ?? []).some((m) => norm(m) === norm(name)));
}

/**
 * False when the server is known to lack a model the workflow loads. Folders the server did not
 * report are unknown, not missing: the pool may list only some folders.
 */
export function serverCanLoad(server: PoolServer, wf: ApiWorkflow): boolean {
  if (!server.models) return true;
  const norm = (s: string): string => s.replaceAll('\\', '/');
  for (const ref of referencedModels(wf)) {
    const known = [ref.folder, ...ref.aliases].filter((f) => server.models?.[f] !== undefined);
    if (known.length === 0) continue;
    if (!known.some((f) => (server.models?.[f] ?? []).some((m) => norm(m) === norm(ref.name)))) return false;
  }
  return true;
}
