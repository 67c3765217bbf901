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

  it('sends a job to a server predicted to fit, least loaded among those, before a less loaded one that does not fit', () => {
    const fit = (x: RouteCandidate, fits: boolean | null, capacity: number): RouteCandidate => ({ ...x, fits, capacity });
    const d = chooseRoute([fit(c('small', 0), false, 6), fit(c('big-busy', 3), true, 24), fit(c('big', 1), true, 24)]);
    expect(d?.name).toBe('big');
    expect(d?.reason).toContain('predicted to fit on 2 of 3');
  });

  it('goes to the largest server only when none is predicted to fit, and ignores a preferred server that does not fit', () => {
    const fit = (x: RouteCandidate, fits: boolean | null, capacity: number): RouteCandidate => ({ ...x, fits, capacity });
    expect(chooseRoute([fit(c('a', 0), false, 6), fit(c('b', 5), false, 12)])?.reason).toContain('the largest server');
    expect(chooseRoute([fit(c('a', 0), false, 6), fit(c('b', 5), false, 12)])?.name).toBe('b');
    expect(chooseRoute([fit(c('a', 0), false, 6), fit(c('b', 5), true, 12)], { prefer: 'a' })?.name).toBe('b');
    expect(chooseRoute([fit(c('a', 0), false, 6), fit(c('b', 5), null, 12)])?.name).toBe('b');
  });
});
