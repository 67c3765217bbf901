import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CallOptions } from '../comfy/api.js';
import { ComfyRequestError } from '../comfy/errors.js';
import type { SystemStats } from '../comfy/types.js';
import { systemClock } from '../util/clock.js';
import { HealthChecker } from './health.js';

/** A fake server: answers system_stats and GET /prompt, counts probes, can fail or hang. */
function fakeServer() {
  const s = {
    name: 'gpu-a',
    probes: 0,
    mode: 'ok' as 'ok' | 'down' | 'hang',
    queue: 2,
    signals: [] as AbortSignal[],
    async getSystemStats(opts?: CallOptions): Promise<SystemStats> {
      s.probes += 1;
      if (opts?.signal) s.signals.push(opts.signal);
      if (s.mode === 'down') throw new ComfyRequestError({ kind: 'transport', message: 'connect ECONNREFUSED', transportCode: 'ECONNREFUSED' });
      if (s.mode === 'hang') return new Promise<SystemStats>(() => undefined);
      return {
        system: { os: 'posix', comfyui_version: '0.3.64' },
        devices: [{ name: 'cuda:0', type: 'cuda', index: 0, vram_total: 8 * 2 ** 30, vram_free: 6 * 2 ** 30, torch_vram_total: 0, torch_vram_free: 0 }],
      };
    },
    async getPromptStatus() {
      return { exec_info: { queue_remaining: s.queue } };
    },
  };
  return s;
}

describe('HealthChecker', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('reports VRAM, queue depth and version of a healthy server', async () => {
    const server = fakeServer();
    const h = new HealthChecker({ client: server, clock: systemClock });
    const r = await h.check();
    expect(r).toMatchObject({ healthy: true, vramTotal: 8 * 2 ** 30, vramFree: 6 * 2 ** 30, queueRemaining: 2, error: null, version: '0.3.64' });
    expect(r.latencyMs).toBe(0);
  });

  it('reports every probe to onProbe, failed ones too, and never a cached result', async () => {
    const server = fakeServer();
    const seen: Array<{ healthy: boolean; latencyMs: number | null }> = [];
    const h = new HealthChecker({ client: server, clock: systemClock, onProbe: (r) => seen.push({ healthy: r.healthy, latencyMs: r.latencyMs }) });
    await h.check();
    await h.check(); // cached: no probe, no report
    server.mode = 'down';
    await h.check(true);
    expect(seen).toEqual([{ healthy: true, latencyMs: 0 }, { healthy: false, latencyMs: null }]);
  });

  it('reuses the result for 30 s and probes again after', async () => {
    const server = fakeServer();
    const h = new HealthChecker({ client: server, clock: systemClock });
    await h.check();
    server.queue = 9;
    await vi.advanceTimersByTimeAsync(29_999);
    expect((await h.check()).queueRemaining).toBe(2);
    expect(server.probes).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect((await h.check()).queueRemaining).toBe(9);
    expect(server.probes).toBe(2);
  });

  it('honours a configured TTL', async () => {
    const server = fakeServer();
    const h = new HealthChecker({ client: server, clock: systemClock, ttlMs: 5_000 });
    await h.check();
    await vi.advanceTimersByTimeAsync(5_000);
    await h.check();
    expect(server.probes).toBe(2);
  });

  it('probes again at once after invalidate() (a request to the server failed)', async () => {
    const server = fakeServer();
    const h = new HealthChecker({ client: server, clock: systemClock });
    await h.check();
    server.mode = 'down';
    expect((await h.check()).healthy).toBe(true);
    h.invalidate();
    expect(h.isFresh()).toBe(false);
    const r = await h.check();
    expect(r.healthy).toBe(false);
    expect(r.error).toContain('ECONNREFUSED');
    expect(server.probes).toBe(2);
  });

  it('does not cache as fresh a probe that was in flight when invalidated', async () => {
    const server = fakeServer();
    const h = new HealthChecker({ client: server, clock: systemClock });
    const first = h.check();
    h.invalidate();
    await first;
    expect(h.isFresh()).toBe(false);
    await h.check();
    expect(server.probes).toBe(2);
  });

  it('shares one probe between concurrent callers', async () => {
    const server = fakeServer();
    const h = new HealthChecker({ client: server, clock: systemClock });
    const [a, b] = await Promise.all([h.check(), h.check()]);
    expect(a).toBe(b);
    expect(server.probes).toBe(1);
  });

  it('gives up on a hanging server after 2 s, aborts the request and reports unhealthy', async () => {
    const server = fakeServer();
    server.mode = 'hang';
    const h = new HealthChecker({ client: server, clock: systemClock });
    let result: Awaited<ReturnType<HealthChecker['check']>> | undefined;
    const p = h.check().then((r) => (result = r));
    await vi.advanceTimersByTimeAsync(1_999);
    expect(result).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(result).toMatchObject({ healthy: false, queueRemaining: null });
    expect(result?.error).toContain('timed out after 2000 ms');
    expect(server.signals[0]?.aborted).toBe(true);
  });

  it('force probes even when fresh', async () => {
    const server = fakeServer();
    const h = new HealthChecker({ client: server, clock: systemClock });
    await h.check();
    await h.check(true);
    expect(server.probes).toBe(2);
  });

  it('rejects with the caller abort reason rather than reporting unhealthy', async () => {
    const server = fakeServer();
    server.mode = 'hang';
    const h = new HealthChecker({ client: server, clock: systemClock });
    const ac = new AbortController();
    const p = h.check(false, ac.signal);
    ac.abort(new Error('shutting down'));
    await expect(p).rejects.toThrow('shutting down');
  });

  it('recordUnhealthy() keeps the last VRAM numbers and forces the next check to probe', async () => {
    const server = fakeServer();
    const h = new HealthChecker({ client: server, clock: systemClock });
    await h.check();
    const r = h.recordUnhealthy('GPU fault');
    expect(r).toMatchObject({ healthy: false, error: 'GPU fault', vramTotal: 8 * 2 ** 30 });
    expect((await h.check()).healthy).toBe(true);
    expect(server.probes).toBe(2);
  });
});
