import { afterEach, describe, expect, it, vi } from 'vitest';
import { sleep, systemClock } from './clock.js';

describe('sleep', () => {
  afterEach(() => vi.useRealTimers());

  it('resolves after the given time on a fake clock', async () => {
    vi.useFakeTimers();
    let done = false;
    const p = sleep(systemClock, 5_000).then(() => (done = true));
    await vi.advanceTimersByTimeAsync(4_999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(done).toBe(true);
  });

  it('rejects with the abort reason when the signal fires', async () => {
    vi.useFakeTimers();
    const ac = new AbortController();
    const p = sleep(systemClock, 60_000, ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
  });
});
