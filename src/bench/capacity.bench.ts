/**
 * Capacity-aware recovery, before and after: a fixed mix of OOM-prone jobs on mixed pools, run two
 * ways.
 * - `createGuard`: the real guard on simulators (models stay loaded between jobs on each server, a
 *   CUDA OOM unloads them, as ComfyUI does), jobs one after another. "before" is `capacityAware:
 *   false` (routing by load, the OOM ladder one rung per attempt within maxRetries 3); "after" the
 *   defaults (memory-model routing, the one-step OOM planner with oomRetries 2).
 * - `model loop`: the same mix through routing (`chooseRoute`) and recovery (`decideNext`) directly
 *   against the simulator's node behaviours and memory bookkeeping, without sockets: quick, and it
 *   shows the planner alone.
 * GPU-s is a cost model, not a clock: an attempt costs 1 s to load plus 0.05 s per step per
 * image-megapixel (SDXL x2) once it got past the sampler; a failed one only what ran before the
 * failing node. The guard rows also give the simulators' wall seconds (`sim-s`, from the goodput of
 * the guard's events), which follow steps only, not image size. Then the issue's acceptance
 * scenarios, through `createGuard`, as notes.
 */
import type { ApiWorkflow } from '../comfy/types.js';
import { isLink, topologicalOrder } from '../comfy/workflow.js';
import type { GuardEvent } from '../jobs/events.js';
import { createGuard } from '../jobs/guard.js';
import type { GuardOptions } from '../jobs/options.js';
import { newJobRecord, type AttemptRecord, type JobRecord, type RecoveryStep } from '../jobs/types.js';
import { chooseRoute, type RouteCandidate } from '../pool/routing.js';
import { computeDegraded } from '../recovery/degraded.js';
import { createMemoryModel, type MemoryModel } from '../recovery/memory-model.js';
import { serverMemory } from '../recovery/oom-plan.js';
import { compilePolicy, decideNext, type PoolServer, type RecoveryDecision } from '../recovery/policy.js';
import { AllocationError, GiB, MemoryModel as SimMemory } from '../sim/memory.js';
import { BEHAVIORS, type NodeRun, type SimValue } from '../sim/node-behaviors.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../sim/index.js';
import { GoodputAccumulator, goodputOf } from '../telemetry/goodput.js';
import { round, type BenchResult } from './harness.js';

interface SimServer {
  view: PoolServer;
  mem: SimMemory;
  lastPicked: number;
}

function txt2img(ckpt: string, size: number, batch: number, steps = 30): ApiWorkflow {
  return {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: ckpt } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: size, height: size, batch_size: batch } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: 'a lighthouse', clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry', clip: ['4', 1] } },
    '3': { class_type: 'KSampler', inputs: { seed: 1, steps, cfg: 7, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0] } },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'b', images: ['8', 0] } },
  };
}

function emptyImage(size: number, batch: number): ApiWorkflow {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: size, height: size, batch_size: batch, color: 0 } },
    '2': { class_type: 'SaveImage', inputs: { filename_prefix: 'b', images: ['1', 0] } },
  };
}

const SDXL = 'sd_xl_base_1.0.safetensors';
const SD15 = 'v1-5-pruned-emaonly.ckpt';

/** The fixed mix: OOM-prone shapes next to ordinary ones. */
function mix(): Array<{ label: string; wf: ApiWorkflow }> {
  const jobs: Array<{ label: string; wf: ApiWorkflow }> = [];
  for (let round = 0; round < 4; round++) {
    jobs.push({ label: 'SDXL 1024 x1', wf: txt2img(SDXL, 1024, 1) });
    jobs.push({ label: 'SD1.5 1024 x8', wf: txt2img(SD15, 1024, 8) });
    jobs.push({ label: 'SDXL 1024 x8', wf: txt2img(SDXL, 1024, 8) });
    jobs.push({ label: 'SD1.5 512 x1', wf: txt2img(SD15, 512, 1) });
    jobs.push({ label: 'SD1.5 1536 x2', wf: txt2img(SD15, 1536, 2) });
    jobs.push({ label: 'SDXL 768 x4', wf: txt2img(SDXL, 768, 4) });
  }
  return jobs;
}

function server(name: string, gib: number, device: 'cuda' | 'cpu' = 'cuda'): SimServer {
  const mem = new SimMemory(device, gib * GiB, device === 'cpu' ? gib * GiB : 32 * GiB);
  return {
    view: { name, healthy: true, breakerOpen: false, vramTotal: gib * GiB, vramFree: mem.vramFree(), models: null, nodeTypes: null, supportsPartialTargets: true, device },
    mem,
    lastPicked: 0,
  };
}

/** Runs one attempt on the simulator's memory; returns its cost and the OOM text if it failed. */
async function execute(wf: ApiWorkflow, s: SimServer): Promise<{ ok: boolean; seconds: number; text: string }> {
  const outputs = new Map<string, SimValue[]>();
  let seconds = 1;
  for (const id of topologicalOrder(wf)) {
    const node = wf[id]!;
    const behavior = BEHAVIORS[node.class_type];
    if (!behavior) throw new Error(`no behaviour for ${node.class_type}`);
    const inputs: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node.inputs)) inputs[k] = isLink(v) ? outputs.get(v[0])?.[v[1]] : v;
    const run: NodeRun = {
      nodeId: id,
      classType: node.class_type,
      previews: false,
      work: async () => undefined,
      progress: async () => undefined,
      gpu: (parts, activation) => s.mem.useDevice(parts, activation),
      cpu: (bytes) => s.mem.allocCpu(bytes),
      modelExists: () => true,
      saveImages: async () => [],
      readInput: () => undefined,
    };
    try {
      outputs.set(id, (await behavior(run, inputs)).outputs);
    } catch (e) {
      if (!(e instanceof AllocationError)) throw e;
      if (e.cudaOom) s.mem.unloadAll();
      return { ok: false, seconds, text: e.message };
    }
    if (node.class_type === 'KSampler') {
      const l = inputs['latent_image'] as { batch: number; width: number; height: number };
      const heavy = String((wf['4']?.inputs['ckpt_name'] as string | undefined) ?? '').includes('xl') ? 2 : 1;
      seconds += 0.05 * Number(node.inputs['steps']) * l.batch * ((l.width * l.height) / 2 ** 20) * heavy;
    }
    if (node.class_type === 'EmptyImage') seconds += 0.5;
  }
  return { ok: true, seconds, text: '' };
}

interface Outcome {
  attempts: number;
  completed: boolean;
  degraded: boolean;
  events: GuardEvent[];
}

/** One job, start to end, the way the guard runs it (routing, attempts, decisions). */
async function runJob(id: string, wf: ApiWorkflow, pool: SimServer[], after: boolean, mm: MemoryModel, seq: { n: number }): Promise<Outcome> {
  let job: JobRecord = { ...newJobRecord({ id, workflow: wf, now: 0 }), status: 'running' };
  const events: GuardEvent[] = [];
  let plan: { workflow: ApiWorkflow; decision: Extract<RecoveryDecision, { action: 'attempt' }> | null } = { workflow: wf, decision: null };
  for (let n = 1; n <= 30; n++) {
    for (const s of pool) s.view.vramFree = s.mem.vramFree();
    const d = plan.decision;
    const eligible = pool.filter((s) => !d?.server.exclude?.includes(s.view.name) && (!d?.server.require || d.server.require.includes(s.view.name)));
    const candidates: RouteCandidate[] = eligible.map((s) => ({
      name: s.view.name,
      weight: 1,
      queueRemaining: 0,
      inFlight: 0,
      lastPicked: s.lastPicked,
      ...(after ? { fits: mm.predict(plan.workflow, serverMemory(s.view)).fits, capacity: s.view.vramTotal } : {}),
    }));
    const pick = chooseRoute(candidates, d?.server.prefer ? { prefer: d.server.prefer } : {});
    if (!pick) return { attempts: n - 1, completed: false, degraded: false, events };
    const s = pool.find((x) => x.view.name === pick.name)!;
    s.lastPicked = ++seq.n;
    if (d?.freeMemoryFirst) s.mem.unloadAll();
    // As the guard does: the open recovery step learns where its attempt went.
    if (d) job = { ...job, recoveryHistory: job.recoveryHistory.map((r, i, all) => (i === all.length - 1 ? { ...r, server: s.view.name, promptId: `${id}-${n}` } : r)) };
    // What other workflows' models hold on the device before this attempt.
    const resident = s.view.device === 'cpu' ? 0 : s.mem.loadedBytes();
    events.push({ type: 'attempt_started', jobId: id, attempt: n, server: s.view.name, promptId: `${id}-${n}`, strategy: d?.strategy ?? null, reattached: false, at: 0 });
    const res = await execute(plan.workflow, s);
    const attempt: AttemptRecord = { number: n, server: s.view.name, promptId: `${id}-${n}`, status: res.ok ? 'completed' : 'failed', workflow: plan.workflow, startedAt: n, ...(d ? { strategy: d.strategy, changes: d.changes } : {}), ...(res.ok ? {} : { code: 'COMFYUI_OOM' }) };
    job = { ...job, attempts: [...job.attempts, attempt] };
    events.push({ type: 'attempt_settled', jobId: id, attempt: n, server: s.view.name, promptId: `${id}-${n}`, outcome: res.ok ? 'completed' : 'failed', code: res.ok ? null : 'COMFYUI_OOM', message: null, durationMs: res.seconds * 1000, at: 0 });
    if (res.ok) {
      if (after) mm.observeSuccess({ server: serverMemory(s.view), workflow: plan.workflow });
      const degraded = computeDegraded({ workflow: wf, params: {} }, plan.workflow, { reason: 'bench' }) !== null;
      return { attempts: n, completed: true, degraded, events };
    }
    if (after) mm.observeOom({ server: serverMemory(s.view), workflow: plan.workflow, text: res.text, residentBytes: resident });
    for (const x of pool) x.view.vramFree = x.mem.vramFree();
    const next = decideNext({
      code: 'COMFYUI_OOM',
      classification: { retryable: true },
      job,
      failedAttempt: attempt,
      pool: { servers: pool.map((x) => x.view) },
      policy: compilePolicy(),
      maxRetries: 3,
      ...(after ? { memory: { model: mm, oomText: res.text, residentBytes: resident }, oomRetries: 2 } : {}),
    });
    if (next.action === 'abort') return { attempts: n, completed: false, degraded: false, events };
    const step: RecoveryStep = { attempt: n, code: 'COMFYUI_OOM', strategy: next.strategy, changes: next.changes, success: null, server: null, promptId: null, message: next.message, startedAt: n, endedAt: null };
    job = { ...job, recoveryHistory: [...job.recoveryHistory, step] };
    plan = { workflow: next.workflow, decision: next };
  }
  return { attempts: 30, completed: false, degraded: false, events };
}

async function modelScenario(label: string, makePool: () => SimServer[], jobs: Array<{ label: string; wf: ApiWorkflow }>, after: boolean): Promise<Record<string, string | number>> {
  const pool = makePool();
  const mm = createMemoryModel();
  const seq = { n: 0 };
  const outcomes: Outcome[] = [];
  for (const [i, j] of jobs.entries()) outcomes.push(await runJob(`${label}-${i}`, j.wf, pool, after, mm, seq));
  const done = outcomes.filter((o) => o.completed);
  const recovered = done.filter((o) => o.attempts > 1);
  const g = goodputOf(outcomes.flatMap((o) => o.events));
  return {
    engine: 'model loop',
    scenario: label,
    variant: after ? 'after' : 'before',
    jobs: jobs.length,
    completed: done.length,
    failed: jobs.length - done.length,
    'attempts/job': round(outcomes.reduce((a, o) => a + o.attempts, 0) / jobs.length, 2),
    'max attempts': Math.max(...outcomes.map((o) => o.attempts)),
    'extra exec/recovered': recovered.length ? round(recovered.reduce((a, o) => a + o.attempts - 1, 0) / recovered.length, 2) : 0,
    'GPU-s failed': round(g.total.failedSeconds, 1),
    'GPU-s ok': round(g.total.succeededSeconds, 1),
    'sim-s failed': '',
    'output changed %': done.length ? round((100 * done.filter((o) => o.degraded).length) / done.length, 1) : 0,
  };
}

/** Nodes that run before sampling: an attempt that failed there cost only its loading. */
const BEFORE_SAMPLING: ReadonlySet<string> = new Set(['CheckpointLoaderSimple', 'CLIPTextEncode', 'EmptyLatentImage', 'KSampler', 'EmptyImage']);

/** The cost model above, for one recorded attempt (what it ran, and where it failed). */
function attemptCost(a: AttemptRecord): number {
  const nodes = Object.values(a.workflow);
  const sampler = nodes.find((n) => n.class_type === 'KSampler');
  const latent = nodes.find((n) => n.class_type === 'EmptyLatentImage');
  const failedAt = a.failure?.nodeType;
  const ran = a.status === 'completed' || (failedAt !== undefined && !BEFORE_SAMPLING.has(failedAt));
  let seconds = 1;
  if (ran && sampler && latent) {
    const { width, height, batch_size } = latent.inputs as { width: number; height: number; batch_size: number };
    const heavy = nodes.some((n) => String(n.inputs['ckpt_name'] ?? '').includes('xl')) ? 2 : 1;
    seconds += 0.05 * Number(sampler.inputs['steps']) * batch_size * ((width * height) / 2 ** 20) * heavy;
  }
  if (a.status === 'completed' && nodes.some((n) => n.class_type === 'EmptyImage')) seconds += 0.5;
  return seconds;
}

/** Settings shared by every guard here: a memory store, quick backoff, no cleanup timer. */
const GUARD_BASE: Omit<GuardOptions, 'servers'> = { store: 'memory:', cleanupIntervalMs: 0, retry: { baseMs: 20, capMs: 200 }, healthTtlMs: 300, progressThrottleMs: 0 };

/** Simulators and a guard over them; `close` stops both. */
async function guardOn(sims: SimulatorOptions[], opts: Partial<GuardOptions>): Promise<{ guard: Awaited<ReturnType<typeof createGuard>>; close(): Promise<void> }> {
  const started: Simulator[] = [];
  for (const o of sims) started.push(await startSimulator({ stepMs: 2, ...o }));
  const guard = await createGuard({ ...GUARD_BASE, ...opts, servers: started.map((x) => ({ url: x.url, name: x.name })) });
  return {
    guard,
    close: async () => {
      await guard.close();
      await Promise.all(started.map((x) => x.close()));
    },
  };
}

/** The mix through a real guard, one job after another. */
async function guardScenario(label: string, sims: SimulatorOptions[], jobs: Array<{ label: string; wf: ApiWorkflow }>, after: boolean): Promise<Record<string, string | number>> {
  const { guard, close } = await guardOn(sims, { capacityAware: after, maxRetries: 3 });
  const acc = new GoodputAccumulator({ perJob: false });
  guard.onEvent((e) => acc.observe(e));
  const records: JobRecord[] = [];
  try {
    for (const j of jobs) records.push(await guard.wait((await guard.submit(j.wf)).id));
  } finally {
    await close();
  }
  const done = records.filter((r) => r.status === 'completed');
  const recovered = done.filter((r) => r.attempts.length > 1);
  const attempts = records.flatMap((r) => r.attempts);
  const changed = done.filter((r) => r.degraded !== null && 'changes' in r.degraded && (r.degraded.changes?.length ?? 0) > 0);
  return {
    engine: 'createGuard',
    scenario: label,
    variant: after ? 'after' : 'before',
    jobs: jobs.length,
    completed: done.length,
    failed: jobs.length - done.length,
    'attempts/job': round(attempts.length / jobs.length, 2),
    'max attempts': Math.max(...records.map((r) => r.attempts.length)),
    'extra exec/recovered': recovered.length ? round(recovered.reduce((a, r) => a + r.attempts.length - 1, 0) / recovered.length, 2) : 0,
    'GPU-s failed': round(attempts.filter((a) => a.status !== 'completed').reduce((n, a) => n + attemptCost(a), 0), 1),
    'GPU-s ok': round(attempts.filter((a) => a.status === 'completed').reduce((n, a) => n + attemptCost(a), 0), 1),
    'sim-s failed': round(acc.report().total.failedSeconds, 2),
    'output changed %': done.length ? round((100 * changed.length) / done.length, 1) : 0,
  };
}

/** The acceptance scenarios through createGuard, in words with their numbers. */
async function acceptance(): Promise<string[]> {
  const lines: string[] = [];
  const run = async (sims: SimulatorOptions[], jobs: Array<{ what: string; wf: ApiWorkflow; opts?: Parameters<Awaited<ReturnType<typeof createGuard>>['submit']>[1] }>) => {
    const { guard, close } = await guardOn(sims, {});
    try {
      for (const j of jobs) {
        const r = await guard.wait((await guard.submit(j.wf, j.opts)).id);
        const changes = r.degraded && 'changes' in r.degraded ? (r.degraded.changes ?? []).map((c) => `${c.input} ${String(c.from)}->${String(c.to)}`).join(', ') : '';
        lines.push(
          `${j.what}: ${r.status} in ${r.attempts.length} attempt(s) on ${r.attempts.map((a) => a.server).join(' -> ')}, ${r.outputs.length} output(s)` +
            (changes ? `; degraded: ${changes}` : '') +
            (r.error ? `; error: ${r.error.message}` : ''),
        );
      }
    } finally {
      await close();
    }
  };
  await run([{ vram: '6GiB', name: 'gpu6' }, { vram: '24GiB', name: 'gpu24' }], [
    { what: '[6, 24 GiB] SDXL 1024² x1', wf: txt2img(SDXL, 1024, 1) },
    { what: '[6, 24 GiB] SD1.5 1024² x8', wf: txt2img(SD15, 1024, 8) },
  ]);
  await run([{ vram: '8GiB', name: 'gpu8' }], [
    { what: 'lone 8 GiB, SDXL 1024² x8', wf: txt2img(SDXL, 1024, 8) },
    { what: 'lone 8 GiB, SDXL 1024² x8, quality exact', wf: txt2img(SDXL, 1024, 8), opts: { quality: 'exact' } },
  ]);
  await run([{ vram: '8GiB', name: 'gpu8' }], [{ what: 'small GPU server (8 GiB, 32 GiB RAM), EmptyImage 16384² x64', wf: emptyImage(16384, 64) }]);
  await run([{ device: 'cpu', ram: '8GiB', name: 'cpu8' }], [{ what: 'CPU server (8 GiB RAM), EmptyImage 16384² x64', wf: emptyImage(16384, 64) }]);
  return lines;
}

/** Runs the scenarios before and after, both ways, then the acceptance scenarios. */
export async function run(): Promise<BenchResult> {
  const rows: Array<Record<string, string | number>> = [];
  const huge = [{ label: 'EmptyImage', wf: emptyImage(16384, 64) }, { label: 'EmptyImage', wf: emptyImage(8192, 32) }];
  const pools: Array<[string, SimulatorOptions[], Array<{ label: string; wf: ApiWorkflow }>]> = [
    ['mixed 6+8+24 GiB', [{ vram: '6GiB', name: 'gpu6' }, { vram: '8GiB', name: 'gpu8' }, { vram: '24GiB', name: 'gpu24' }], mix()],
    ['demo 6+24 GiB', [{ vram: '6GiB', name: 'gpu6' }, { vram: '24GiB', name: 'gpu24' }], mix()],
    ['lone 8 GiB', [{ vram: '8GiB', name: 'gpu8' }], mix()],
    ['cpu 8 GiB, 16384² x64', [{ device: 'cpu', ram: '8GiB', name: 'cpu8' }], huge],
  ];
  for (const [label, sims, jobs] of pools) for (const after of [false, true]) rows.push(await guardScenario(label, sims, jobs, after));
  const models: Array<[string, () => SimServer[], Array<{ label: string; wf: ApiWorkflow }>]> = [
    ['mixed 6+8+24 GiB', () => [server('gpu6', 6), server('gpu8', 8), server('gpu24', 24)], mix()],
    ['demo 6+24 GiB', () => [server('gpu6', 6), server('gpu24', 24)], mix()],
    ['lone 8 GiB', () => [server('gpu8', 8)], mix()],
    ['cpu 8 GiB, 16384² x64', () => [server('cpu8', 8, 'cpu')], huge],
  ];
  for (const [label, pool, jobs] of models) for (const after of [false, true]) rows.push(await modelScenario(label, pool, jobs, after));
  return {
    name: 'capacity',
    title: 'OOM recovery before (load routing + ladder) and after (memory model routing + one-step planner)',
    rows,
    notes: [
      'jobs run one after another; models stay loaded between jobs on each simulated server (ComfyUI unloads all after a CUDA OOM)',
      'GPU-s is a cost model (1 s load + 0.05 s per step per image-megapixel once past the sampler, x2 for SDXL), not wall time; sim-s is the simulators\' wall time of failed attempts (steps only, not image size)',
      'createGuard rows: before = capacityAware false, maxRetries 3; after = the defaults (oomRetries 2); backoff 20-200 ms to keep the run short',
      ...(await acceptance()).map((l) => `acceptance: ${l}`),
    ],
  };
}
