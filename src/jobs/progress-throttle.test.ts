import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../util/clock.js';
import { ProgressThrottle } from './progress-throttle.js';

const ev = (progress: number) => ({ type: 'progress' as const, jobId: 'j', progress, node: null, attempt: 1, at: 0 });

describe('ProgressThrottle', () => {
  afterEach(() => vi.useRealTimers());

  it('sends the first update at once, then at most one per second with the newest value, and the last at once', async () => {
    vi.useFakeTimers();
    const sent: number[] = [];
    const t = new ProgressThrottle(systemClock, 1_000, (e) => sent.push(e.progress));
    t.push(ev(1), false);
    t.push(ev(5), false);
    t.push(ev(9), false);
    expect(sent).toEqual([1]);
    await vi.advanceTimersByTimeAsync(999);
    expect(sent).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toEqual([1, 9]);
    t.push(ev(40), false);
    t.push(ev(100), true);
    expect(sent).toEqual([1, 9, 100]);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(sent).toEqual([1, 9, 100]);
    t.close();
  });

  it('flushes a pending update when the job ends', () => {
    vi.useFakeTimers();
    const sent: number[] = [];
    const t = new ProgressThrottle(systemClock, 1_000, (e) => sent.push(e.progress));
    t.push(ev(10), false);
    t.push(ev(70), false);
    t.flush('j');
    expect(sent).toEqual([10, 70]);
    t.close();
  });
});
