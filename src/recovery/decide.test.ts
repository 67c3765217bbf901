import { describe, expect, it } from 'vitest';
import type { ApiWorkflow } from '../comfy/types.js';
import { ERROR_CODES, ERROR_REGISTRY, type ErrorCode } from '../errors/codes.js';
import { newJobRecord, type AttemptRecord, type InputChange, type JobOptions, type JobRecord, type StrategyName } from '../jobs/types.js';
import { deepFreeze, fluxUnet, hiresFixTwoSamplers, sd15Txt2img, sdxlRefiner } from '../../test/fixtures/workflows/index.js';
import { applyParams } from './patcher.js';
import { compilePolicy, decideNext, type DecisionInput, type PoolServer, type RecoveryDecision, type RecoveryPolicy } from './policy.js';

type Classification = DecisionInput['classification'];
type Attempt = Extract<RecoveryDecision, { action: 'attempt' }>;

function server(name: string, over: Partial<PoolServer> = {}): PoolServer {
  return {
    name,
    healthy: true,
    breakerOpen: false,
    vramTotal: 24_000,
    vramFree: 20_000,
    models: { checkpoints: ['v1-5-pruned-emaonly.ckpt'] },
    nodeTypes: null,
    supportsPartialTargets: true,
    ...over,
  };
}

/**
 * Plays the engine's part: keeps a job record, asks `decideNext` after each failure and, like the
 * engine, records the step and starts the next attempt on the server the decision points to.
 */
class Engine {
  job: JobRecord;
  pool: PoolServer[];
  maxRetries: number;
  policy: RecoveryPolicy;
  decisions: RecoveryDecision[] = [];

  constructor(opts: { workflow: ApiWorkflow; pool: PoolServer[]; options?: JobOptions; maxRetries?: number; firstServer?: string; policy?: RecoveryPolicy }) {
    const workflow = deepFreeze(opts.workflow);
    this.pool = opts.pool;
    this.maxRetries = opts.maxRetries ?? 3;
    this.policy = opts.policy ?? compilePolicy();
    this.job = {
      ...newJobRecord({ id: 'job-1', workflow, options: opts.options ?? {}, now: 0 }),
      status: 'running',
      attempts: [this.attempt(1, opts.firstServer ?? opts.pool[0]?.name ?? 'a', workflow)],
      startedAt: 0,
    };
  }

  attempt(number: number, serverName: string, workflow: ApiWorkflow, strategy?: StrategyName, changes?: InputChange[], partialTargets?: string[]): AttemptRecord {
    return {
      number,
      server: serverName,
      promptId: `p${number}`,
      status: 'running',
      workflow: deepFreeze(workflow),
      ...(strategy ? { strategy, changes: changes ?? [] } : {}),
      ...(partialTargets ? { partialTargets } : {}),
      startedAt: number,
    };
  }

  get last(): AttemptRecord {
    const a = this.job.attempts.at(-1);
    if (!a) throw new Error('no attempt');
    return a;
  }

  input(code: ErrorCode, classification: Partial<Classification> = {}): DecisionInput {
    const failed = { ...this.last, status: 'failed' as const, code, endedAt: this.last.startedAt };
    return {
      code,
      classification: { retryable: ERROR_REGISTRY[code].retryable, ...classification },
      job: { ...this.job, attempts: [...this.job.attempts.slice(0, -1), failed] },
      failedAttempt: failed,
      pool: { servers: this.pool },
      policy: this.policy,
      maxRetries: this.maxRetries,
    };
  }

  /** The current attempt fails with `code`; returns the decision and, if any, starts the next attempt. */
  fail(code: ErrorCode, classification: Partial<Classification> = {}): RecoveryDecision {
    const input = this.input(code, classification);
    const d = decideNext(input);
    this.decisions.push(d);
    this.job = input.job;
    if (d.action === 'abort') return d;
    const next = this.pick(d);
    const number = this.last.number + 1;
    this.job.recoveryHistory = [
      ...this.job.recoveryHistory,
      { attempt: this.last.number, code, strategy: d.strategy, changes: d.changes, success: false, server: next, promptId: `p${number}`, message: d.message, startedAt: number, endedAt: number },
    ];
    this.job.attempts = [...this.job.attempts, this.attempt(number, next, d.workflow, d.strategy, d.changes, d.partialTargets)];
    this.job.retryCount += 1;
    return d;
  }

  pick(d: Attempt): string {
    const s = d.server;
    if (s.prefer) return s.prefer;
    if (s.require?.[0]) return s.require[0];
    const ok = this.pool.find((p) => p.healthy && !p.breakerOpen && !s.exclude?.includes(p.name));
    return ok?.name ?? this.last.server;
  }
}

function attempt(d: RecoveryDecision): Attempt {
  if (d.action !== 'attempt') throw new Error(`expected an attempt, got abort: ${d.reason}`);
  return d;
}

function abortReason(d: RecoveryDecision): string {
  if (d.action !== 'abort') throw new Error(`expected an abort, got ${d.strategy}: ${d.message}`);
  return d.reason;
}

const oomStart = (): ApiWorkflow => applyParams(sd15Txt2img(), { width: 1024, height: 1024, batch_size: 8, steps: 30 }).workflow;

describe('decideNext: the OOM ladder', () => {
  it('walks from 1024x1024 batch 8 to the floors on one server, one step per attempt, changes accumulating', () => {
    const e = new Engine({ workflow: oomStart(), pool: [server('a')], maxRetries: 50 });
    const walked: Array<[StrategyName, InputChange[]]> = [];
    for (;;) {
      const d = e.fail('COMFYUI_OOM');
      if (d.action === 'abort') break;
      walked.push([d.strategy, d.changes]);
    }
    const latent = (input: string, from: number, to: number): InputChange => ({ nodeId: '5', classType: 'EmptyLatentImage', input, from, to });
    const steps = (from: number, to: number): InputChange => ({ nodeId: '3', classType: 'KSampler', input: 'steps', from, to });
    expect(walked).toEqual([
      ['free_memory', []],
      ['tiled_vae', [
        { nodeId: '8', classType: 'VAEDecode', input: 'class_type', from: 'VAEDecode', to: 'VAEDecodeTiled' },
        { nodeId: '8', classType: 'VAEDecodeTiled', input: 'tile_size', from: null, to: 512 },
        { nodeId: '8', classType: 'VAEDecodeTiled', input: 'overlap', from: null, to: 64 },
        { nodeId: '8', classType: 'VAEDecodeTiled', input: 'temporal_size', from: null, to: 64 },
        { nodeId: '8', classType: 'VAEDecodeTiled', input: 'temporal_overlap', from: null, to: 8 },
      ]],
      ['reduce_batch', [latent('batch_size', 8, 4)]],
      ['reduce_batch', [latent('batch_size', 4, 2)]],
      ['reduce_batch', [latent('batch_size', 2, 1)]],
      ['reduce_resolution', [latent('width', 1024, 816), latent('height', 1024, 816)]],
      ['reduce_resolution', [latent('width', 816, 656), latent('height', 816, 656)]],
      ['reduce_resolution', [latent('width', 656, 528), latent('height', 656, 528)]],
      ['reduce_resolution', [latent('width', 528, 512), latent('height', 528, 512)]],
      ['reduce_steps', [steps(30, 24)]],
      ['reduce_steps', [steps(24, 20)]],
    ]);
    const final = e.last.workflow;
    expect(final['5']?.inputs).toEqual({ width: 512, height: 512, batch_size: 1 });
    expect(final['3']?.inputs['steps']).toBe(20);
    expect(final['8']?.class_type).toBe('VAEDecodeTiled');
    expect(e.job.workflow['5']?.inputs['width']).toBe(1024);
    expect(abortReason(e.decisions.at(-1) as RecoveryDecision)).toMatch(/^no recovery strategy left for COMFYUI_OOM \(/);
    // The free_memory step asks the engine to POST /free on the same server first.
    expect(e.decisions[0]).toMatchObject({ strategy: 'free_memory', freeMemoryFirst: true, server: { prefer: 'a' }, useBackoff: false });
  });

  it('frees memory once per server and fails over to a server with more free VRAM', () => {
    const small = server('small', { vramTotal: 8_000, vramFree: 1_000 });
    const big = server('big', { vramTotal: 24_000, vramFree: 20_000 });
    const mid = server('mid', { vramTotal: 12_000, vramFree: 10_000 });
    const e = new Engine({ workflow: oomStart(), pool: [small, mid, big], maxRetries: 10 });
    expect(attempt(e.fail('COMFYUI_OOM'))).toMatchObject({ strategy: 'free_memory', server: { prefer: 'small' } });
    const fo = attempt(e.fail('COMFYUI_OOM'));
    expect(fo).toMatchObject({ strategy: 'failover', changes: [], useBackoff: false, server: { moreVramThan: 'small', exclude: ['small'], require: ['big', 'mid'] } });
    expect(e.last.server).toBe('big');
    expect(attempt(e.fail('COMFYUI_OOM'))).toMatchObject({ strategy: 'free_memory', server: { prefer: 'big' } });
    // Nobody has more VRAM than "big": the ladder moves on to changing the workflow.
    expect(attempt(e.fail('COMFYUI_OOM')).strategy).toBe('tiled_vae');
  });

  it('skips free_memory on a server that is not healthy', () => {
    const e = new Engine({ workflow: oomStart(), pool: [server('a', { healthy: false }), server('b', { vramFree: 1 })] });
    const d = attempt(e.fail('COMFYUI_OOM'));
    expect(d.strategy).toBe('tiled_vae');
  });

  it('reduces resolution of a fallback workflow relative to that workflow, not the job original', () => {
    const fallback = applyParams(sd15Txt2img(), { width: 640, height: 640 }).workflow;
    const e = new Engine({
      workflow: sd15Txt2img(),
      pool: [server('a')],
      maxRetries: 10,
      options: { fallbackWorkflows: [fallback] },
      policy: compilePolicy({ COMFYUI_MODEL_MISSING: ['fallback_workflow'], COMFYUI_OOM: ['reduce_resolution'] }),
    });
    expect(attempt(e.fail('COMFYUI_MODEL_MISSING')).strategy).toBe('fallback_workflow');
    expect(attempt(e.fail('COMFYUI_OOM')).changes.map((c) => c.to)).toEqual([512, 512]);
    expect(abortReason(e.fail('COMFYUI_OOM'))).toContain('reduce_resolution: resolution is at its floor');
  });
});

describe('decideNext: budget', () => {
  it('aborts when maxRetries attempts after the first are spent, naming the last code', () => {
    const e = new Engine({ workflow: oomStart(), pool: [server('a')], maxRetries: 2 });
    attempt(e.fail('COMFYUI_OOM'));
    attempt(e.fail('COMFYUI_OOM'));
    expect(e.job.attempts).toHaveLength(3);
    expect(abortReason(e.fail('COMFYUI_OOM'))).toBe('retry budget exhausted: 2 of 2 retries used; last error COMFYUI_OOM on a');
  });

  it('with maxRetries 0 aborts on the first failure', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a')], maxRetries: 0 });
    expect(abortReason(e.fail('COMFYUI_CONNECTION_ERROR'))).toContain('retry budget exhausted: 0 of 0');
  });

  it('decides the same way when asked again for the same failure (a restarted engine)', () => {
    const e = new Engine({ workflow: oomStart(), pool: [server('a'), server('b', { vramFree: 1 })], maxRetries: 5 });
    e.fail('COMFYUI_OOM');
    const input = e.input('COMFYUI_OOM');
    const first = decideNext(input);
    // The engine crashed after recording the step for this failure; the step must not count as history.
    const recorded = attempt(first);
    const again = decideNext({
      ...input,
      job: {
        ...input.job,
        recoveryHistory: [...input.job.recoveryHistory, { attempt: input.failedAttempt.number, code: 'COMFYUI_OOM', strategy: recorded.strategy, changes: recorded.changes, success: null, server: null, promptId: null, message: recorded.message, startedAt: 9, endedAt: null }],
      },
    });
    expect(again).toEqual(first);
  });
});

describe('decideNext: permanent and fatal codes', () => {
  it('abort at once with plenty of budget left', () => {
    const final = ERROR_CODES.filter((c) => ['permanent', 'fatal'].includes(ERROR_REGISTRY[c].category));
    expect(final.length).toBeGreaterThan(4);
    for (const code of final) {
      const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a'), server('b')], maxRetries: 10 });
      const reason = abortReason(e.fail(code));
      expect(reason).toContain(code);
      expect(reason).toContain(`a ${ERROR_REGISTRY[code].category} error`);
    }
  });
});

describe('decideNext: COMFYUI_MODEL_MISSING', () => {
  const missing = (name: string, folder = 'checkpoints'): Partial<Classification> => ({ missingModels: [{ name, folder }] });

  it('fails over to a server that has the model, requiring it', () => {
    const e = new Engine({
      workflow: sdxlRefiner(),
      pool: [server('a', { models: { checkpoints: ['sd_xl_base_1.0.safetensors'] } }), server('b', { models: { checkpoints: ['sd_xl_base_1.0.safetensors', 'sd_xl_refiner_1.0.safetensors'] } })],
    });
    const d = attempt(e.fail('COMFYUI_MODEL_MISSING', missing('sd_xl_refiner_1.0.safetensors')));
    expect(d).toMatchObject({ strategy: 'failover', changes: [], server: { requireModels: ['sd_xl_refiner_1.0.safetensors'], require: ['b'], exclude: ['a'] } });
    expect(d.message).toContain('a server that has sd_xl_refiner_1.0.safetensors');
  });

  it('otherwise switches the missing loader along fallbackModels, then the default chain', () => {
    const e = new Engine({
      workflow: sdxlRefiner(),
      options: { fallbackModels: ['juggernautXL.safetensors'] },
      pool: [
        server('a', { models: { checkpoints: ['sd_xl_base_1.0.safetensors', 'v1-5-pruned-emaonly.ckpt'] } }),
        server('b', { models: { checkpoints: ['juggernautXL.safetensors', 'sd_xl_base_1.0.safetensors'] } }),
      ],
      maxRetries: 5,
    });
    const d1 = attempt(e.fail('COMFYUI_MODEL_MISSING', missing('sd_xl_refiner_1.0.safetensors')));
    expect(d1).toMatchObject({
      strategy: 'switch_model',
      changes: [{ nodeId: '12', classType: 'CheckpointLoaderSimple', input: 'ckpt_name', from: 'sd_xl_refiner_1.0.safetensors', to: 'juggernautXL.safetensors' }],
      server: { require: ['b'], requireModels: ['juggernautXL.safetensors'] },
    });
    expect(d1.message).toContain('sd_xl_refiner_1.0.safetensors is not on any usable server; switch to fallback model juggernautXL.safetensors');
    expect(e.last.server).toBe('b');
    // The job's own fallback turns out unloadable on b: the default chain comes next, on servers with every model.
    const d2 = attempt(e.fail('COMFYUI_MODEL_MISSING', missing('juggernautXL.safetensors')));
    expect(d2).toMatchObject({ strategy: 'switch_model', server: { require: ['a', 'b'], requireModels: ['sd_xl_base_1.0.safetensors'] } });
    expect(d2.changes).toEqual([{ nodeId: '12', classType: 'CheckpointLoaderSimple', input: 'ckpt_name', from: 'juggernautXL.safetensors', to: 'sd_xl_base_1.0.safetensors' }]);
    // The base loader was never touched.
    expect(e.last.workflow['4']?.inputs['ckpt_name']).toBe('sd_xl_base_1.0.safetensors');
  });

  it('prefers a fallback model that a server can load together with the rest of the workflow', () => {
    const e = new Engine({
      workflow: sdxlRefiner(),
      options: { fallbackModels: ['only-on-c.safetensors', 'on-both.safetensors'] },
      pool: [
        server('c', { models: { checkpoints: ['only-on-c.safetensors'] } }),
        server('d', { models: { checkpoints: ['on-both.safetensors', 'sd_xl_base_1.0.safetensors'] } }),
      ],
    });
    const d = attempt(e.fail('COMFYUI_MODEL_MISSING', missing('sd_xl_refiner_1.0.safetensors')));
    expect(d.server).toEqual({ require: ['d'], requireModels: ['on-both.safetensors'] });
  });

  it('switches the UNet of a Flux graph when the folder is diffusion_models', () => {
    const e = new Engine({
      workflow: fluxUnet(),
      options: { fallbackModels: ['flux1-schnell.safetensors'] },
      pool: [server('a', { models: { diffusion_models: ['flux1-schnell.safetensors'] } })],
    });
    const d = attempt(e.fail('COMFYUI_MODEL_MISSING', missing('flux1-dev.safetensors', 'diffusion_models')));
    expect(d.changes).toEqual([{ nodeId: '12', classType: 'UNETLoader', input: 'unet_name', from: 'flux1-dev.safetensors', to: 'flux1-schnell.safetensors' }]);
  });

  it('falls back to any checkpoint a server has after the chain, then to a fallback workflow', () => {
    const e = new Engine({
      workflow: sd15Txt2img(),
      options: { fallbackWorkflows: [fluxUnet()] },
      pool: [server('a', { models: { checkpoints: ['zzz.safetensors'], diffusion_models: ['flux1-dev.safetensors'] } })],
      maxRetries: 5,
    });
    const d1 = attempt(e.fail('COMFYUI_MODEL_MISSING', missing('v1-5-pruned-emaonly.ckpt')));
    expect(d1.server).toEqual({ require: ['a'], requireModels: ['zzz.safetensors'] });
    const d2 = attempt(e.fail('COMFYUI_MODEL_MISSING', missing('zzz.safetensors')));
    expect(d2.strategy).toBe('fallback_workflow');
    expect(d2.workflow).toEqual(fluxUnet());
    expect(d2.message).toContain('fallback workflow 1 of 1');
  });

  it('aborts naming the model when no server has it and nothing else is available', () => {
    const e = new Engine({ workflow: sdxlRefiner(), pool: [server('a', { models: { checkpoints: [] } }), server('b', { models: null })] });
    const reason = abortReason(e.fail('COMFYUI_MODEL_MISSING', missing('sd_xl_refiner_1.0.safetensors')));
    expect(reason).toMatch(/^model sd_xl_refiner_1.0.safetensors is not on any server; no fallback model or workflow is available/);
  });

  it('reads the missing model off the failing loader when the classification only names the node', () => {
    const e = new Engine({ workflow: sdxlRefiner(), pool: [server('a', { models: { checkpoints: ['sd_xl_base_1.0.safetensors'] } })] });
    const d = attempt(e.fail('COMFYUI_MODEL_MISSING', { nodeId: '12' }));
    expect(d.strategy).toBe('switch_model');
    expect(d.changes).toEqual([{ nodeId: '12', classType: 'CheckpointLoaderSimple', input: 'ckpt_name', from: 'sd_xl_refiner_1.0.safetensors', to: 'sd_xl_base_1.0.safetensors' }]);
  });

  it('does not switch a missing LoRA', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a')] });
    const reason = abortReason(e.fail('COMFYUI_MODEL_MISSING', missing('add_detail.safetensors', 'loras')));
    expect(reason).toContain('model add_detail.safetensors is not on any server');
    expect(reason).toContain('switch_model: only checkpoints and diffusion models are switched, not loras');
  });
});

describe('decideNext: COMFYUI_MISSING_NODE and COMFYUI_DEPENDENCY_ERROR', () => {
  it('routes a missing node type to a server that has it, else a fallback workflow, else aborts naming it', () => {
    const e = new Engine({
      workflow: sd15Txt2img(),
      options: { fallbackWorkflows: [sd15Txt2img()] },
      pool: [server('a', { nodeTypes: ['KSampler'] }), server('b', { nodeTypes: ['KSampler', 'IPAdapterAdvanced'] }), server('c')],
    });
    const cls = { missingNodeTypes: ['IPAdapterAdvanced'] };
    expect(attempt(e.fail('COMFYUI_MISSING_NODE', cls))).toMatchObject({ strategy: 'failover', server: { requireNodeTypes: ['IPAdapterAdvanced'], require: ['b'] } });
    expect(attempt(e.fail('COMFYUI_MISSING_NODE', cls)).strategy).toBe('fallback_workflow');
    const alone = new Engine({ workflow: sd15Txt2img(), pool: [server('a', { nodeTypes: ['KSampler'] })] });
    expect(abortReason(alone.fail('COMFYUI_MISSING_NODE', cls))).toMatch(/^node type IPAdapterAdvanced is not installed on any server/);
  });

  it('takes the missing node type from the failing node when the classification only names the node', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a', { nodeTypes: [] }), server('b', { nodeTypes: ['KSampler'] })] });
    expect(attempt(e.fail('COMFYUI_MISSING_NODE', { nodeId: '3' }))).toMatchObject({ strategy: 'failover', server: { require: ['b'], requireNodeTypes: ['KSampler'] } });
  });

  it('blocks each server that hit a dependency error for this job, then tries the fallback workflow', () => {
    const e = new Engine({ workflow: sd15Txt2img(), options: { fallbackWorkflows: [hiresFixTwoSamplers()] }, pool: [server('a'), server('b'), server('c')], maxRetries: 5 });
    const d1 = attempt(e.fail('COMFYUI_DEPENDENCY_ERROR'));
    expect(d1).toMatchObject({ strategy: 'failover', server: { exclude: ['a'] } });
    expect(d1.server.require).toBeUndefined();
    expect(d1.message).toContain('(b, c)');
    expect(d1.message).toContain('a is blocked for this workflow');
    expect(attempt(e.fail('COMFYUI_DEPENDENCY_ERROR')).server).toEqual({ exclude: ['a', 'b'] });
    expect(attempt(e.fail('COMFYUI_DEPENDENCY_ERROR')).strategy).toBe('fallback_workflow');
    expect(abortReason(e.fail('COMFYUI_DEPENDENCY_ERROR'))).toContain('every fallback workflow was tried');
  });
});

describe('decideNext: COMFYUI_GPU_FAULT', () => {
  it('fails over away from the faulty server, and aborts when there is no other', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a'), server('b', { breakerOpen: true }), server('c')] });
    const gpu = attempt(e.fail('COMFYUI_GPU_FAULT'));
    expect(gpu.server).toEqual({ exclude: ['a'] });
    expect(gpu.message).toBe('COMFYUI_GPU_FAULT: fail over from a to another healthy server (c)');
    const alone = new Engine({ workflow: sd15Txt2img(), pool: [server('a')] });
    expect(abortReason(alone.fail('COMFYUI_GPU_FAULT'))).toContain('failover: no healthy server left that qualifies');
  });
});

describe('decideNext: connection errors, timeouts and stalls', () => {
  it('resumes on the same healthy server after backoff, then fails over, then retries', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a'), server('b')], maxRetries: 5 });
    expect(attempt(e.fail('COMFYUI_CONNECTION_ERROR'))).toMatchObject({ strategy: 'resume', server: { prefer: 'a' }, useBackoff: true });
    expect(attempt(e.fail('COMFYUI_CONNECTION_ERROR'))).toMatchObject({ strategy: 'failover', server: { exclude: ['a'] } });
    expect(attempt(e.fail('COMFYUI_CONNECTION_ERROR'))).toMatchObject({ strategy: 'retry', useBackoff: true, server: {} });
  });

  it('fails over at once when the server that dropped is down', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a', { healthy: false }), server('b')] });
    expect(attempt(e.fail('COMFYUI_CONNECTION_ERROR'))).toMatchObject({ strategy: 'failover', useBackoff: false, server: { exclude: ['a'] } });
  });

  it('with a lone server that is down keeps retrying with backoff until the budget is spent', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a', { healthy: false })], maxRetries: 4 });
    const strategies: string[] = [];
    for (let d = e.fail('COMFYUI_CONNECTION_ERROR'); d.action === 'attempt'; d = e.fail('COMFYUI_CONNECTION_ERROR')) strategies.push(d.strategy);
    expect(strategies).toEqual(['retry', 'retry', 'retry', 'retry']);
    expect(abortReason(e.decisions.at(-1) as RecoveryDecision)).toContain('retry budget exhausted: 4 of 4');
  });

  it('resume runs only the unfinished output nodes where the server supports partial execution', () => {
    const e = new Engine({ workflow: hiresFixTwoSamplers(), pool: [server('a')] });
    e.job.checkpoint = { progress: 60, completedOutputs: { '13': { images: [{ filename: 'ComfyUI_lowres_00001_.png', subfolder: '', type: 'output' }] } }, cacheServer: 'a', promptId: 'p1', updatedAt: 1 };
    const d = attempt(e.fail('COMFYUI_TIMEOUT'));
    expect(d).toMatchObject({ strategy: 'resume', partialTargets: ['9'], useBackoff: false, server: { prefer: 'a' } });
    expect(d.message).toContain('run only the unfinished outputs 9 (done: 13)');
  });

  it('resume resubmits everything when the server cannot run partial targets or nothing finished', () => {
    const old = new Engine({ workflow: hiresFixTwoSamplers(), pool: [server('a', { supportsPartialTargets: false })] });
    old.job.checkpoint = { progress: 60, completedOutputs: { '13': {} }, cacheServer: 'a', promptId: 'p1', updatedAt: 1 };
    expect(attempt(old.fail('COMFYUI_TIMEOUT')).partialTargets).toBeUndefined();
    const fresh = new Engine({ workflow: hiresFixTwoSamplers(), pool: [server('a')] });
    expect(attempt(fresh.fail('COMFYUI_TIMEOUT')).partialTargets).toBeUndefined();
  });

  it('a stalled job goes to another server first', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a'), server('b')] });
    expect(attempt(e.fail('COMFYUI_STALLED'))).toMatchObject({ strategy: 'failover', server: { exclude: ['a'] } });
  });
});

describe('decideNext: retry rules', () => {
  it('COMFYUI_GENERATION_ERROR is retried once, then the job fails', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a')], maxRetries: 5 });
    expect(attempt(e.fail('COMFYUI_GENERATION_ERROR'))).toMatchObject({ strategy: 'retry', useBackoff: true });
    expect(abortReason(e.fail('COMFYUI_GENERATION_ERROR'))).toBe('no recovery strategy left for COMFYUI_GENERATION_ERROR (retry: already used)');
  });

  it('COMFYUI_SERVER_ERROR retries once, fails over, then stops', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a'), server('b')], maxRetries: 5, firstServer: 'a' });
    expect(attempt(e.fail('COMFYUI_SERVER_ERROR')).strategy).toBe('retry');
    expect(attempt(e.fail('COMFYUI_SERVER_ERROR')).strategy).toBe('failover');
    expect(e.fail('COMFYUI_SERVER_ERROR').action).toBe('abort');
  });

  it('COMFYUI_OVERLOADED routes elsewhere, then backs off and retries until the budget', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a'), server('b')], maxRetries: 4 });
    const strategies: string[] = [];
    for (let d = e.fail('COMFYUI_OVERLOADED'); d.action === 'attempt'; d = e.fail('COMFYUI_OVERLOADED')) strategies.push(d.strategy);
    expect(strategies).toEqual(['failover', 'retry', 'retry', 'retry']);
  });

  it('COMFYUI_INTERRUPTED is resubmitted unchanged', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a')] });
    const d = attempt(e.fail('COMFYUI_INTERRUPTED'));
    expect(d).toMatchObject({ strategy: 'retry', changes: [] });
    expect(d.workflow).toEqual(e.job.workflow);
  });

  it('counts each listed retry of a custom policy: retry, fail over, retry again', () => {
    const policy = compilePolicy(undefined, { COMFYUI_GENERATION_ERROR: ['retry', 'failover', 'retry'] });
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a'), server('b')], maxRetries: 5, policy });
    const strategies: string[] = [];
    for (let d = e.fail('COMFYUI_GENERATION_ERROR'); d.action === 'attempt'; d = e.fail('COMFYUI_GENERATION_ERROR')) strategies.push(d.strategy);
    expect(strategies).toEqual(['retry', 'failover', 'retry']);
  });
});

describe('decideNext: overrides', () => {
  it('a per-job OOM policy is followed in its own order, and an explicit abort ends it', () => {
    const policy = compilePolicy({ COMFYUI_OOM: ['free_memory'] }, { COMFYUI_OOM: ['reduce_batch', 'abort'] });
    const e = new Engine({ workflow: oomStart(), pool: [server('a')], maxRetries: 10, policy });
    expect(attempt(e.fail('COMFYUI_OOM')).strategy).toBe('reduce_batch');
    expect(attempt(e.fail('COMFYUI_OOM')).strategy).toBe('reduce_batch');
    expect(attempt(e.fail('COMFYUI_OOM')).strategy).toBe('reduce_batch');
    expect(abortReason(e.fail('COMFYUI_OOM'))).toBe('COMFYUI_OOM: the recovery policy ends with abort (reduce_batch: batch size is already 1)');
  });

  it('a global override that makes a transient code abort is respected', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a')], policy: compilePolicy({ COMFYUI_TIMEOUT: ['abort'] }) });
    expect(abortReason(e.fail('COMFYUI_TIMEOUT'))).toContain('COMFYUI_TIMEOUT is set to abort by the recovery policy');
  });
});

describe('decideNext: purity', () => {
  it('never modifies its input (deep-frozen job, attempts and pool)', () => {
    const e = new Engine({ workflow: oomStart(), pool: [server('a'), server('b', { vramFree: 30_000 })], maxRetries: 10 });
    for (const code of ['COMFYUI_OOM', 'COMFYUI_OOM', 'COMFYUI_OOM', 'COMFYUI_MODEL_MISSING', 'COMFYUI_CONNECTION_ERROR'] as const) {
      const input = deepFreeze(e.input(code, code === 'COMFYUI_MODEL_MISSING' ? { missingModels: [{ name: 'v1-5-pruned-emaonly.ckpt' }] } : {}));
      expect(() => decideNext(input)).not.toThrow();
      e.fail(code);
    }
    expect(e.job.workflow).toEqual(oomStart());
  });
});

describe('every decision is charged to the budget', () => {
  it('aborts once maxRetries decisions were taken even when none of them reached a server', () => {
    const workflow = sd15Txt2img();
    const job: JobRecord = { ...newJobRecord({ id: 'j', workflow, now: 0 }), status: 'running' };
    // Three earlier decisions, each for a failure found before sending (no attempt record).
    job.recoveryHistory = [1, 1, 1].map((attempt) => ({
      attempt, code: 'COMFYUI_CONNECTION_ERROR', strategy: 'retry' as const, changes: [], success: false, server: null, promptId: null, message: '', startedAt: 0, endedAt: 0,
    }));
    const failed: AttemptRecord = { number: 1, server: '', promptId: '', status: 'failed', workflow, startedAt: 0 };
    const d = decideNext({ code: 'COMFYUI_CONNECTION_ERROR', classification: { retryable: true }, job, failedAttempt: failed, pool: { servers: [server('a')] }, policy: compilePolicy(), maxRetries: 3 });
    expect(d.action).toBe('abort');
    expect(d.action === 'abort' && d.reason).toContain('3 of 3');
  });
});

describe('decideNext: low-confidence permanent verdicts', () => {
  it('retry once, then abort when the same code comes back', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a')], maxRetries: 5 });
    const first = attempt(e.fail('COMFYUI_INVALID_PARAMETERS', { confidence: 'low' }));
    expect(first).toMatchObject({ strategy: 'retry', changes: [], useBackoff: true });
    expect(first.message).toContain('low-confidence');
    expect(first.workflow).toEqual(sd15Txt2img());
    const reason = abortReason(e.fail('COMFYUI_INVALID_PARAMETERS', { confidence: 'low' }));
    expect(reason).toContain('COMFYUI_INVALID_PARAMETERS is a permanent error');
  });

  it('still abort at once when confident, when fatal, or when the budget is spent', () => {
    const confident = new Engine({ workflow: sd15Txt2img(), pool: [server('a')] });
    expect(abortReason(confident.fail('COMFYUI_WORKFLOW_ERROR', { confidence: 'high' }))).toContain('a permanent error');
    const unknown = new Engine({ workflow: sd15Txt2img(), pool: [server('a')] });
    expect(abortReason(unknown.fail('COMFYUI_WORKFLOW_ERROR'))).toContain('a permanent error');
    const fatal = new Engine({ workflow: sd15Txt2img(), pool: [server('a')] });
    expect(abortReason(fatal.fail('COMFYUI_DISK_FULL', { confidence: 'low' }))).toContain('a fatal error');
    const noBudget = new Engine({ workflow: sd15Txt2img(), pool: [server('a')], maxRetries: 0 });
    expect(abortReason(noBudget.fail('COMFYUI_AUTH_ERROR', { confidence: 'low' }))).toContain('a permanent error');
  });

  it('leave non-permanent codes to their own strategies', () => {
    const e = new Engine({ workflow: sd15Txt2img(), pool: [server('a'), server('b')] });
    const d = attempt(e.fail('COMFYUI_CONNECTION_ERROR', { confidence: 'low' }));
    expect(d.message).not.toContain('low-confidence');
  });
});
