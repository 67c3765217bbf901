/**
 * One planner per recovery strategy. A planner either says how the next attempt looks, or why it
 * cannot apply right now (the reason ends up in the abort message when nothing applies).
 */
import type { ApiWorkflow } from '../comfy/types.js';
import type { InputChange, JobParams, StrategyName } from '../jobs/types.js';
import { serverCanLoad, serverHasModel, serversFailedWith, timesUsed, type DecisionContext } from './context.js';
import { outputNodeIds } from './graph.js';
import { applyParams, isUnetFolder, reduceBatch, reduceResolution, reduceSteps, switchModel, useTiledVae, type PatchResult } from './patcher.js';
import { isPatchError } from './patch-error.js';
import type { PoolServer, RecoveryDecision, ServerConstraint } from './types.js';

/** The attempt part of a decision, before the walker adds the strategy name. */
export type Plan = Omit<Extract<RecoveryDecision, { action: 'attempt' }>, 'action' | 'strategy'>;

/** A plan, or the reason the strategy cannot apply. */
export type PlanOutcome = { plan: Plan } | { skip: string };

/** Checkpoints tried after the job's own fallbackModels, before any other checkpoint a server has. */
export const DEFAULT_FALLBACK_MODELS: readonly string[] = ['sd_xl_base_1.0.safetensors', 'v1-5-pruned-emaonly.ckpt'];

const skip = (reason: string): PlanOutcome => ({ skip: reason });

const unchanged = (ctx: DecisionContext, server: ServerConstraint, message: string, extra: Partial<Plan> = {}): PlanOutcome => ({
  plan: { workflow: structuredClone(ctx.base), changes: [], server, useBackoff: false, message, ...extra },
});

/** "node 5 EmptyLatentImage batch_size 8 -> 4, ..." for messages. */
export function describeChanges(changes: InputChange[]): string {
  return changes.map((c) => `node ${c.nodeId} ${c.classType} ${c.input} ${fmt(c.from)} -> ${fmt(c.to)}`).join(', ');
}

function fmt(v: unknown): string {
  if (typeof v === 'string') return v.length > 40 ? JSON.stringify(`${v.slice(0, 40)}...`) : v;
  return JSON.stringify(v) ?? 'null';
}

function failedServerReady(ctx: DecisionContext): string | null {
  const s = ctx.failedServer;
  if (!s) return `server ${ctx.failed.server} is no longer in the pool`;
  if (!s.healthy) return `server ${s.name} is not healthy`;
  if (s.breakerOpen) return `server ${s.name} has its circuit breaker open`;
  return null;
}

function retry(ctx: DecisionContext, again: boolean): PlanOutcome {
  const n = timesUsed(ctx, 'retry', ctx.code) + 1;
  return {
    plan: {
      workflow: structuredClone(ctx.base),
      changes: [],
      server: {},
      useBackoff: true,
      message: `${ctx.code}: retry the same workflow after backoff (retry ${n} for this error${again ? ', nothing else applies' : ''})`,
    },
  };
}

function resume(ctx: DecisionContext): PlanOutcome {
  const notReady = failedServerReady(ctx);
  if (notReady) return skip(`resume: ${notReady}`);
  const server = ctx.failedServer as PoolServer;
  const backoff = ctx.code === 'COMFYUI_CONNECTION_ERROR' || ctx.code === 'COMFYUI_SERVER_ERROR';
  const cp = ctx.input.job.checkpoint;
  const completed = cp && (cp.cacheServer === null || cp.cacheServer === server.name) ? Object.keys(cp.completedOutputs) : [];
  let outputs = ctx.input.outputNodes ?? outputNodeIds(ctx.base);
  if (ctx.failed.partialTargets) outputs = outputs.filter((o) => ctx.failed.partialTargets?.includes(o));
  const remaining = outputs.filter((o) => !completed.includes(o));
  const partial = server.supportsPartialTargets && completed.length > 0 && remaining.length > 0 && remaining.length < outputs.length;
  const what = partial
    ? `run only the unfinished outputs ${remaining.join(', ')} (done: ${completed.filter((c) => outputs.includes(c)).join(', ')})`
    : 'resubmit the same workflow; its cache skips the nodes that already ran';
  return {
    plan: {
      workflow: structuredClone(ctx.base),
      changes: [],
      server: { prefer: server.name },
      ...(partial ? { partialTargets: remaining } : {}),
      useBackoff: backoff,
      message: `${ctx.code}: resume on ${server.name}: ${what}`,
    },
  };
}

function freeMemory(ctx: DecisionContext): PlanOutcome {
  const notReady = failedServerReady(ctx);
  if (notReady) return skip(`free_memory: ${notReady}`);
  const name = ctx.failed.server;
  const freedBefore = ctx.prior.some((s) => s.strategy === 'free_memory' && s.server === name);
  if (freedBefore) return skip(`free_memory: already tried on ${name}`);
  return unchanged(ctx, { prefer: name }, `${ctx.code}: free VRAM on ${name} (POST /free) and run the same workflow again`, {
    freeMemoryFirst: true,
  });
}

/** More VRAM than the failed server (free first, then total); unknown numbers cannot be compared. */
function hasMoreVram(s: PoolServer, than: PoolServer | undefined): boolean {
  if (!than || (than.vramFree === null && than.vramTotal === null)) return true;
  if (s.vramFree !== null && than.vramFree !== null && s.vramFree > than.vramFree) return true;
  return s.vramTotal !== null && than.vramTotal !== null && s.vramTotal > than.vramTotal;
}

function failover(ctx: DecisionContext): PlanOutcome {
  const exclude = serversFailedWith(ctx, ctx.code);
  let candidates = ctx.usable.filter((s) => !exclude.includes(s.name));
  const server: ServerConstraint = { exclude };
  let why = 'another healthy server';
  // Set when only some servers can help: the decision then names them in `require`.
  let capability = false;
  const missingModels = ctx.missingModels;
  const missingNodes = ctx.missingNodeTypes;
  if (ctx.code === 'COMFYUI_OOM') {
    candidates = candidates
      .filter((s) => hasMoreVram(s, ctx.failedServer))
      .sort((a, b) => (b.vramFree ?? -1) - (a.vramFree ?? -1) || (b.vramTotal ?? -1) - (a.vramTotal ?? -1));
    server.moreVramThan = ctx.failed.server;
    why = `a server with more free VRAM than ${ctx.failed.server}`;
    capability = true;
  }
  if (missingModels.length > 0) {
    candidates = candidates.filter((s) => missingModels.every((m) => serverHasModel(s, m.name, m.folder)));
    server.requireModels = missingModels.map((m) => m.name);
    why = `a server that has ${server.requireModels.join(', ')}`;
    capability = true;
  }
  if (missingNodes.length > 0) {
    candidates = candidates.filter((s) => s.nodeTypes !== null && missingNodes.every((t) => s.nodeTypes?.includes(t)));
    server.requireNodeTypes = [...missingNodes];
    why = `a server that has the node type(s) ${missingNodes.join(', ')}`;
    capability = true;
  }
  if (candidates.length === 0) return skip(`failover: no healthy server left that qualifies (${why}; excluded ${exclude.join(', ')})`);
  // Servers known to hold every model of the workflow first (stable, so the pool's order breaks ties).
  candidates = [...candidates.filter((s) => serverCanLoad(s, ctx.base)), ...candidates.filter((s) => !serverCanLoad(s, ctx.base))];
  const names = candidates.map((s) => s.name);
  if (capability) server.require = names;
  const block = ctx.code === 'COMFYUI_DEPENDENCY_ERROR' ? `; ${ctx.failed.server} is blocked for this workflow` : '';
  return unchanged(ctx, server, `${ctx.code}: fail over from ${ctx.failed.server} to ${why} (${names.join(', ')})${block}`);
}

function patchStep(ctx: DecisionContext, name: StrategyName, result: PatchResult | null, what: string, floor: string): PlanOutcome {
  if (!result) return skip(`${name}: ${floor}`);
  return {
    plan: {
      workflow: result.workflow,
      changes: result.changes,
      server: {},
      useBackoff: false,
      message: `${ctx.code}: ${what}: ${describeChanges(result.changes)}`,
    },
  };
}

/** The fallback chain for a folder: the job's own, the defaults (checkpoints only), then anything a server has. */
function modelChain(ctx: DecisionContext, folder: string | undefined): string[] {
  const own = ctx.input.job.options.fallbackModels ?? [];
  const defaults = isUnetFolder(folder) ? [] : DEFAULT_FALLBACK_MODELS;
  const folders = isUnetFolder(folder) ? ['diffusion_models', 'unet'] : ['checkpoints'];
  const onServers = new Set<string>();
  for (const s of ctx.usable) for (const f of folders) for (const m of s.models?.[f] ?? []) onServers.add(m);
  return [...new Set([...own, ...defaults, ...[...onServers].sort()])];
}

function switchModelStep(ctx: DecisionContext): PlanOutcome {
  const missing = ctx.missingModels;
  const folder = missing.find((m) => m.folder !== undefined)?.folder ?? 'checkpoints';
  if (folder !== 'checkpoints' && !isUnetFolder(folder)) return skip(`switch_model: only checkpoints and diffusion models are switched, not ${folder}`);
  const tried = new Set<string>(missing.map((m) => m.name));
  for (const step of ctx.prior) {
    if (step.strategy !== 'switch_model') continue;
    for (const c of step.changes) if (typeof c.to === 'string') tried.add(c.to);
  }
  const from = missing.length > 0 ? missing.map((m) => m.name) : undefined;
  let partial: PlanOutcome | null = null;
  for (const model of modelChain(ctx, folder)) {
    if (tried.has(model)) continue;
    const holders = ctx.usable.filter((s) => serverHasModel(s, model, folder));
    if (holders.length === 0) continue;
    const result = switchModel(ctx.base, model, { ...(from ? { from } : {}), folder });
    if (!result) {
      if (from) return skip(`switch_model: no ${isUnetFolder(folder) ? 'UNETLoader' : 'checkpoint loader'} loads ${from.join(', ')}`);
      // Without a missing name every loader switches; a model the loaders already use changes nothing.
      continue;
    }
    // Best: a server that has the new model and every other model of the workflow.
    const complete = holders.filter((s) => serverCanLoad(s, result.workflow));
    const names = (complete.length > 0 ? complete : holders).map((s) => s.name);
    const lost = from ? `${from.join(', ')} is not on any usable server` : 'switching model';
    const outcome: PlanOutcome = {
      plan: {
        workflow: result.workflow,
        changes: result.changes,
        server: { require: names, requireModels: [model] },
        useBackoff: false,
        message: `${ctx.code}: ${lost}; switch to fallback model ${model} (on ${names.join(', ')}): ${describeChanges(result.changes)}`,
      },
    };
    if (complete.length > 0) return outcome;
    partial ??= outcome;
  }
  if (partial) return partial;
  return skip('switch_model: no fallback model is on any healthy server');
}

/** Applies the job's params to a fallback workflow, skipping the ones it has no node for. */
function paramsOnto(wf: ApiWorkflow, params: JobParams): PatchResult {
  let out: PatchResult = { workflow: structuredClone(wf), changes: [] };
  for (const [k, v] of Object.entries(params)) {
    try {
      const r = applyParams(out.workflow, { [k]: v });
      out = { workflow: r.workflow, changes: [...out.changes, ...r.changes] };
    } catch (e) {
      if (!(isPatchError(e) && e.code === 'PARAM_NOT_APPLICABLE')) throw e;
    }
  }
  return out;
}

function fallbackWorkflow(ctx: DecisionContext): PlanOutcome {
  const list = ctx.input.job.options.fallbackWorkflows ?? [];
  const used = timesUsed(ctx, 'fallback_workflow');
  const next = list[used];
  if (!next) return skip(list.length === 0 ? 'fallback_workflow: the job has no fallback workflows' : 'fallback_workflow: every fallback workflow was tried');
  let result: PatchResult;
  try {
    result = paramsOnto(next, ctx.input.job.params);
  } catch (e) {
    return skip(`fallback_workflow: the job's parameters do not fit fallback ${used + 1}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return {
    plan: {
      workflow: result.workflow,
      changes: result.changes,
      server: {},
      useBackoff: false,
      message: `${ctx.code}: run fallback workflow ${used + 1} of ${list.length}${result.changes.length ? ` with the job's parameters: ${describeChanges(result.changes)}` : ''}`,
    },
  };
}

/** The planner of each strategy except `abort`, which the walker handles. */
export function plan(ctx: DecisionContext, strategy: Exclude<StrategyName, 'abort'>, again = false): PlanOutcome {
  switch (strategy) {
    case 'retry':
      return retry(ctx, again);
    case 'resume':
      return resume(ctx);
    case 'free_memory':
      return freeMemory(ctx);
    case 'failover':
      return failover(ctx);
    case 'tiled_vae':
      return patchStep(ctx, strategy, useTiledVae(ctx.base), 'decode the VAE in tiles', 'no VAEDecode left to tile');
    case 'reduce_batch':
      return patchStep(ctx, strategy, reduceBatch(ctx.base), 'halve the batch', 'batch size is already 1');
    case 'reduce_resolution':
      return patchStep(ctx, strategy, reduceResolution(ctx.base, ctx.original), 'reduce the resolution by 20%', 'resolution is at its floor');
    case 'reduce_steps':
      return patchStep(ctx, strategy, reduceSteps(ctx.base, ctx.original), 'reduce the steps by 20%', 'steps are at their floor');
    case 'switch_model':
      return switchModelStep(ctx);
    case 'fallback_workflow':
      return fallbackWorkflow(ctx);
  }
}
