/**
 * An out-of-memory planned in one step with the memory model (DESIGN.md "Recovery for
 * out-of-memory"): (1) fail over, unchanged, to a server predicted to fit; (2) else `POST /free`
 * on the same server only where it can help (other workflows' models were resident, or the
 * allocator had the memory free but fragmented); (3) else the smallest set of changes predicted to
 * fit, all in one attempt: tiled VAE, then batch, then resolution. Steps do not change the peak,
 * so reducing them is never planned for memory. Only the strategies the policy lists for
 * COMFYUI_OOM are used; `quality: 'exact'` allows only the ones that keep the output.
 */
import type { ApiWorkflow } from '../comfy/types.js';
import { formatBytes, parseOomAmount } from '../errors/oom-amount.js';
import type { StrategyName } from '../jobs/types.js';
import { serverCanLoad, serversFailedWith, type DecisionContext } from './context.js';
import { diffWorkflows, outputChanges } from './degraded.js';
import { sortedNodes, isLatentNode } from './graph.js';
import { createMemoryModel, type MemoryPrediction, type ServerMemory } from './memory-model.js';
import { reduceBatch, reduceResolution, useTiledVae, type PatchResult } from './patcher.js';
import type { OomMemoryInput, PoolServer, RecoveryDecision } from './types.js';
import { describeChanges } from './strategies.js';

export type { OomMemoryInput } from './types.js';

/** A model that has learned nothing: the workflow's shape alone. */
const SHAPE_ONLY = createMemoryModel();

/** OOM recovery decisions allowed after the first attempt, when the engine gives no `oomRetries`. */
export const DEFAULT_OOM_RETRIES = 2;

/** The OOM rungs that change the workflow, in ladder order; steps are not here (see the module doc). */
const MEMORY_RUNGS: ReadonlyArray<{ name: StrategyName; keepsOutput: boolean; apply: (wf: ApiWorkflow, original: ApiWorkflow) => PatchResult | null; repeat: boolean }> = [
  { name: 'tiled_vae', keepsOutput: true, apply: (wf) => useTiledVae(wf), repeat: false },
  { name: 'reduce_batch', keepsOutput: false, apply: (wf) => reduceBatch(wf), repeat: true },
  { name: 'reduce_resolution', keepsOutput: false, apply: (wf, original) => reduceResolution(wf, original), repeat: true },
];

type Attempt = Extract<RecoveryDecision, { action: 'attempt' }>;

/** The server fields the memory model reads. */
export function serverMemory(s: PoolServer): ServerMemory {
  return { name: s.name, vramTotal: s.vramTotal, vramFree: s.vramFree, device: s.device ?? null, ramTotal: s.ramTotal ?? null };
}

/** One server's cheapest workflow predicted to fit it. */
interface FitPlan {
  server: PoolServer;
  workflow: ApiWorkflow;
  prediction: MemoryPrediction;
  rungs: StrategyName[];
  /** Share of the requested pixels x images the result keeps (1 = all). */
  kept: number;
}

/** Pixels x images of every canvas node: what batch and resolution cuts take away. */
function canvas(wf: ApiWorkflow): number {
  let sum = 0;
  for (const [, n] of sortedNodes(wf)) {
    if (!isLatentNode(n)) continue;
    const w = n.inputs['width'];
    const h = n.inputs['height'];
    const b = n.inputs['batch_size'];
    sum += (typeof w === 'number' ? w : 1) * (typeof h === 'number' ? h : 1) * (typeof b === 'number' ? b : 1);
  }
  return sum;
}

/** Applies the allowed rungs to `start` until the model predicts a fit on `server`, each only while it lowers the need. */
function fitOn(start: ApiWorkflow, original: ApiWorkflow, server: PoolServer, allowed: ReadonlySet<StrategyName>, mem: OomMemoryInput): FitPlan | null {
  const predict = (wf: ApiWorkflow): MemoryPrediction => mem.model.predict(wf, serverMemory(server));
  let wf = start;
  let p = predict(wf);
  if (p.fits === null) return null;
  const used: StrategyName[] = [];
  for (const rung of MEMORY_RUNGS) {
    if (p.fits) break;
    if (!allowed.has(rung.name)) continue;
    for (;;) {
      const r = rung.apply(wf, original);
      if (!r) break;
      const next = predict(r.workflow);
      // A rung that does not lower the peak (tiling when sampling is the peak) is not a change worth making.
      if (next.needBytes >= p.needBytes) break;
      wf = r.workflow;
      p = next;
      if (!used.includes(rung.name)) used.push(rung.name);
      if (p.fits || !rung.repeat) break;
    }
  }
  const before = canvas(original);
  return { server, workflow: wf, prediction: p, rungs: used, kept: before > 0 ? canvas(wf) / before : 1 };
}

/** Better plan first: keeps more of the request, then has more room left. */
function better(a: FitPlan, b: FitPlan): number {
  if (Math.abs(a.kept - b.kept) > 1e-9) return b.kept - a.kept;
  const room = (p: FitPlan): number => (p.prediction.capacityBytes ?? 0) - p.prediction.needBytes;
  return room(b) - room(a);
}

const need = (p: MemoryPrediction): string => `needs ${formatBytes(p.needBytes)}, offers ${p.capacityBytes === null ? 'unknown' : formatBytes(p.capacityBytes)}`;

/**
 * Plans the next attempt after an OOM with the memory model, using only the strategies in `list`.
 * Returns null when the model knows no server's capacity (the engine then walks the ladder).
 */
export function planOom(ctx: DecisionContext, list: readonly StrategyName[], mem: OomMemoryInput): RecoveryDecision | null {
  const allowed = new Set(list);
  const exact = ctx.input.job.options.quality === 'exact';
  const original = ctx.original;
  const failedName = ctx.failed.server;
  const oomOn = serversFailedWith(ctx, 'COMFYUI_OOM');
  const loadable = ctx.usable.filter((s) => serverCanLoad(s, original));
  const predictOn = (wf: ApiWorkflow, s: PoolServer): MemoryPrediction => mem.model.predict(wf, serverMemory(s));
  const failedPrediction = ctx.failedServer ? predictOn(ctx.base, ctx.failedServer) : null;
  const where = `${ctx.code} on ${failedName}${failedPrediction ? ` (${need(failedPrediction)})` : ''}`;
  if (loadable.every((s) => predictOn(original, s).fits === null)) return null;
  const attempt = (strategy: StrategyName, workflow: ApiWorkflow, server: Attempt['server'], message: string, extra: Partial<Attempt> = {}): Attempt => ({
    action: 'attempt',
    strategy,
    workflow: structuredClone(workflow),
    changes: diffWorkflows(ctx.base, workflow),
    server,
    useBackoff: false,
    message,
    ...extra,
  });

  // 1. Another server that fits the request as it was: quality kept.
  if (allowed.has('failover')) {
    const fits = loadable
      .filter((s) => !oomOn.includes(s.name))
      .map((s) => ({ s, p: predictOn(original, s) }))
      .filter((x) => x.p.fits === true)
      .sort((a, b) => (b.p.capacityBytes ?? 0) - b.p.needBytes - ((a.p.capacityBytes ?? 0) - a.p.needBytes));
    if (fits.length > 0) {
      const names = fits.map((x) => x.s.name);
      const restored = JSON.stringify(original) !== JSON.stringify(ctx.base) ? ', with the request as it was' : '';
      return attempt('failover', original, { exclude: oomOn, require: names }, `${where}: fail over to a server predicted to fit without changes${restored}: ${fits.map((x) => `${x.s.name} (${need(x.p)})`).join(', ')}`);
    }
  }

  // 2. Free memory where it can help: the failed server fits the workflow when nothing else is loaded.
  const server = ctx.failedServer;
  if (allowed.has('free_memory') && server && server.healthy && !server.breakerOpen) {
    const freedBefore = ctx.prior.some((s) => s.strategy === 'free_memory' && s.server === failedName);
    const amount = mem.oomText ? parseOomAmount(mem.oomText) : null;
    const fragmented = amount?.freeBytes !== undefined && amount.freeBytes >= amount.triedBytes;
    const resident = (mem.residentBytes ?? 0) > 0 && failedPrediction?.fits === true;
    if (!freedBefore && (fragmented || resident)) {
      const why = fragmented
        ? `the allocator had ${formatBytes(amount.freeBytes ?? 0)} free for ${formatBytes(amount.triedBytes)} (fragmented)`
        : `${formatBytes(mem.residentBytes ?? 0)} of other workflows' models were loaded`;
      return attempt('free_memory', ctx.base, { prefer: failedName }, `${where}: ${why}; free memory on ${failedName} (POST /free) and run the same workflow again`, {
        freeMemoryFirst: true,
      });
    }
  }

  // 3. The smallest set of changes predicted to fit, in one attempt.
  const plansFor = (rungs: ReadonlySet<StrategyName>, model: OomMemoryInput['model'] = mem.model): FitPlan[] =>
    loadable
      .map((s) => fitOn(original, original, s, rungs, { ...mem, model }))
      .filter((p): p is FitPlan => p !== null && p.prediction.fits === true && p.rungs.length > 0)
      // The failed server and workflow again would repeat the failure.
      .filter((p) => !(oomOn.includes(p.server.name) && JSON.stringify(p.workflow) === JSON.stringify(ctx.base)))
      .sort(better);
  const permitted = new Set([...allowed].filter((s) => !exact || MEMORY_RUNGS.find((r) => r.name === s)?.keepsOutput));
  let plans = plansFor(permitted);
  let basis = '';
  if (plans.length === 0) {
    // What was learned says nothing fits, but a bound can be learned too high (an OOM beside memory
    // the model did not know was taken). If the shape alone says a plan fits, try it once: the OOM
    // budget bounds the cost, and a job that can run is not refused on a guess.
    plans = plansFor(permitted, SHAPE_ONLY);
    if (plans.length > 0) basis = 'the shape estimate alone; what was learned here predicts no fit';
  }
  const best = plans[0];
  if (best) {
    const names = plans.filter((p) => JSON.stringify(p.workflow) === JSON.stringify(best.workflow)).map((p) => p.server.name);
    const changed = diffWorkflows(original, best.workflow);
    const strategy = best.rungs.at(-1) ?? 'tiled_vae';
    return attempt(
      strategy,
      best.workflow,
      { require: names },
      `${where}: one attempt with ${best.rungs.join(' + ')} on ${names.join(', ')} (${basis ? `${basis}; by the shape` : 'predicted'} ${need(best.prediction)}): ${describeChanges(changed)}`,
    );
  }
  if (exact) {
    const refused = plansFor(allowed)[0];
    if (refused) {
      const changes = outputChanges(diffWorkflows(original, refused.workflow), refused.workflow);
      return {
        action: 'abort',
        reason: `${where}: quality "exact" refuses the change that would fit ${refused.server.name}: ${describeChanges(changes)}; no server is predicted to fit the request unchanged`,
        refused: `${describeChanges(changes)} (predicted to fit ${refused.server.name})`,
      };
    }
  }
  // 4. Nothing predicted helps, yet nothing explains the OOM either (the model says the request fits
  // here, or it has learned nothing): memory held by something else is the likeliest cause, so free it
  // once on this server and run the same workflow again rather than fail.
  // The shape alone (nothing learned) decides here: one OOM's own figures cannot prove it never fits.
  const byShape = server ? SHAPE_ONLY.predict(ctx.base, serverMemory(server)) : null;
  if (allowed.has('free_memory') && server && server.healthy && !server.breakerOpen && byShape?.fits !== false) {
    const freedBefore = ctx.prior.some((s) => s.strategy === 'free_memory' && s.server === failedName);
    if (!freedBefore) {
      return attempt('free_memory', ctx.base, { prefer: failedName }, `${where}: the workflow is predicted to fit ${failedName}; free memory there (POST /free) and run it again`, {
        freeMemoryFirst: true,
      });
    }
  }
  const largest = loadable.map((s) => ({ s, p: predictOn(original, s) })).sort((a, b) => (b.p.capacityBytes ?? 0) - (a.p.capacityBytes ?? 0))[0];
  const tried = [...allowed].filter((s) => MEMORY_RUNGS.some((r) => r.name === s && (!exact || r.keepsOutput)));
  return {
    action: 'abort',
    reason: `${where}: no server is predicted to fit this workflow${tried.length ? ` even with ${tried.join(', ')} at their floors` : ''}${largest ? ` (largest: ${largest.s.name}, ${need(largest.p)})` : ''}`,
  };
}
