import { afterEach, describe, expect, it, vi } from 'vitest';
import { ComfyRequestError } from '../comfy/errors.js';
import { PolicyConfigError } from './config-error.js';
import { DEFAULT_TIMEOUTS, resolveTimeouts, withTimeout } from './timeouts.js';

describe('resolveTimeouts', () => {
  it('defaults to 30 s per request, 300 s per generation, 2 s per health probe', () => {
    expect(DEFAULT_TIMEOUTS).toEqual({ requestMs: 30_000, generationMs: 300_000, healthMs: 2_000 });
    expect(resolveTimeouts()).toEqual(DEFAULT_TIMEOUTS);
  });

  it('lets a job override the global request and generation timeouts', () => {
    const t = resolveTimeouts({ requestMs: 10_000, generationMs: 100_000 }, { generationTimeoutMs: 900_000 });
    expect(t).toEqual({ requestMs: 10_000, generationMs: 900_000, healthMs: 2_000 });
  });

  it('names the bad field, with the job option name for job overrides', () => {
    expect(() => resolveTimeouts({ requestMs: 0 })).toThrow(/`timeouts\.requestMs`/);
    expect(() => resolveTimeouts({}, { generationTimeoutMs: -1 })).toThrow(/`options\.generationTimeoutMs`/);
    expect(() => resolveTimeouts({ healthMs: Number.POSITIVE_INFINITY })).toThrow(PolicyConfigError);
  });
});

describe('withTimeout', () => {
  afterEach(() => vi.useRealTimers());

  it('rejects with a timeout ComfyRequestError at the deadline and aborts the call', async () => {
    vi.useFakeTimers();
    let inner: AbortSignal | undefined;
    let settled = false;
    const p = withTimeout(
      30_000,
      (signal) => {
        inner = signal;
        return new Promise<never>(() => undefined);
      },
      { server: 'gpu-a', what: 'GET /queue' },
    ).catch((e: unknown) => {
      settled = true;
      return e;
    });
    await vi.advanceTimersByTimeAsync(29_999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    const err = await p;
    expect(err).toBeInstanceOf(ComfyRequestError);
    expect(err).toMatchObject({ kind: 'timeout', timeoutMs: 30_000, server: 'gpu-a', message: 'GET /queue timed out after 30000 ms' });
    expect(inner?.aborted).toBe(true);
  });

  it('returns the value when the call finishes in time', async () => {
    await expect(withTimeout(1_000, async () => 42)).resolves.toBe(42);
  });

  it("passes the call's own error through", async () => {
    await expect(withTimeout(1_000, () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
  });

  it("rejects with the caller's abort reason, not a timeout", async () => {
    const ac = new AbortController();
    const p = withTimeout(60_000, () => new Promise<never>(() => undefined), { signal: ac.signal });
    ac.abort(new Error('cancelled by user'));
    await expect(p).rejects.toThrow('cancelled by user');
  });
});
