import { describe, expect, it } from 'vitest';
import type { ApiWorkflow } from '../comfy/types.js';
import type { ErrorCode } from '../errors/codes.js';
import { newJobRecord, type AttemptRecord, type JobOptions, type JobRecord, type RecoveryStep } from '../jobs/types.js';
import { GiB, SD15, SDXL, emptyImage, runOnSim, txt2img } from '../../test/support/sim-oracle.js';
import { cudaOomMessage } from '../sim/memory.js';
import { computeDegraded } from './degraded.js';
import { createMemoryModel, type MemoryModel } from './memory-model.js';
import { compilePolicy, decideNext, type DecisionInput, type PoolServer, type RecoveryDecision } from './policy.js';

function server(name: string, gib: number | null, over: Partial<PoolServer> = {}): PoolServer {
  return {
    name,
    healthy: true,
    breakerOpen: false,
    vramTotal: gib === null ? null : gib * GiB,
    vramFree: gib === null ? null : gib * GiB,
    models: null,
    nodeTypes: null,
    supportsPartialTargets: true,
    device: 'cuda',
    ...over,
  };
}

/** Plays the engine: attempts, OOMs observed by the model, steps recorded, as the guard will do. */
class Run {
  job: JobRecord;
  readonly model: MemoryModel = createMemoryModel();
  constructor(
    readonly workflow: ApiWorkflow,
    readonly pool: PoolServer[],
    first: string,
    options: JobOptions = {},
  ) {
    this.job = { ...newJobRecord({ id: 'j', workflow, options, now: 0 }), status: 'running', attempts: [this.attempt(1, first, workflow)] };
  }

  attempt(number: number, server: string, workflow: ApiWorkflow): AttemptRecord {
    return { number, server, promptId: `p${number}`, status: 'running', workflow, startedAt: number };
  }

  /** The current attempt failed with `code` (an OOM carries the server's text); returns the decision and records it. */
  fail(code: ErrorCode, text = '', extra: Partial<DecisionInput> = {}): RecoveryDecision {
    const last = this.job.attempts.at(-1)!;
    const failed: AttemptRecord = { ...last, status: 'failed', code };
    const srv = this.pool.find((s) => s.name === failed.server);
    if (code === 'COMFYUI_OOM' && srv) this.model.observeOom({ server: { ...srv, device: srv.device ?? null }, workflow: failed.workflow, text });
    this.job = { ...this.job, attempts: [...this.job.attempts.slice(0, -1), failed] };
    const d = decideNext({
      code,
      classification: { retryable: true },
      job: this.job,
      failedAttempt: failed,
      pool: { servers: this.pool },
      policy: compilePolicy(undefined, this.job.options.recovery),
      maxRetries: 3,
      memory: { model: this.model, oomText: text },
      ...extra,
    });
    if (d.action === 'attempt') {
      const target = d.server.require?.[0] ?? d.server.prefer ?? this.pool.find((s) => !d.server.exclude?.includes(s.name))!.name;
      const step: RecoveryStep = { attempt: failed.number, code, strategy: d.strategy, changes: d.changes, success: null, server: target, promptId: `p${failed.number + 1}`, message: d.message, startedAt: 0, endedAt: null };
      this.job = { ...this.job, recoveryHistory: [...this.job.recoveryHistory, step], attempts: [...this.job.attempts, this.attempt(failed.number + 1, target, d.workflow)] };
    }
    return d;
  }

  /** Runs the current attempt on the simulator of its server's size. */
  async simulate(): Promise<Awaited<ReturnType<typeof runOnSim>>> {
    const a = this.job.attempts.at(-1)!;
    const s = this.pool.find((x) => x.name === a.server)!;
    return s.device === 'cpu' ? runOnSim(a.workflow, { device: 'cpu', ram: s.vramTotal! }) : runOnSim(a.workflow, { vram: s.vramTotal! });
  }
}

const attempt = (d: RecoveryDecision): Extract<RecoveryDecision, { action: 'attempt' }> => {
  if (d.action !== 'attempt') throw new Error(`expected an attempt, got abort: ${d.reason}`);
  return d;
};

/** Runs the first attempt on the simulator and returns its OOM text (fails the test if it fit). */
async function firstOom(r: Run): Promise<string> {
  const res = await r.simulate();
  if (res.ok) throw new Error('expected an OOM on the first attempt');
  return res.text;
}

describe('planOom via decideNext (memory model given)', () => {
  it('fails over unchanged to the server predicted to fit, not to free_memory first', async () => {
    const r = new Run(txt2img({ ckpt: SD15, width: 1024, height: 1024, batch: 8 }), [server('small', 6), server('big', 24)], 'small');
    const d = attempt(r.fail('COMFYUI_OOM', await firstOom(r)));
    expect(d.strategy).toBe('failover');
    expect(d.changes).toEqual([]);
    expect(d.server.require).toEqual(['big']);
    expect(d.message).toContain('predicted to fit without changes');
    expect((await r.simulate()).ok).toBe(true);
  });

  it('fits SDXL 1024x1024x8 on a lone 8 GiB server in one more attempt, with tiled VAE and a smaller batch, and says so', async () => {
    const wf = txt2img({ ckpt: SDXL, width: 1024, height: 1024, batch: 8 });
    const r = new Run(wf, [server('g8', 8)], 'g8');
    const d = attempt(r.fail('COMFYUI_OOM', await firstOom(r)));
    expect(d.strategy).toBe('reduce_batch');
    expect(d.message).toContain('tiled_vae + reduce_batch');
    const sim = await r.simulate();
    expect(sim.ok).toBe(true);
    const degraded = computeDegraded({ workflow: wf, params: {} }, d.workflow, { reason: d.message });
    expect(degraded?.changes).toEqual([{ node: '5', input: 'batch_size', from: 8, to: 2, classType: 'EmptyLatentImage' }]);
    expect(r.job.attempts).toHaveLength(2);
  });

  it('with quality "exact", fails at once naming the change it refused', async () => {
    const r = new Run(txt2img({ ckpt: SDXL, width: 1024, height: 1024, batch: 8 }), [server('g8', 8)], 'g8', { quality: 'exact' });
    const d = r.fail('COMFYUI_OOM', await firstOom(r));
    expect(d.action).toBe('abort');
    expect(d.action === 'abort' && d.reason).toMatch(/quality "exact" refuses .*node 5 EmptyLatentImage batch_size 8 -> 2/);
  });

  it('with quality "exact", still tiles the VAE when that alone fits', async () => {
    const r = new Run(txt2img({ ckpt: SD15, width: 1024, height: 1024, batch: 8 }), [server('g8', 8)], 'g8', { quality: 'exact' });
    const d = attempt(r.fail('COMFYUI_OOM', await firstOom(r)));
    expect(d.strategy).toBe('tiled_vae');
    expect(computeDegraded({ workflow: r.workflow, params: {} }, d.workflow, { reason: '' })).toBeNull();
    expect((await r.simulate()).ok).toBe(true);
  });

  it('fits the capture-style 16384x16384x64 CPU allocation on a small CPU server in one more attempt', async () => {
    const r = new Run(emptyImage(16384, 64), [server('cpu8', 8, { device: 'cpu' })], 'cpu8');
    const text = await firstOom(r);
    expect(text).toContain('DefaultCPUAllocator');
    const d = attempt(r.fail('COMFYUI_OOM', text));
    expect(d.changes.map((c) => `${c.input} ${String(c.from)}->${String(c.to)}`)).toEqual(['batch_size 64->2']);
    expect((await r.simulate()).ok).toBe(true);
  });

  it('frees memory only where it can help: other workflows were resident and the workflow fits the server empty', async () => {
    const r = new Run(txt2img({ ckpt: SD15, width: 512, height: 512 }), [server('g8', 8)], 'g8');
    const text = 'CUDA out of memory. Tried to allocate 1.50 GiB. GPU 0 has a total capacity of 8.00 GiB of which 0.50 GiB is free.';
    const helped = attempt(r.fail('COMFYUI_OOM', text, { memory: { model: createMemoryModel(), oomText: text, residentBytes: 6 * GiB } }));
    expect(helped).toMatchObject({ strategy: 'free_memory', freeMemoryFirst: true, server: { prefer: 'g8' } });
    const big = new Run(txt2img({ ckpt: SDXL, width: 1024, height: 1024, batch: 8 }), [server('g8', 8)], 'g8');
    expect(attempt(big.fail('COMFYUI_OOM', await firstOom(big))).strategy).not.toBe('free_memory');
  });

  it('frees memory when the allocator had the memory free but fragmented', () => {
    const r = new Run(txt2img({ ckpt: SD15 }), [server('g16', 16)], 'g16');
    const text = 'CUDA out of memory. Tried to allocate 26.00 MiB. GPU 0 has a total capacity of 15.92 GiB of which 13.60 GiB is free.';
    expect(attempt(r.fail('COMFYUI_OOM', text)).strategy).toBe('free_memory');
  });

  it('restores the request when a server that fits it unchanged comes back', async () => {
    const wf = txt2img({ ckpt: SDXL, width: 1024, height: 1024, batch: 8 });
    const pool = [server('g8', 8), server('big', 24, { healthy: false })];
    const r = new Run(wf, pool, 'g8');
    attempt(r.fail('COMFYUI_OOM', await firstOom(r)));
    pool[1]!.healthy = true;
    // The reduced attempt also failed (say, a model the estimate underrates): the big server now fits the original.
    const d = attempt(r.fail('COMFYUI_OOM', 'CUDA out of memory. Tried to allocate 1.00 GiB. GPU 0 has a total capacity of 8.00 GiB of which 0.10 GiB is free.'));
    expect(d.strategy).toBe('failover');
    expect(d.workflow).toEqual(wf);
    expect(d.message).toContain('with the request as it was');
  });

  it('tries once what the shape alone predicts to fit when a bound learned too high says nothing fits', async () => {
    const r = new Run(txt2img({ ckpt: SD15, width: 1024, height: 1024, batch: 8 }), [server('g8', 8)], 'g8');
    // OOMs seen beside memory the model did not know was taken: bounds far above the truth, for the
    // plain and the tiled shape alike.
    for (const tiled of [false, true]) {
      r.model.observeOom({ server: { ...server('g8', 8), device: 'cuda' }, workflow: txt2img({ ckpt: SD15, width: 512, height: 512, batch: 1, tiled }), text: cudaOomMessage(30 * GiB, 8 * GiB, 7 * GiB) });
    }
    const d = attempt(r.fail('COMFYUI_OOM', await firstOom(r)));
    expect(d.message).toContain('the shape estimate alone; what was learned here predicts no fit');
    expect((await r.simulate()).ok).toBe(true);
  });

  it('aborts clearly when no server is predicted to fit even at the floors', async () => {
    const r = new Run(txt2img({ ckpt: 'flux1-dev.safetensors', width: 1024, height: 1024 }), [server('g8', 8)], 'g8');
    const d = r.fail('COMFYUI_OOM', await firstOom(r));
    expect(d.action === 'abort' && d.reason).toMatch(/no server is predicted to fit this workflow even with tiled_vae, reduce_batch, reduce_resolution.*largest: g8/);
  });

  it('keeps the OOM budget apart from the transient retries', async () => {
    const r = new Run(txt2img({ ckpt: SDXL, width: 1024, height: 1024, batch: 8 }), [server('g8', 8)], 'g8');
    for (let i = 0; i < 3; i++) expect(attempt(r.fail('COMFYUI_OVERLOADED')).strategy).toBe('retry');
    expect(attempt(r.fail('COMFYUI_OOM', await firstOom(r))).strategy).toBe('reduce_batch');
    const spent = r.fail('COMFYUI_OOM', 'CUDA out of memory. Tried to allocate 1.00 GiB. GPU 0 has a total capacity of 8.00 GiB of which 0.10 GiB is free.', { oomRetries: 1 });
    expect(spent.action === 'abort' && spent.reason).toContain('out-of-memory budget exhausted: 1 of 1');
  });

  it('uses only the strategies the policy lists for COMFYUI_OOM (no failover: reduce where it failed)', async () => {
    const r = new Run(txt2img({ ckpt: SD15, width: 1024, height: 1024, batch: 8 }), [server('small', 6), server('big', 24)], 'small', {
      recovery: { COMFYUI_OOM: ['reduce_batch'] },
    });
    const d = attempt(r.fail('COMFYUI_OOM', await firstOom(r)));
    expect(d.strategy).toBe('reduce_batch');
    expect(d.server.require).toEqual(['small']);
    expect((await r.simulate()).ok).toBe(true);
  });

  it('falls back to the ladder when no server capacity is known', () => {
    const r = new Run(txt2img({ ckpt: SD15 }), [server('a', null), server('b', null)], 'a');
    expect(attempt(r.fail('COMFYUI_OOM', 'CUDA out of memory. Tried to allocate 1.00 GiB.')).strategy).toBe('free_memory');
  });
});

describe('quality "exact" without the memory model', () => {
  it('refuses an output-changing ladder step and names it', () => {
    const wf = txt2img({ ckpt: SD15, batch: 4 });
    const job: JobRecord = { ...newJobRecord({ id: 'j', workflow: wf, options: { quality: 'exact', recovery: { COMFYUI_OOM: ['reduce_batch'] } }, now: 0 }), status: 'running' };
    const failed: AttemptRecord = { number: 1, server: 'a', promptId: 'p1', status: 'failed', workflow: wf, code: 'COMFYUI_OOM', startedAt: 0 };
    const d = decideNext({
      code: 'COMFYUI_OOM',
      classification: { retryable: true },
      job: { ...job, attempts: [failed] },
      failedAttempt: failed,
      pool: { servers: [server('a', 8)] },
      policy: compilePolicy(undefined, job.options.recovery),
      maxRetries: 3,
    });
    expect(d.action === 'abort' && d.reason).toContain('quality "exact" refuses reduce_batch (node 5 EmptyLatentImage batch_size 4 -> 2)');
  });
});
