import { describe, expect, it } from 'vitest';
import { assertTransition, canTransition, sourcesOf } from './state-machine.js';

describe('job state machine', () => {
  it('allows the documented path queued -> running -> recovering -> running -> completed', () => {
    expect(canTransition('queued', 'running')).toBe(true);
    expect(canTransition('running', 'recovering')).toBe(true);
    expect(canTransition('recovering', 'running')).toBe(true);
    expect(canTransition('running', 'completed')).toBe(true);
  });

  it('never leaves completed and asserts on illegal moves', () => {
    expect(canTransition('completed', 'queued')).toBe(false);
    expect(() => assertTransition('completed', 'running')).toThrow('illegal job transition completed -> running');
    expect(() => assertTransition('queued', 'recovering')).toThrow();
  });

  it('lets a manual retry requeue failed, timed out and cancelled jobs', () => {
    expect(sourcesOf('queued').sort()).toEqual(['cancelled', 'failed', 'recovering', 'running', 'timed_out']);
  });
});
