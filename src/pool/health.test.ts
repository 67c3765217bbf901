import { describe, expect, it } from 'vitest';
import type { HealthResult } from '../resilience/health.js';
import { Readiness } from './health.js';

const down = (at: number, error: string): HealthResult => ({ healthy: false, latencyMs: null, vramTotal: null, vramFree: null, queueRemaining: null, error, checkedAt: at, version: null });
const up = (at: number): HealthResult => ({ healthy: true, latencyMs: 3, vramTotal: 1, vramFree: 1, queueRemaining: 0, error: null, checkedAt: at, version: '0.3.64' });

describe('Readiness', () => {
  it('tells a booting server (a proxy answers 502/503) from an unreachable one', () => {
    const r = new Readiness({ healthTtlMs: 30_000 });
    r.note(down(1_000, 'http://gpu:8188 GET /system_stats: HTTP 503 Service Unavailable'));
    expect(r.state).toBe('booting');
    const u = new Readiness({ healthTtlMs: 30_000 });
    u.note(down(1_000, 'connect ECONNREFUSED 127.0.0.1:8188'));
    expect(u.state).toBe('unreachable');
  });

  it('backs off 250 ms doubling up to 2 s, keeps the first down time, and clears it when the server answers', () => {
    const r = new Readiness({ healthTtlMs: 30_000 });
    const gaps: number[] = [];
    let t = 0;
    for (let i = 0; i < 6; i++) {
      r.note(down(t, 'connect ECONNREFUSED'));
      gaps.push(r.nextProbeAt! - t);
      expect(r.probeDue(r.nextProbeAt! - 1)).toBe(false);
      expect(r.probeDue(r.nextProbeAt!)).toBe(true);
      t = r.nextProbeAt!;
    }
    expect(gaps).toEqual([250, 500, 1_000, 2_000, 2_000, 2_000]);
    expect(r.view().since).toBe(0);
    r.note(up(t));
    expect(r.view()).toEqual({ state: 'ready', since: null, nextProbeAt: null });
    expect(r.describe(null)).toBeNull();
  });

  it('never waits longer than the health TTL between probes of a down server', () => {
    const r = new Readiness({ healthTtlMs: 100, maxBackoffMs: 5_000 });
    for (let i = 0; i < 5; i++) r.note(down(i, 'x'));
    expect(r.nextProbeAt! - 4).toBe(100);
  });
});
