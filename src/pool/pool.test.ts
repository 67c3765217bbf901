import { afterEach, describe, expect, it, vi } from 'vitest';
import { PolicyConfigError } from '../resilience/config-error.js';
import { systemClock } from '../util/clock.js';
import { FakeComfyApi, txt2img, type FakeServerState } from './fake-api.js';
import { ServerPool, type PoolEvent, type PoolOptions } from './pool.js';

const GiB = 2 ** 30;
const open: ServerPool[] = [];

function makePool(servers: Record<string, Partial<FakeServerState> & { weight?: number; tags?: string[]; maxInFlight?: number }>, opts: Partial<PoolOptions> = {}) {
  const fakes: Record<string, FakeComfyApi> = {};
  const pool = new ServerPool({
    clock: systemClock,
    servers: Object.entries(servers).map(([name, s]) => ({
      url: `http://${name}.test:8188`,
      name,
      ...(s.weight ? { weight: s.weight } : {}),
      ...(s.tags ? { tags: s.tags } : {}),
      ...(s.maxInFlight ? { maxInFlight: s.maxInFlight } : {}),
    })),
    clientFactory: (cfg) => {
      const { weight: _w, tags: _t, maxInFlight: _m, ...state } = servers[cfg.name]!;
      return (fakes[cfg.name] = new FakeComfyApi(cfg.name, state));
    },
    ...opts,
  });
  open.push(pool);
  const events: PoolEvent[] = [];
  pool.onEvent((e) => events.push(e));
  return { pool, fakes, events, fake: (n: string) => fakes[n]! };
}

const wf = txt2img();

afterEach(async () => {
  await Promise.all(open.splice(0).map((p) => p.close()));
  vi.useRealTimers();
});

describe('ServerPool: construction and discovery', () => {
  it('does no I/O in the constructor', () => {
    const { fake } = makePool({ a: {}, b: {} });
    expect(fake('a').calls).toEqual({});
    expect(fake('b').calls).toEqual({});
  });

  it('start() checks health and discovers node types and models of every server', async () => {
    const { pool, fake } = makePool({ a: { models: { checkpoints: ['x.safetensors', 'y.safetensors'], loras: ['l.safetensors'] } }, b: { up: false } });
    await pool.start();
    const [a, b] = pool.state();
    expect(a).toMatchObject({ name: 'a', url: 'http://a.test:8188', healthy: true, breaker: 'closed', capabilities: { nodeTypes: 8, models: { checkpoints: 2, loras: 1 } } });
    expect(a?.health).toMatchObject({ healthy: true, vramTotal: 8 * GiB, queueRemaining: 0, version: '0.3.64' });
    expect(b).toMatchObject({ name: 'b', healthy: false, capabilities: null });
    expect(b?.health?.error).toContain('ECONNREFUSED');
    expect(fake('a').calls.getObjectInfo).toBe(1);
    expect(pool.modelsOn('a', 'checkpoints')).toEqual(['x.safetensors', 'y.safetensors']);
    expect(pool.modelMap('a')).toEqual({ checkpoints: ['x.safetensors', 'y.safetensors'], loras: ['l.safetensors'] });
    expect(pool.modelMap('b')).toBeNull();
    expect(pool.nodeTypes('a')).toContain('KSampler');
    expect(pool.supports('a', 'partialTargets')).toBe(true);
    expect(pool.supports('b', 'partialTargets')).toBe(false);
  });

  it('names servers by URL host by default and rejects bad configuration naming the field', () => {
    const p = new ServerPool({ servers: [{ url: 'http://10.0.0.5:8188' }], clientFactory: (c) => new FakeComfyApi(c.name) });
    open.push(p);
    expect(p.names()).toEqual(['10.0.0.5:8188']);
    expect(() => new ServerPool({ servers: [] })).toThrow(PolicyConfigError);
    expect(() => new ServerPool({ servers: [{ url: 'ftp://x' }] })).toThrow(/servers\.0\.url/);
    expect(() => new ServerPool({ servers: [{ url: 'http://a', weight: 0 }] })).toThrow(/servers\.0\.weight/);
    expect(() => new ServerPool({ servers: [{ url: 'http://a', name: 'x' }, { url: 'http://b', name: 'x' }] })).toThrow(/servers\.1\.name/);
    expect(() => new ServerPool({ servers: [{ url: 'http://a' }], breaker: { failureThreshold: 0 } })).toThrow(/breaker\.failureThreshold/);
  });

  it('client() throws a clear error for an unknown server', async () => {
    const { pool } = makePool({ a: {} });
    expect(() => pool.client('nope')).toThrow('unknown server "nope" (configured: a)');
    expect(pool.client('a').name).toBe('a');
  });

  it('close() is idempotent, closes every client and stops background timers', async () => {
    vi.useFakeTimers();
    const { pool, fake } = makePool({ a: {}, b: {} });
    await pool.start();
    const probes = fake('a').calls.getSystemStats;
    await Promise.all([pool.close(), pool.close()]);
    expect(fake('a').closed && fake('b').closed).toBe(true);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(fake('a').calls.getSystemStats).toBe(probes);
  });
});

describe('ServerPool: capabilities', () => {
  it('answers which servers can run a workflow and what the others lack', async () => {
    const { pool } = makePool({
      a: { models: { checkpoints: ['sd15.safetensors'] } },
      b: { models: { checkpoints: ['sd15.safetensors', 'sdxl.safetensors'], loras: ['detail.safetensors'] }, nodeTypes: ['CheckpointLoaderSimple', 'CLIPTextEncode', 'EmptyLatentImage', 'KSampler', 'VAEDecode', 'SaveImage', 'LoraLoader', 'Upscaler'] },
      c: { up: false },
    });
    await pool.start();
    expect(pool.capable(txt2img('sd15.safetensors'))).toEqual({ servers: ['a', 'b'], missing: { c: { nodeTypes: [], models: [] } } });
    const needsB = txt2img('sdxl.safetensors', { lora: 'detail.safetensors', nodeType: 'Upscaler' });
    const r = pool.capable(needsB);
    expect(r.servers).toEqual(['b']);
    expect(r.missing.a).toEqual({
      nodeTypes: ['Upscaler'],
      models: [
        { folder: 'checkpoints', name: 'sdxl.safetensors' },
        { folder: 'loras', name: 'detail.safetensors' },
      ],
    });
    expect(pool.serversWithModel('checkpoints', 'sdxl.safetensors')).toEqual(['b']);
  });

  it('matches model subfolders across path separators (Windows servers list them with \\)', async () => {
    const { pool } = makePool({ win: { models: { checkpoints: ['SDXL\\base.safetensors'] } } });
    await pool.start();
    expect(pool.capable(txt2img('SDXL/base.safetensors')).servers).toEqual(['win']);
  });

  it('keeps the previous capabilities when a refresh fails, and treats an empty object_info as a failure', async () => {
    const { pool, fake, events } = makePool({ a: {} });
    await pool.start();
    fake('a').state.nodeTypes = [];
    await pool.refreshCapabilities('a');
    expect(pool.state()[0]?.capabilities?.nodeTypes).toBe(8);
    expect(events.filter((e) => e.type === 'capabilities').at(-1)).toMatchObject({ error: expect.stringContaining('object_info is empty') });
  });

  it('refreshes a server after a missing-model failure so routing learns the model arrived', async () => {
    const { pool, fake } = makePool({ a: { models: { checkpoints: [] } }, b: { models: { checkpoints: ['sd15.safetensors'] } } });
    await pool.start();
    expect(pool.capable(wf).servers).toEqual(['b']);
    fake('a').state.models.checkpoints = ['sd15.safetensors'];
    pool.recordFailure('a', { code: 'COMFYUI_MODEL_MISSING', category: 'recoverable' });
    await vi.waitFor(() => expect(pool.capable(wf).servers).toEqual(['a', 'b']));
  });

  it('refreshes capabilities every 60 s', async () => {
    vi.useFakeTimers();
    const { pool, fake } = makePool({ a: {} });
    await pool.start();
    expect(fake('a').calls.getObjectInfo).toBe(1);
    await vi.advanceTimersByTimeAsync(59_999);
    expect(fake('a').calls.getObjectInfo).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(fake('a').calls.getObjectInfo).toBe(2);
  });
});

describe('ServerPool: routing', () => {
  it('routes a workflow that needs a model only B has to B, every time', async () => {
    const { pool } = makePool({ a: {}, b: { models: { checkpoints: ['sd15.safetensors', 'only-b.safetensors'] } }, c: {} });
    await pool.start();
    const needsB = txt2img('only-b.safetensors');
    for (let i = 0; i < 20; i++) expect((await pool.select({ workflow: needsB }))?.name).toBe('b');
  });

  it('picks the least loaded server: (queue remaining + in-flight) / weight', async () => {
    const { pool } = makePool({ a: { queueRemaining: 3, weight: 3 }, b: { queueRemaining: 2 }, c: { queueRemaining: 5, weight: 2 } });
    await pool.start();
    const pick = await pool.select({ workflow: wf });
    expect(pick?.name).toBe('a');
    expect(pick?.reason).toContain('load 1 = (queue 3 + in-flight 0) / weight 3');
  });

  it('spreads evenly across equally loaded servers, counting selections not yet acquired', async () => {
    const { pool } = makePool({ a: {}, b: {}, c: {} });
    await pool.start();
    const counts: Record<string, number> = {};
    for (let i = 0; i < 30; i++) {
      const name = (await pool.select({ workflow: wf }))!.name;
      counts[name] = (counts[name] ?? 0) + 1;
    }
    expect(counts).toEqual({ a: 10, b: 10, c: 10 });
  });

  it('spreads ties by least-recently-picked when each job finishes before the next', async () => {
    const { pool } = makePool({ a: {}, b: {} });
    await pool.start();
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const name = (await pool.select({ workflow: wf }))!.name;
      pool.acquire(name)();
      order.push(name);
    }
    expect(order).toEqual(['a', 'b', 'a', 'b', 'a', 'b']);
  });

  it('counts in-flight jobs towards load until released', async () => {
    const { pool } = makePool({ a: {}, b: {} });
    await pool.start();
    const first = (await pool.select({ workflow: wf }))!.name;
    const release = pool.acquire(first);
    expect(pool.state().find((s) => s.name === first)?.inFlight).toBe(1);
    const second = (await pool.select({ workflow: wf }))!.name;
    expect(second).not.toBe(first);
    pool.acquire(second);
    release();
    release();
    expect(pool.state().find((s) => s.name === first)?.inFlight).toBe(0);
    expect((await pool.select({ workflow: wf }))?.name).toBe(first);
  });

  it('prefers the server of an earlier attempt when it is eligible, and ignores the preference otherwise', async () => {
    const { pool, fake } = makePool({ a: {}, b: { queueRemaining: 4 } });
    await pool.start();
    expect((await pool.select({ workflow: wf, prefer: 'b' }))?.reason).toContain('preferred');
    expect((await pool.select({ workflow: wf, prefer: 'b', exclude: ['b'] }))?.name).toBe('a');
    fake('b').state.up = false;
    pool.recordFailure('b', { code: 'COMFYUI_CONNECTION_ERROR', category: 'transient' });
    expect((await pool.select({ workflow: wf, prefer: 'b' }))?.name).toBe('a');
  });

  it('routes by the memory prediction it is given: the server that fits over one first in line, the largest when none fits', async () => {
    const { pool } = makePool({ small: { vramTotal: 6 * GiB, vramFree: 6 * GiB }, big: { vramTotal: 24 * GiB, vramFree: 24 * GiB } });
    await pool.start();
    const seen: string[] = [];
    const need = (bytes: number) => (s: { name: string; vramTotal: number | null }) => {
      seen.push(s.name);
      return { fits: s.vramTotal === null ? null : bytes <= s.vramTotal };
    };
    expect((await pool.select({ workflow: wf, predict: need(10 * GiB) }))?.name).toBe('big');
    expect(seen.sort()).toEqual(['big', 'small']);
    expect((await pool.select({ workflow: wf, predict: need(40 * GiB) }))?.reason).toContain('the largest server');
    expect((await pool.select({ workflow: wf, predict: need(1 * GiB) }))?.name).toBe('small');
  });

  it('honours exclude, tags, minVramFree, preferMoreVramThan and maxInFlight', async () => {
    const { pool } = makePool({
      small: { vramTotal: 8 * GiB, vramFree: 2 * GiB, tags: ['sd15'] },
      big: { vramTotal: 24 * GiB, vramFree: 20 * GiB, tags: ['sd15', 'sdxl'], maxInFlight: 1 },
    });
    await pool.start();
    // Each pick runs and finishes before the next, so only the constraint under test decides.
    const pick = async (req: Omit<Parameters<ServerPool['select']>[0], 'workflow'>) => {
      const sel = await pool.select({ workflow: wf, ...req });
      if (sel) pool.acquire(sel.name)();
      return sel?.name ?? null;
    };
    expect(await pick({ exclude: ['big'] })).toBe('small');
    expect(await pick({ exclude: ['big', 'small'] })).toBeNull();
    expect(await pick({ tags: ['sdxl'] })).toBe('big');
    expect(await pick({ tags: ['video'] })).toBeNull();
    expect(await pick({ minVramFree: 4 * GiB })).toBe('big');
    expect(await pick({ preferMoreVramThan: 'small' })).toBe('big');
    expect(await pick({ preferMoreVramThan: 'big' })).toBeNull();
    const release = pool.acquire('big');
    expect(await pick({ tags: ['sdxl'] })).toBeNull();
    release();
    expect(await pick({ tags: ['sdxl'] })).toBe('big');
  });

  it('does not use an unhealthy server, and uses it again once it is back (after the health TTL)', async () => {
    vi.useFakeTimers();
    const { pool, fake } = makePool({ a: { up: false }, b: { queueRemaining: 3 } });
    await pool.start();
    for (let i = 0; i < 3; i++) expect((await pool.select({ workflow: wf }))?.name).toBe('b');
    fake('a').state.up = true;
    expect((await pool.select({ workflow: wf }))?.name).toBe('b');
    await vi.advanceTimersByTimeAsync(30_000);
    expect((await pool.select({ workflow: wf }))?.name).toBe('a');
  });

  it('runs a cached health check before each selection: one probe per TTL, a new probe right after a failure', async () => {
    vi.useFakeTimers();
    const { pool, fake } = makePool({ a: {} });
    await pool.start();
    const base = fake('a').calls.getSystemStats!;
    await pool.select({ workflow: wf });
    await pool.select({ workflow: wf });
    expect(fake('a').calls.getSystemStats).toBe(base);
    pool.recordFailure('a', { code: 'COMFYUI_SERVER_ERROR', category: 'transient' });
    await pool.select({ workflow: wf });
    expect(fake('a').calls.getSystemStats).toBe(base + 1);
  });

  it('fails over at once when a server dies: the failure invalidates its health and the next pick avoids it', async () => {
    const { pool, fake } = makePool({ a: {}, b: { queueRemaining: 1 } });
    await pool.start();
    const first = await pool.select({ workflow: wf });
    expect(first?.name).toBe('a');
    fake('a').state.up = false;
    pool.recordFailure('a', { code: 'COMFYUI_CONNECTION_ERROR', category: 'transient' });
    expect((await pool.select({ workflow: wf }))?.name).toBe('b');
    expect(pool.state()[0]?.healthy).toBe(false);
  });
});

describe('ServerPool: breakers', () => {
  it('stops routing to a server whose breaker opened, lets one trial through after 60 s, closes after 2 successes', async () => {
    vi.useFakeTimers();
    const { pool, events } = makePool({ a: {}, b: { queueRemaining: 10 } });
    await pool.start();
    for (let i = 0; i < 5; i++) pool.recordFailure('a', { code: 'COMFYUI_SERVER_ERROR', category: 'transient' });
    await vi.waitFor(() => expect(pool.state()[0]?.breaker).toBe('open'));
    expect((await pool.select({ workflow: wf }))?.name).toBe('b');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pool.state()[0]?.breaker).toBe('half_open');
    const trial = await pool.select({ workflow: wf });
    expect(trial).toMatchObject({ name: 'a', reason: expect.stringContaining('breaker trial') });
    expect((await pool.select({ workflow: wf }))?.name).toBe('b');
    pool.recordSuccess('a');
    await vi.waitFor(() => expect(pool.state()[0]?.breaker).toBe('half_open'));
    expect((await pool.select({ workflow: wf }))?.name).toBe('a');
    pool.recordSuccess('a');
    await vi.waitFor(() => expect(pool.state()[0]?.breaker).toBe('closed'));
    const transitions = events.filter((e) => e.type === 'breaker').map((e) => (e.type === 'breaker' ? `${e.from}->${e.to}` : ''));
    expect(transitions).toEqual(['closed->open', 'open->half_open', 'half_open->closed']);
  });

  it('does not count workflow errors against the server: the server answered, which resets the count', async () => {
    const { pool } = makePool({ a: {} });
    await pool.start();
    for (let i = 0; i < 4; i++) pool.recordFailure('a', { code: 'COMFYUI_CONNECTION_ERROR', category: 'transient' });
    for (let i = 0; i < 10; i++) pool.recordFailure('a', { code: 'COMFYUI_INVALID_PARAMETERS', category: 'permanent' });
    pool.recordFailure('a', { code: 'COMFYUI_CONNECTION_ERROR', category: 'transient' });
    // Outcomes reach cockatiel through promises; one macrotask turn lets all of them land.
    await new Promise((resolve) => setImmediate(resolve));
    expect(pool.state()[0]?.breaker).toBe('closed');
    for (let i = 0; i < 4; i++) pool.recordFailure('a', { code: 'COMFYUI_CONNECTION_ERROR', category: 'transient' });
    await vi.waitFor(() => expect(pool.state()[0]?.breaker).toBe('open'));
  });

  it('markUnhealthy keeps a server out for the hold, then until a health check succeeds', async () => {
    vi.useFakeTimers();
    const { pool, fake } = makePool({ a: {}, b: { queueRemaining: 5 } });
    await pool.start();
    pool.markUnhealthy('a', 'GPU fault: illegal memory access');
    expect(pool.state()[0]).toMatchObject({ healthy: false, heldUnhealthy: 'GPU fault: illegal memory access' });
    expect((await pool.select({ workflow: wf }))?.name).toBe('b');
    await vi.advanceTimersByTimeAsync(59_000);
    expect((await pool.select({ workflow: wf }))?.name).toBe('b');
    fake('a').state.up = false;
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await pool.select({ workflow: wf }))?.name).toBe('b');
    fake('a').state.up = true;
    await vi.advanceTimersByTimeAsync(30_000);
    expect((await pool.select({ workflow: wf }))?.name).toBe('a');
    expect(pool.state()[0]?.heldUnhealthy).toBeNull();
  });
});

describe('ServerPool: degradation', () => {
  it('drops with unhealthy capacity, emits the change, and recovers', async () => {
    vi.useFakeTimers();
    const { pool, fake, events } = makePool({ a: {}, b: {}, c: {}, d: {}, e: {} });
    await pool.start();
    expect(pool.degradation()).toEqual({ level: 'full', factor: 1 });
    fake('a').state.up = false;
    fake('b').state.up = false;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(pool.degradation()).toEqual({ level: 'medium', factor: 0.6 });
    fake('c').state.up = false;
    fake('d').state.up = false;
    fake('e').state.up = false;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(pool.degradation()).toEqual({ level: 'minimal', factor: 0.2 });
    for (const n of ['a', 'b', 'c', 'd', 'e']) fake(n).state.up = true;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(pool.degradation().level).toBe('full');
    const levels = events.filter((e) => e.type === 'degradation').map((e) => (e.type === 'degradation' ? e.to : ''));
    // Down servers are re-probed on their own backoff, so they may come back one by one.
    expect(levels.slice(0, 2)).toEqual(['medium', 'minimal']);
    expect(levels.at(-1)).toBe('full');
  });

  it('weighs capacity by server weight', async () => {
    const { pool, fake } = makePool({ big: { weight: 4 }, small: { weight: 1 } });
    await pool.start();
    fake('small').state.up = false;
    pool.recordFailure('small', { code: 'COMFYUI_CONNECTION_ERROR', category: 'transient' });
    await pool.select({ workflow: wf });
    expect(pool.degradation().level).toBe('high');
  });

  it('drops with the recent error rate while every server is healthy', async () => {
    vi.useFakeTimers();
    const { pool } = makePool({ a: {}, b: {} }, { breaker: { failureThreshold: 1000 } });
    await pool.start();
    for (let i = 0; i < 5; i++) pool.recordSuccess(i % 2 ? 'a' : 'b');
    // Workload failures (out of memory) say nothing about the pool's health.
    for (let i = 0; i < 5; i++) pool.recordFailure('a', { code: 'COMFYUI_OOM', category: 'recoverable' });
    expect(pool.degradation().level).toBe('full');
    for (let i = 0; i < 10; i++) pool.recordFailure('a', { code: 'COMFYUI_SERVER_ERROR', category: 'transient' });
    expect(pool.degradation().level).toBe('medium');
    await vi.advanceTimersByTimeAsync(300_001);
    expect(pool.degradation().level).toBe('full');
  });
});

describe('ServerPool: cold start and readiness', () => {
  it('probes a down server on a short backoff, not the health TTL, and routes to it the moment it answers', async () => {
    vi.useFakeTimers();
    const { pool, fake } = makePool({ a: { up: false } }, { healthTtlMs: 30_000 });
    await pool.start();
    expect(await pool.select({ workflow: wf })).toBeNull();
    expect(pool.state()[0]?.readiness.state).toBe('unreachable');
    const probes = () => fake('a').calls.getSystemStats ?? 0;
    const before = probes();
    await vi.advanceTimersByTimeAsync(3_000);
    // Several probes within 3 s (backoff 250 ms doubling to 2 s), far below one per 30 s TTL.
    expect(probes() - before).toBeGreaterThanOrEqual(3);
    fake('a').state.up = true;
    await vi.advanceTimersByTimeAsync(2_000);
    expect(pool.state()[0]).toMatchObject({ healthy: true, readiness: { state: 'ready', since: null } });
    expect((await pool.select({ workflow: wf }))?.name).toBe('a');
  });

  it('says since when a server is unreachable', async () => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-12-03T10:31:02Z'));
    const { pool } = makePool({ a: { up: false } });
    await pool.start();
    await vi.advanceTimersByTimeAsync(5_000);
    const [a] = pool.state();
    expect(a?.readiness).toMatchObject({ state: 'unreachable', since: Date.parse('2026-12-03T10:31:02Z') });
    expect(a?.health?.error).toMatch(/^unreachable since 2026-12-03T10:31:02Z: .*ECONNREFUSED/);
  });

  it('whenReady() resolves with the first server that comes up, and rejects when the pool closes', async () => {
    vi.useFakeTimers();
    const { pool, fake } = makePool({ a: { up: false }, b: { up: false } });
    await pool.start();
    let ready: string | null = null;
    const waiting = pool.whenReady().then((n) => (ready = n));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ready).toBeNull();
    fake('b').state.up = true;
    await vi.advanceTimersByTimeAsync(2_000);
    await waiting;
    expect(ready).toBe('b');
    await expect(pool.whenReady({ names: ['b'] })).resolves.toBe('b');
    const never = pool.whenReady({ names: ['a'] });
    await pool.close();
    await expect(never).rejects.toThrow('ServerPool closed');
  });
});
