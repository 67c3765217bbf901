import { describe, expect, it } from 'vitest';
import { ERROR_CODES, ERROR_REGISTRY } from '../errors/codes.js';
import type { RecoveryOverrides, StrategyName } from '../jobs/types.js';
import { compilePolicy, DEFAULT_POLICY, RecoveryPolicyError } from './policy.js';

function policyError(fn: () => unknown): RecoveryPolicyError {
  try {
    fn();
  } catch (e) {
    if (e instanceof RecoveryPolicyError) return e;
    throw e;
  }
  throw new Error('expected a RecoveryPolicyError');
}

describe('DEFAULT_POLICY', () => {
  it('has a non-empty list for every error code', () => {
    for (const code of ERROR_CODES) expect(DEFAULT_POLICY[code]?.length, code).toBeGreaterThan(0);
  });

  it('aborts at once on every permanent and fatal code, and only on those', () => {
    for (const code of ERROR_CODES) {
      const final = ['permanent', 'fatal'].includes(ERROR_REGISTRY[code].category);
      expect(DEFAULT_POLICY[code][0] === 'abort', code).toBe(final);
    }
  });

  it('follows the OOM ladder of DESIGN.md', () => {
    expect(DEFAULT_POLICY.COMFYUI_OOM).toEqual(['free_memory', 'failover', 'tiled_vae', 'reduce_batch', 'reduce_resolution', 'reduce_steps']);
    expect(DEFAULT_POLICY.COMFYUI_MODEL_MISSING).toEqual(['failover', 'switch_model', 'fallback_workflow']);
    expect(DEFAULT_POLICY.COMFYUI_GENERATION_ERROR).toEqual(['retry']);
  });

  it('is frozen', () => {
    expect(Object.isFrozen(DEFAULT_POLICY)).toBe(true);
  });
});

describe('compilePolicy', () => {
  it('without overrides is the defaults, frozen', () => {
    const p = compilePolicy();
    expect(p).toEqual(DEFAULT_POLICY);
    expect(Object.isFrozen(p)).toBe(true);
    expect(Object.isFrozen(p.COMFYUI_OOM)).toBe(true);
  });

  it('a global override replaces the whole list of its code and leaves the others', () => {
    const p = compilePolicy({ COMFYUI_OOM: ['reduce_batch', 'reduce_resolution'] });
    expect(p.COMFYUI_OOM).toEqual(['reduce_batch', 'reduce_resolution']);
    expect(p.COMFYUI_TIMEOUT).toEqual(DEFAULT_POLICY.COMFYUI_TIMEOUT);
  });

  it('a per-job override wins over the global one', () => {
    const p = compilePolicy({ COMFYUI_OOM: ['reduce_batch'], COMFYUI_STALLED: ['retry'] }, { COMFYUI_OOM: ['tiled_vae', 'abort'] });
    expect(p.COMFYUI_OOM).toEqual(['tiled_vae', 'abort']);
    expect(p.COMFYUI_STALLED).toEqual(['retry']);
  });

  it('does not share arrays with the caller', () => {
    const list: StrategyName[] = ['retry'];
    const p = compilePolicy({ COMFYUI_INTERRUPTED: list });
    list.push('failover');
    expect(p.COMFYUI_INTERRUPTED).toEqual(['retry']);
  });

  it('rejects an unknown code, naming it', () => {
    const e = policyError(() => compilePolicy({ COMFYUI_OUT_OF_MEMORY: ['retry'] }));
    expect(e.code).toBe('INVALID_RECOVERY_POLICY');
    expect(e.issues).toEqual([{ path: 'global.COMFYUI_OUT_OF_MEMORY', message: expect.stringContaining('unknown error code "COMFYUI_OUT_OF_MEMORY"') }]);
    expect(e.message).toContain('COMFYUI_OUT_OF_MEMORY');
  });

  it('rejects an unknown strategy, naming it and where it is', () => {
    const bad = { COMFYUI_OOM: ['free_memory', 'lower_cfg'] } as unknown as RecoveryOverrides;
    const e = policyError(() => compilePolicy(undefined, bad));
    expect(e.issues).toEqual([{ path: 'job.COMFYUI_OOM[1]', message: expect.stringContaining('unknown strategy "lower_cfg"') }]);
    expect(e.message).toContain('retry, failover, free_memory');
  });

  it('rejects an empty list, a non-list, abort before other strategies and a non-object', () => {
    expect(policyError(() => compilePolicy({ COMFYUI_OOM: [] })).issues[0]?.message).toContain('non-empty list');
    expect(policyError(() => compilePolicy({ COMFYUI_OOM: 'retry' } as unknown as RecoveryOverrides)).issues[0]?.path).toBe('global.COMFYUI_OOM');
    expect(policyError(() => compilePolicy({ COMFYUI_OOM: ['abort', 'retry'] })).issues[0]).toEqual({
      path: 'global.COMFYUI_OOM[0]',
      message: '"abort" must be the last strategy: nothing after it can run',
    });
    expect(policyError(() => compilePolicy([] as unknown as RecoveryOverrides)).issues[0]?.path).toBe('global');
  });

  it('reports every problem of both scopes at once', () => {
    const e = policyError(() => compilePolicy({ NOPE: ['retry'] }, { COMFYUI_OOM: ['x' as StrategyName], COMFYUI_TIMEOUT: [] }));
    expect(e.issues.map((i) => i.path)).toEqual(['global.NOPE', 'job.COMFYUI_OOM[0]', 'job.COMFYUI_TIMEOUT']);
  });
});
