import { describe, expect, it } from 'vitest';
import { FaultInjector, parseFaultSpec } from './faults.js';

describe('fault SPEC', () => {
  it('parses kinds, rates and scopes into a canonical text', () => {
    const spec = parseFaultSpec('oom=0.1, ws_drop=0.05,http503@/api/prompt=0.02,reset@post/queue=1');
    expect(spec.text).toBe('oom=0.1,ws_drop=0.05,http503@/prompt=0.02,reset@POST/queue=1');
    expect(spec.rules[2]).toEqual({ kind: 'http503', rate: 0.02, path: '/prompt' });
  });

  it('names the bad part of a SPEC', () => {
    expect(() => parseFaultSpec('oom=0.1,boom=1')).toThrow('faults: "boom=1": unknown fault kind "boom"');
    expect(() => parseFaultSpec('oom=-1')).toThrow('"oom=-1": rate "-1" must be a number from 0 to 1');
    expect(() => parseFaultSpec('crash@/prompt=1')).toThrow('only HTTP faults');
  });
});

describe('FaultInjector', () => {
  it('draws the same decisions for the same seed and restarts streams on a new SPEC', () => {
    const draw = (seed: number) => {
      const f = new FaultInjector(seed);
      f.set(parseFaultSpec('oom=0.5'));
      return Array.from({ length: 32 }, () => f.roll('oom'));
    };
    expect(draw(3)).toEqual(draw(3));
    expect(draw(3)).not.toEqual(draw(4));
    const f = new FaultInjector(3);
    f.set(parseFaultSpec('oom=0.5'));
    const first = Array.from({ length: 8 }, () => f.roll('oom'));
    f.set(parseFaultSpec('oom=0.5'));
    expect(Array.from({ length: 8 }, () => f.roll('oom'))).toEqual(first);
  });

  it('applies scopes by method and path prefix, and never fires at rate 0', () => {
    const f = new FaultInjector(1);
    f.set(parseFaultSpec('http500@POST/prompt=1,http503@/history=1,oom=0'));
    expect(f.roll('http500', 'POST', '/prompt')).toBe(true);
    expect(f.roll('http500', 'GET', '/prompt')).toBe(false);
    expect(f.roll('http503', 'GET', '/history/abc')).toBe(true);
    expect(f.roll('http503', 'GET', '/historyx')).toBe(false);
    expect(f.roll('oom')).toBe(false);
  });

  it('counts only what was recorded', () => {
    const f = new FaultInjector(1);
    f.set(parseFaultSpec('oom=1'));
    f.roll('oom');
    expect(f.snapshot()).toEqual({});
    f.record('oom');
    f.record('oom');
    expect(f.snapshot()).toEqual({ oom: 2 });
  });
});
