import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../util/clock.js';
import { DEGRADATION_FACTORS, ErrorRateWindow, degradationScore, levelForScore, nextLevel } from './degradation.js';

describe('degradation level math', () => {
  it('maps each level to its quality factor: 100, 80, 60, 40, 20 %', () => {
    expect(DEGRADATION_FACTORS).toEqual({ full: 1, high: 0.8, medium: 0.6, low: 0.4, minimal: 0.2 });
  });

  it('scores the worse of unhealthy capacity share and error rate', () => {
    expect(degradationScore({ capacity: 4, unhealthyCapacity: 1, errorRate: null })).toBe(0.25);
    expect(degradationScore({ capacity: 4, unhealthyCapacity: 1, errorRate: 0.5 })).toBe(0.5);
    expect(degradationScore({ capacity: 4, unhealthyCapacity: 0, errorRate: 0.1 })).toBe(0.1);
    expect(degradationScore({ capacity: 0, unhealthyCapacity: 0, errorRate: null })).toBe(1);
  });

  it('gives each level a fifth of the score', () => {
    const cases: Array<[number, string]> = [
      [0, 'full'],
      [0.199, 'full'],
      [0.2, 'high'],
      [0.39, 'high'],
      [0.4, 'medium'],
      [0.6, 'low'],
      [0.8, 'minimal'],
      [1, 'minimal'],
    ];
    for (const [score, level] of cases) expect(levelForScore(score), String(score)).toBe(level);
  });

  it('drops at once but climbs back only with a margin, so it does not flap on a boundary', () => {
    expect(nextLevel('full', 0.45)).toBe('medium');
    expect(nextLevel('medium', 0.38)).toBe('medium');
    expect(nextLevel('medium', 0.35)).toBe('high');
    expect(nextLevel('medium', 0.1)).toBe('full');
    expect(nextLevel('minimal', 0)).toBe('full');
    expect(nextLevel('high', 0.16)).toBe('high');
    expect(nextLevel('high', 0.149)).toBe('full');
  });
});

describe('ErrorRateWindow', () => {
  afterEach(() => vi.useRealTimers());

  it('reports nothing below the minimum number of outcomes', () => {
    const w = new ErrorRateWindow({ minSamples: 3 });
    w.record(true);
    w.record(true);
    expect(w.rate()).toBeNull();
    w.record(false);
    expect(w.rate()).toBeCloseTo(2 / 3);
  });

  it('forgets outcomes older than the window', async () => {
    vi.useFakeTimers();
    const w = new ErrorRateWindow({ windowMs: 60_000, minSamples: 1, clock: systemClock });
    w.record(true);
    await vi.advanceTimersByTimeAsync(30_000);
    w.record(false);
    expect(w.rate()).toBe(0.5);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(w.rate()).toBe(0);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(w.rate()).toBeNull();
  });
});
