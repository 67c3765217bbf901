import { describe, expect, it } from 'vitest';
import { chooseRoute, loadOf, type RouteCandidate } from './routing.js';

const c = (name: string, queueRemaining: number | null, inFlight = 0, weight = 1, lastPicked = 0): RouteCandidate => ({ name, queueRemaining, inFlight, weight, lastPicked });

describe('chooseRoute', () => {
  it('computes load as (queue + in-flight) / weight, unknown queue counting as 0', () => {
    expect(loadOf(c('a', 3, 1, 2))).toBe(2);
    expect(loadOf(c('a', null, 1))).toBe(1);
  });

  it('picks the least loaded', () => {
    expect(chooseRoute([c('a', 4), c('b', 1), c('c', 2)])?.name).toBe('b');
    expect(chooseRoute([c('a', 4, 0, 4), c('b', 2)])?.name).toBe('a');
  });

  it('breaks ties with the least recently picked, or with the random source when given', () => {
    expect(chooseRoute([c('a', 0, 0, 1, 5), c('b', 0, 0, 1, 2), c('c', 0, 0, 1, 9)])?.name).toBe('b');
    expect(chooseRoute([c('a', 0), c('b', 0), c('c', 0)], { random: () => 0.99 })?.name).toBe('c');
    expect(chooseRoute([c('a', 0), c('b', 0), c('c', 0)], { random: () => 0 })?.name).toBe('a');
  });

  it('takes the preferred server when it is a candidate, whatever its load', () => {
    const d = chooseRoute([c('a', 0), c('b', 9)], { prefer: 'b' });
    expect(d?.name).toBe('b');
    expect(d?.reason).toContain('preferred');
    expect(chooseRoute([c('a', 0)], { prefer: 'gone' })?.name).toBe('a');
  });

  it('returns null without candidates', () => {
    expect(chooseRoute([])).toBeNull();
  });
});
