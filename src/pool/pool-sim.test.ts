/**
 * The pool against real simulators over loopback sockets: failover when a server dies mid-job,
 * model-aware routing, load-aware routing, and a recovered server coming back into use.
 *
 * The pool's clock is manual (timers are real, `now()` only moves when a test says so): health
 * results never expire on their own here, so a failover that happens proves it did not wait for
 * the health TTL, and "comes back" happens exactly when the test moves the clock one TTL on.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ComfyClient } from '../comfy/client.js';
import type { ApiWorkflow, HistoryEntry } from '../comfy/types.js';
import { classify } from '../errors/index.js';
import { startSimulator } from '../sim/index.js';
import { systemClock, type Clock } from '../util/clock.js';
import { txt2img } from './fake-api.js';
import { ServerPool } from './pool.js';

type Sim = Awaited<ReturnType<typeof startSimulator>>;

const TTL = 30_000;
const closers: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
});

function manualClock(): Clock & { advance(ms: number): void } {
  let now = Date.now();
  return {
    now: () => now,
    setTimeout: systemClock.setTimeout,
    clearTimeout: systemClock.clearTimeout,
    advance: (ms) => {
      now += ms;
    },
  };
}

async function sim(name: string, opts: Omit<Parameters<typeof startSimulator>[0], 'port' | 'name'> = {}): Promise<Sim> {
  const s = await startSimulator({ port: 0, name, stepMs: 1, ...opts });
  closers.push(() => s.close());
  return s;
}

function pool(sims: Record<string, Sim>, clock: Clock): ServerPool {
  const p = new ServerPool({
    servers: Object.entries(sims).map(([name, s]) => ({ url: s.url, name })),
    clock,
    healthTtlMs: TTL,
    requestTimeoutMs: 10_000,
  });
  closers.push(() => p.close());
  return p;
}

/** A gate that holds every node of the given class until opened; `reached` resolves on first arrival. */
function gate(classType: string) {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  let arrived!: () => void;
  const reached = new Promise<void>((r) => (arrived = r));
  return {
    nodeGate: (info: { classType: string }) => {
      if (info.classType !== classType) return;
      arrived();
      return opened;
    },
    reached,
    open: () => open(),
  };
}

/** Waits (bounded poll) until the prompt is finished on that server; a request failure ends the wait at once. */
async function outcome(client: ReturnType<ServerPool['client']>, promptId: string): Promise<HistoryEntry> {
  let entry: HistoryEntry | undefined;
  let failure: unknown;
  await vi.waitFor(
    async () => {
      try {
        entry = (await client.getHistory(promptId))[promptId];
      } catch (err) {
        failure = err;
        return;
      }
      if (!entry?.status?.completed && entry?.status?.status_str !== 'error') throw new Error('not finished');
    },
    { timeout: 30_000, interval: 20 },
  );
  if (failure !== undefined) throw failure;
  return entry!;
}

/**
 * A minimal attempt loop, like the job engine's: select (cached health check first), acquire,
 * submit, wait for the outcome, record it; on failure classify and go again.
 */
async function runJob(p: ServerPool, workflow: ApiWorkflow, hooks: { onSubmitted?: (server: string) => Promise<void> } = {}) {
  const servers: string[] = [];
  for (let attempt = 0; attempt < 4; attempt++) {
    const pick = await p.select({ workflow, ...(servers.length ? { prefer: servers.at(-1)! } : {}) });
    if (!pick) throw new Error('no server');
    servers.push(pick.name);
    const release = p.acquire(pick.name);
    try {
      const promptId = randomUUID();
      await pick.client.submitPrompt(workflow, { promptId });
      await hooks.onSubmitted?.(pick.name);
      const entry = await outcome(pick.client, promptId);
      expect(entry.status?.status_str).toBe('success');
      p.recordSuccess(pick.name);
      return { servers, promptId };
    } catch (err) {
      const c = classify(err);
      p.recordFailure(pick.name, c);
      if (!c.retryable) throw err;
    } finally {
      release();
    }
  }
  throw new Error(`gave up after ${servers.join(', ')}`);
}

describe('ServerPool over real simulators', () => {
  it('fails a job over to another server when its server dies mid-job, without waiting for the health TTL', async () => {
    const clock = manualClock();
    const hold = gate('KSampler');
    const a = await sim('a', { nodeGate: hold.nodeGate });
    const b = await sim('b');
    const p = pool({ a, b }, clock);
    await p.start();
    const at = clock.now();
    const wf = txt2img('v1-5-pruned-emaonly.ckpt');
    const result = await runJob(p, wf, {
      onSubmitted: async (server) => {
        if (server !== 'a') return;
        await hold.reached;
        a.kill();
      },
    });
    expect(result.servers).toEqual(['a', 'b']);
    expect(clock.now()).toBe(at);
    expect(p.state().find((s) => s.name === 'a')).toMatchObject({ healthy: false });
    // The job really ran on B.
    expect((await outcome(p.client('b'), result.promptId)).status?.status_str).toBe('success');
  });

  it('uses a server that comes back once the next health check sees it', async () => {
    const clock = manualClock();
    const a = await sim('a');
    const b = await sim('b');
    const p = pool({ a, b }, clock);
    await p.start();
    a.kill();
    p.recordFailure('a', { code: 'COMFYUI_CONNECTION_ERROR', category: 'transient' });
    expect((await p.select({ workflow: txt2img('v1-5-pruned-emaonly.ckpt') }))?.name).toBe('b');
    await a.restart();
    // Still the cached "down" result until one health interval has passed.
    expect((await p.select({ workflow: txt2img('v1-5-pruned-emaonly.ckpt') }))?.name).toBe('b');
    clock.advance(TTL);
    const back = await runJob(p, txt2img('v1-5-pruned-emaonly.ckpt'));
    expect(back.servers).toEqual(['a']);
  });

  it('always routes a workflow that needs a model only B has to B', async () => {
    const clock = manualClock();
    const a = await sim('a', { models: { checkpoints: ['common.safetensors'] } });
    const b = await sim('b', { models: { checkpoints: ['common.safetensors', 'only-b.safetensors'] } });
    const c = await sim('c', { models: { checkpoints: ['common.safetensors'] } });
    const p = pool({ a, b, c }, clock);
    await p.start();
    expect(p.capable(txt2img('only-b.safetensors')).servers).toEqual(['b']);
    for (let i = 0; i < 4; i++) expect((await runJob(p, txt2img('only-b.safetensors'))).servers).toEqual(['b']);
    const spread = new Set<string>();
    for (let i = 0; i < 6; i++) spread.add((await runJob(p, txt2img('common.safetensors'))).servers[0]!);
    expect(spread).toEqual(new Set(['a', 'b', 'c']));
  });

  it('gives fewer jobs to a server whose queue is full', async () => {
    const clock = manualClock();
    const hold = gate('KSampler');
    const a = await sim('a', { nodeGate: hold.nodeGate });
    const b = await sim('b');
    const p = pool({ a, b }, clock);
    await p.start();
    // Someone else fills A's queue: one job held running, three pending behind it.
    const other = new ComfyClient({ baseUrl: a.url });
    closers.push(() => other.close());
    for (let i = 0; i < 4; i++) await other.submitPrompt(txt2img('v1-5-pruned-emaonly.ckpt', {}), { promptId: randomUUID() });
    await hold.reached;
    clock.advance(TTL);
    const counts: Record<string, number> = { a: 0, b: 0 };
    const releases: Array<() => void> = [];
    for (let i = 0; i < 8; i++) {
      const pick = await p.select({ workflow: txt2img('v1-5-pruned-emaonly.ckpt') });
      counts[pick!.name] = (counts[pick!.name] ?? 0) + 1;
      releases.push(p.acquire(pick!.name));
    }
    expect(p.state().find((s) => s.name === 'a')?.health?.queueRemaining).toBe(4);
    expect(counts.a).toBeLessThan(counts.b!);
    expect(counts).toEqual({ a: 2, b: 6 });
    for (const r of releases) r();
    hold.open();
  });
});
