import { describe, expect, it } from 'vitest';
import { ComfyRequestError } from '../comfy/errors.js';
import { classify, toComfyGuardError } from './classify.js';
import { ComfyGuardError, isComfyGuardError } from './guard-error.js';

describe('ComfyGuardError', () => {
  it('takes category, retryable, message and hint from the registry by default', () => {
    const e = new ComfyGuardError('COMFYUI_OOM', { server: 'gpu-1', promptId: 'p-1', nodeId: '3', nodeType: 'KSampler' });
    expect(e).toBeInstanceOf(Error);
    expect(e).toMatchObject({ name: 'ComfyGuardError', code: 'COMFYUI_OOM', category: 'recoverable', retryable: true, server: 'gpu-1', promptId: 'p-1', nodeId: '3', nodeType: 'KSampler' });
    expect(e.message).toBe('The GPU ran out of memory while running the workflow.');
    expect(e.hint).toMatch(/batch size/);
  });

  it('keeps the cause and the raw evidence, and leaves both out of its JSON', () => {
    const cause = new Error('CUDA out of memory at /home/alice/x.py');
    const e = new ComfyGuardError('COMFYUI_OOM', { cause, evidence: { raw: 'secret' }, server: 'gpu-1' });
    expect(e.cause).toBe(cause);
    expect(e.evidence).toEqual({ raw: 'secret' });
    const json = JSON.parse(JSON.stringify(e)) as Record<string, unknown>;
    expect(json).toEqual({ name: 'ComfyGuardError', code: 'COMFYUI_OOM', category: 'recoverable', message: e.message, hint: e.hint, retryable: true, server: 'gpu-1' });
  });

  it('scrubs a message given to it, and never shows a host as the server in JSON', () => {
    const e = new ComfyGuardError('COMFYUI_CONNECTION_ERROR', { message: 'connect ECONNREFUSED 10.0.0.9:8188 (see /var/log/comfy.log)', server: '10.0.0.9:8188' });
    expect(e.message).toBe('connect ECONNREFUSED <ip> (see <path>)');
    expect(e.toJSON().server).toBeUndefined();
  });

  it('is recognised across package copies by its Symbol.for marker, not by prototype', () => {
    const e = new ComfyGuardError('COMFYUI_TIMEOUT');
    const foreign = Object.assign(Object.create(null) as object, { [Symbol.for('comfyguard.ComfyGuardError')]: true, code: 'COMFYUI_TIMEOUT' });
    expect(isComfyGuardError(e)).toBe(true);
    expect(isComfyGuardError(foreign)).toBe(true);
    expect(foreign instanceof ComfyGuardError).toBe(true);
    expect(isComfyGuardError(new Error('x'))).toBe(false);
    expect(isComfyGuardError(null)).toBe(false);
    expect(isComfyGuardError({ code: 'COMFYUI_TIMEOUT' })).toBe(false);
  });

  it('is built from a classification with its code, words, node and the classification itself', () => {
    const c = classify({ kind: 'execution_error', data: { node_id: '7', node_type: 'VAEDecode', exception_type: 'torch.OutOfMemoryError', exception_message: 'CUDA out of memory.' } });
    const e = ComfyGuardError.fromClassification(c, { server: 'gpu-2', promptId: 'p' });
    expect(e).toMatchObject({ code: 'COMFYUI_OOM', message: c.message, hint: c.hint, nodeId: '7', nodeType: 'VAEDecode', server: 'gpu-2', promptId: 'p', classification: c });
    expect(classify(e)).toEqual(c);
  });

  it('falls back to INTERNAL_ERROR for an unknown code rather than carrying garbage', () => {
    const e = new ComfyGuardError('NOT_A_CODE' as never);
    expect(e.code).toBe('INTERNAL_ERROR');
  });
});

describe('toComfyGuardError', () => {
  it('returns a ComfyGuardError unchanged', () => {
    const e = new ComfyGuardError('COMFYUI_DISK_FULL');
    expect(toComfyGuardError(e)).toBe(e);
  });

  it('normalises a ComfyRequestError once, keeping it as cause and evidence and its server', () => {
    const err = new ComfyRequestError({ kind: 'http', message: 'HTTP 429', status: 429, server: 'gpu-3', headers: { 'retry-after': '5' } });
    const e = toComfyGuardError(err, { promptId: 'p-9' });
    expect(e).toMatchObject({ code: 'COMFYUI_OVERLOADED', server: 'gpu-3', promptId: 'p-9', retryable: true });
    expect(e.cause).toBe(err);
    expect(e.evidence).toBe(err);
    expect(e.classification?.retryAfterMs).toBe(5000);
  });

  it('normalises anything thrown: a string, undefined, a plain object', () => {
    expect(toComfyGuardError('No space left on device').code).toBe('COMFYUI_DISK_FULL');
    expect(toComfyGuardError(undefined).code).toBe('INTERNAL_ERROR');
    expect(toComfyGuardError({ odd: true }).code).toBe('INTERNAL_ERROR');
  });
});
