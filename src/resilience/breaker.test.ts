import { isBrokenCircuitError } from 'cockatiel';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock, type Clock } from '../util/clock.js';
import { ServerBreaker, type BreakerStateChange } from './breaker.js';
import { PolicyConfigError } from './config-error.js';

describe('ServerBreaker', () => {
  let breaker: ServerBreaker;
  let changes: BreakerStateChange[];

  beforeEach(() => {
    vi.useFakeTimers();
    breaker = new ServerBreaker({ clock: systemClock });
    changes = [];
    breaker.onStateChange((c) => changes.push(c));
  });

  afterEach(() => {
    breaker.close();
    vi.useRealTimers();
  });

  const fail = async (n: number) => {
    for (let i = 0; i < n; i++) await breaker.recordFailure();
  };

  it('stays closed through 4 consecutive failures and opens on the 5th', async () => {
    await fail(4);
    expect(breaker.state).toBe('closed');
    expect(breaker.failures).toBe(4);
    expect(breaker.canPass()).toBe(true);
    await fail(1);
    expect(breaker.state).toBe('open');
    expect(breaker.canPass()).toBe(false);
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(['closed->open']);
    expect(changes[0]?.failures).toBe(5);
  });

  it('counts only consecutive failures: a success resets the count', async () => {
    await fail(4);
    await breaker.recordSuccess();
    expect(breaker.failures).toBe(0);
    await fail(4);
    expect(breaker.state).toBe('closed');
  });

  it('applies outcomes in the order they were reported, even when nobody awaits them', async () => {
    for (let i = 0; i < 4; i++) void breaker.recordFailure();
    void breaker.recordSuccess();
    const last = breaker.recordFailure();
    await last;
    expect(breaker.state).toBe('closed');
    expect(breaker.failures).toBe(1);
  });

  it('half-opens after exactly 60 s, announced as an event by its timer', async () => {
    await fail(5);
    await vi.advanceTimersByTimeAsync(59_999);
    expect(breaker.state).toBe('open');
    expect(breaker.canPass()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(breaker.state).toBe('half_open');
    expect(changes.map((c) => c.to)).toEqual(['open', 'half_open']);
    expect(changes[1]?.at).toBe(changes[0]!.at + 60_000);
  });

  it('ignores outcomes reported while open (late results of work started before it opened)', async () => {
    await fail(5);
    await breaker.recordSuccess();
    await breaker.recordSuccess();
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(breaker.state).toBe('half_open');
  });

  it('lets exactly one trial through while half-open', async () => {
    await fail(5);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(breaker.canPass()).toBe(true);
    expect(breaker.tryPass()).toBe(true);
    expect(breaker.canPass()).toBe(false);
    expect(breaker.tryPass()).toBe(false);
  });

  it('closes only after 2 half-open successes, one trial at a time', async () => {
    await fail(5);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(breaker.tryPass()).toBe(true);
    await breaker.recordSuccess();
    expect(breaker.state).toBe('half_open');
    expect(breaker.tryPass()).toBe(true);
    expect(breaker.tryPass()).toBe(false);
    await breaker.recordSuccess();
    expect(breaker.state).toBe('closed');
    expect(breaker.canPass()).toBe(true);
    expect(changes.map((c) => c.to)).toEqual(['open', 'half_open', 'closed']);
  });

  it('re-opens on a half-open failure and waits another 60 s', async () => {
    await fail(5);
    await vi.advanceTimersByTimeAsync(60_000);
    breaker.tryPass();
    await breaker.recordFailure();
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(59_999);
    expect(breaker.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1);
    expect(breaker.state).toBe('half_open');
    expect(changes.map((c) => c.to)).toEqual(['open', 'half_open', 'open', 'half_open']);
  });

  it('re-opens on a failure after the first of the two closing successes', async () => {
    await fail(5);
    await vi.advanceTimersByTimeAsync(60_000);
    await breaker.recordSuccess();
    expect(breaker.state).toBe('half_open');
    await breaker.recordFailure();
    expect(breaker.state).toBe('open');
  });

  it('frees a trial slot whose outcome never arrives after the half-open interval', async () => {
    await fail(5);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(breaker.tryPass()).toBe(true);
    expect(breaker.canPass()).toBe(false);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(breaker.canPass()).toBe(true);
  });

  it('execute() runs calls through cockatiel and rejects with BrokenCircuitError while open', async () => {
    for (let i = 0; i < 5; i++) await expect(breaker.execute(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(breaker.state).toBe('open');
    const err = await breaker.execute(() => 'never').catch((e: unknown) => e);
    expect(isBrokenCircuitError(err)).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    await expect(breaker.execute(() => 'a')).resolves.toBe('a');
    expect(breaker.state).toBe('half_open');
    await expect(breaker.execute(() => 'b')).resolves.toBe('b');
    expect(breaker.state).toBe('closed');
  });

  it('execute() passes its abort signal to the call', async () => {
    const ac = new AbortController();
    let seen: AbortSignal | undefined;
    await breaker.execute((s) => {
      seen = s;
      return 1;
    }, ac.signal);
    expect(seen).toBeInstanceOf(AbortSignal);
  });

  it('counts only the errors isFailure accepts', async () => {
    const b = new ServerBreaker({ failureThreshold: 2, isFailure: (e) => e instanceof Error && e.message === 'server' });
    for (let i = 0; i < 3; i++) await expect(b.execute(() => Promise.reject(new Error('client')))).rejects.toThrow('client');
    expect(b.state).toBe('closed');
    for (let i = 0; i < 2; i++) await expect(b.execute(() => Promise.reject(new Error('server')))).rejects.toThrow('server');
    expect(b.state).toBe('open');
    b.close();
  });

  it('isolate() holds it open until reset(), and reset() closes with a clean count', async () => {
    await fail(3);
    breaker.isolate();
    expect(breaker.state).toBe('isolated');
    expect(breaker.canPass()).toBe(false);
    // cockatiel 3.2.1's isIsolatedCircuitError() tests the wrong marker, so check the marker itself.
    expect(await breaker.execute(() => 1).catch((e: unknown) => e)).toMatchObject({ isIsolatedCircuitError: true });
    await vi.advanceTimersByTimeAsync(120_000);
    expect(breaker.state).toBe('isolated');
    breaker.reset();
    expect(breaker.state).toBe('closed');
    expect(breaker.failures).toBe(0);
    expect(changes.map((c) => c.to)).toEqual(['isolated', 'closed']);
  });

  it('reset() closes an open breaker at once', async () => {
    await fail(5);
    breaker.reset();
    expect(breaker.state).toBe('closed');
    await fail(4);
    expect(breaker.state).toBe('closed');
  });

  it('uses configured thresholds', async () => {
    const b = new ServerBreaker({ failureThreshold: 2, halfOpenAfterMs: 1_000, successesToClose: 1, halfOpenTrials: 2 });
    await b.recordFailure();
    await b.recordFailure();
    expect(b.state).toBe('open');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(b.tryPass()).toBe(true);
    expect(b.tryPass()).toBe(true);
    expect(b.tryPass()).toBe(false);
    await b.recordSuccess();
    expect(b.state).toBe('closed');
    b.close();
  });

  it('reads time from the injected clock, not from Date', async () => {
    vi.useRealTimers();
    let now = 1_000_000;
    const timers: Array<() => void> = [];
    const clock: Clock = { now: () => now, setTimeout: (fn) => (timers.push(fn), timers.length as never), clearTimeout: () => undefined };
    const b = new ServerBreaker({ clock, failureThreshold: 1 });
    await b.recordFailure();
    expect(b.state).toBe('open');
    now += 59_999;
    expect(b.state).toBe('open');
    now += 1;
    expect(b.state).toBe('half_open');
    b.close();
  });

  it('rejects bad thresholds naming the field', () => {
    expect(() => new ServerBreaker({ failureThreshold: 0 })).toThrow(PolicyConfigError);
    expect(() => new ServerBreaker({ successesToClose: 1.5 })).toThrow(/breaker\.successesToClose/);
  });
});
