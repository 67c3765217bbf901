import { afterEach, describe, expect, it, vi } from 'vitest';
import { ERROR_REGISTRY, type ErrorCode } from '../errors/codes.js';
import { PolicyConfigError } from './config-error.js';
import { compileRetryPolicy, requestRetry, type RetryClassification } from './retry.js';

const transient = { category: 'transient', retryable: true };

describe('compileRetryPolicy', () => {
  it('uses the documented defaults: 3 retries, 1 s base, factor 2, 60 s cap, 25 % jitter', () => {
    expect(compileRetryPolicy().options).toEqual({ maxRetries: 3, baseMs: 1000, factor: 2, capMs: 60_000, jitter: 0.25 });
  });

  it('follows the schedule 1, 2, 4, 8, 16 s without jitter and stops growing at the cap', () => {
    const p = compileRetryPolicy({ jitter: 0, maxRetries: 10 });
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => p.delayMs(n))).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]);
    expect(p.delayMs(500)).toBe(60_000);
  });

  it('honours a configured base, factor and cap', () => {
    const p = compileRetryPolicy({ jitter: 0, baseMs: 500, factor: 3, capMs: 10_000 });
    expect([1, 2, 3, 4].map((n) => p.delayMs(n))).toEqual([500, 1500, 4500, 10_000]);
  });

  it('keeps jittered delays within ±25 % of the nominal delay, reaching both ends', () => {
    const p = compileRetryPolicy();
    for (const [n, nominal] of [[1, 1000], [2, 2000], [3, 4000], [4, 8000], [5, 16_000]] as const) {
      expect(p.delayMs(n, undefined, () => 0)).toBe(nominal * 0.75);
      expect(p.delayMs(n, undefined, () => 0.5)).toBe(nominal);
      expect(p.delayMs(n, undefined, () => 1)).toBe(nominal * 1.25);
      let seed = n * 7919;
      const lcg = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const samples = Array.from({ length: 2000 }, () => p.delayMs(n, undefined, lcg));
      expect(Math.min(...samples)).toBeGreaterThanOrEqual(nominal * 0.75);
      expect(Math.max(...samples)).toBeLessThanOrEqual(nominal * 1.25);
      // Jitter actually spreads: not every sample is the nominal value.
      expect(new Set(samples).size).toBeGreaterThan(100);
    }
  });

  it('never lets jitter push a delay above the cap', () => {
    const p = compileRetryPolicy({ capMs: 10_000 });
    expect(p.delayMs(10, undefined, () => 1)).toBe(10_000);
    expect(p.delayMs(10, undefined, () => 0)).toBe(7_500);
  });

  it('uses a server hint (Retry-After) instead of the backoff, bounded by the cap', () => {
    const p = compileRetryPolicy();
    expect(p.delayMs(1, { retryAfterMs: 7_000 }, () => 0)).toBe(7_000);
    expect(p.delayMs(3, { retryAfterMs: 0 })).toBe(0);
    expect(p.delayMs(1, { retryAfterMs: 3_600_000 })).toBe(60_000);
    expect(p.delayMs(2, {}, () => 0.5)).toBe(2000);
  });

  it('retries only transient and recoverable failures, up to maxRetries', () => {
    const p = compileRetryPolicy();
    expect(p.shouldRetry(transient, 0)).toBe(true);
    expect(p.shouldRetry(transient, 2)).toBe(true);
    expect(p.shouldRetry(transient, 3)).toBe(false);
    expect(p.shouldRetry({ category: 'recoverable', retryable: true }, 0)).toBe(true);
    expect(p.shouldRetry({ category: 'transient', retryable: false }, 0)).toBe(false);
    expect(compileRetryPolicy({ maxRetries: 0 }).shouldRetry(transient, 0)).toBe(false);
  });

  it('never retries a permanent or fatal code from the registry, whatever its retryable flag says', () => {
    const p = compileRetryPolicy({ maxRetries: 100 });
    const codes = Object.entries(ERROR_REGISTRY) as Array<[ErrorCode, (typeof ERROR_REGISTRY)[ErrorCode]]>;
    const neverRetried = codes.filter(([, info]) => info.category === 'permanent' || info.category === 'fatal');
    expect(neverRetried.map(([c]) => c)).toContain('COMFYUI_INVALID_PARAMETERS');
    expect(neverRetried.map(([c]) => c)).toContain('COMFYUI_DISK_FULL');
    for (const [, info] of neverRetried) {
      expect(p.shouldRetry(info, 0)).toBe(false);
      expect(p.shouldRetry({ category: info.category, retryable: true }, 0)).toBe(false);
    }
    for (const [, info] of codes.filter(([, i]) => i.category === 'transient' || i.category === 'recoverable')) {
      expect(p.shouldRetry(info, 0)).toBe(true);
    }
  });

  it('rejects nonsense with an error naming the field', () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ maxRetries: -1 }, 'retry.maxRetries'],
      [{ maxRetries: 1.5 }, 'retry.maxRetries'],
      [{ jitter: 2 }, 'retry.jitter'],
      [{ factor: 0.5 }, 'retry.factor'],
      [{ baseMs: Number.NaN }, 'retry.baseMs'],
      [{ capMs: 10, baseMs: 100 }, 'retry.capMs'],
      [{ maxRetrys: 3 }, 'retry.maxRetrys'],
    ];
    for (const [opts, field] of bad) {
      let thrown: unknown;
      try {
        compileRetryPolicy(opts);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, JSON.stringify(opts)).toBeInstanceOf(PolicyConfigError);
      expect((thrown as PolicyConfigError).field).toBe(field);
      expect((thrown as PolicyConfigError).message).toContain(`\`${field}\``);
    }
  });

  it('rejects a retry number below 1', () => {
    expect(() => compileRetryPolicy().delayMs(0)).toThrow(RangeError);
  });

  it('is a frozen value that a per-job override can be compiled from', () => {
    const global = compileRetryPolicy({ baseMs: 2000 });
    expect(Object.isFrozen(global.options)).toBe(true);
    const perJob = compileRetryPolicy({ ...global.options, maxRetries: 1 });
    expect(perJob.options).toMatchObject({ baseMs: 2000, maxRetries: 1 });
    expect(perJob.shouldRetry(transient, 1)).toBe(false);
  });
});

describe('requestRetry (cockatiel RetryPolicy driven by the compiled policy)', () => {
  afterEach(() => vi.useRealTimers());

  const classify = (e: unknown): RetryClassification => {
    const code = e instanceof Error ? e.message : 'INTERNAL_ERROR';
    const info = ERROR_REGISTRY[code as ErrorCode] ?? ERROR_REGISTRY.INTERNAL_ERROR;
    const retryAfterMs = (e as { retryAfterMs?: number }).retryAfterMs;
    return { category: info.category, retryable: info.retryable, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  };

  it('waits exactly 1, 2, 4, 8, 16 s between attempts on a fake clock', async () => {
    vi.useFakeTimers();
    const started = Date.now();
    const at: number[] = [];
    const policy = requestRetry(compileRetryPolicy({ jitter: 0, maxRetries: 5 }), classify);
    const run = policy.execute(() => {
      at.push(Date.now() - started);
      if (at.length <= 5) throw new Error('COMFYUI_SERVER_ERROR');
      return 'ok';
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(at).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(at).toEqual([0, 1000]);
    await vi.advanceTimersByTimeAsync(30_000);
    await expect(run).resolves.toBe('ok');
    expect(at).toEqual([0, 1000, 3000, 7000, 15_000, 31_000]);
  });

  it('retries at the jitter bounds on a fake clock: 750 ms at the low end, 1250 ms at the high end', async () => {
    vi.useFakeTimers();
    for (const [r, expected] of [[0, 750], [1, 1250]] as const) {
      const started = Date.now();
      const at: number[] = [];
      const policy = requestRetry(compileRetryPolicy({ maxRetries: 1 }), classify, () => r);
      const run = policy.execute(() => {
        at.push(Date.now() - started);
        if (at.length === 1) throw new Error('COMFYUI_TIMEOUT');
        return 'ok';
      });
      await vi.advanceTimersByTimeAsync(expected - 1);
      expect(at).toEqual([0]);
      await vi.advanceTimersByTimeAsync(1);
      await expect(run).resolves.toBe('ok');
      expect(at).toEqual([0, expected]);
    }
  });

  it('gives up after maxRetries with the last error', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const policy = requestRetry(compileRetryPolicy({ jitter: 0 }), classify);
    const run = policy.execute(() => {
      calls += 1;
      throw new Error('COMFYUI_CONNECTION_ERROR');
    });
    const settled = run.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(await settled).toMatchObject({ message: 'COMFYUI_CONNECTION_ERROR' });
    expect(calls).toBe(4);
  });

  it('does not retry a permanent failure at all', async () => {
    vi.useFakeTimers();
    let calls = 0;
    const policy = requestRetry(compileRetryPolicy(), classify);
    const run = policy.execute(() => {
      calls += 1;
      throw new Error('COMFYUI_AUTH_ERROR');
    });
    await expect(run).rejects.toThrow('COMFYUI_AUTH_ERROR');
    expect(calls).toBe(1);
  });

  it('waits what Retry-After asks for instead of the backoff', async () => {
    vi.useFakeTimers();
    const started = Date.now();
    const at: number[] = [];
    const policy = requestRetry(compileRetryPolicy({ jitter: 0 }), classify);
    const run = policy.execute(() => {
      at.push(Date.now() - started);
      if (at.length === 1) throw Object.assign(new Error('COMFYUI_OVERLOADED'), { retryAfterMs: 5_000 });
      return 'ok';
    });
    await vi.advanceTimersByTimeAsync(4_999);
    expect(at).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    await expect(run).resolves.toBe('ok');
    expect(at).toEqual([0, 5_000]);
  });
});
