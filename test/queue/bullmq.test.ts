import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BullMqDispatcher, DispatcherUnavailableError, toBullPriority, type BullMqDispatcherOptions } from '../../src/queue/bullmq.js';
import { Gate } from './dispatcher-contract.js';
import { deleteQueueKeys, REDIS_URL, requireRedis, TEST_PREFIX, uniqueQueueName } from './redis.js';

/** Bounded waits on conditions: generous, since CI may be a busy 2-core box. */
const POLL = { timeout: 30_000, interval: 20 };

describe('BullMqDispatcher (real Redis)', () => {
  beforeAll(requireRedis);

  const open: BullMqDispatcher[] = [];
  const queues: string[] = [];
  const children: ChildProcess[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await Promise.all(open.splice(0).map((d) => d.close()));
    await Promise.all(queues.splice(0).map(deleteQueueKeys));
  });

  const make = (over: Partial<BullMqDispatcherOptions> & { queueName?: string } = {}) => {
    const queueName = over.queueName ?? uniqueQueueName();
    if (!queues.includes(queueName)) queues.push(queueName);
    const d = new BullMqDispatcher({ connection: REDIS_URL, prefix: TEST_PREFIX, queueName, concurrency: 2, ...over });
    open.push(d);
    return d;
  };

  it('maps priorities so that higher comfyguard priority is a lower BullMQ number, within bounds', () => {
    expect(toBullPriority(10)).toBeLessThan(toBullPriority(0));
    expect(toBullPriority(0)).toBeLessThan(toBullPriority(-5));
    expect(toBullPriority(1e12)).toBe(1);
    expect(toBullPriority(-1e12)).toBe(2 ** 21);
    expect(toBullPriority(Number.NaN)).toBe(toBullPriority(0));
  });

  it('runs every enqueued job once, at most `concurrency` at a time, and reports counts and idleness', async () => {
    const d = make({ concurrency: 2 });
    const gate = new Gate();
    for (const id of ['a', 'b', 'c', 'd']) await d.enqueue(id, 0);
    expect(await d.counts()).toEqual({ waiting: 4, active: 0 });
    await d.start(gate.handler);
    await expect.poll(() => gate.started.length, POLL).toBe(2);
    expect(await d.counts()).toEqual({ waiting: 2, active: 2 });
    let idle = false;
    const idleP = d.onIdle().then(() => (idle = true));
    gate.releaseAll();
    await idleP;
    expect(idle).toBe(true);
    expect([...gate.finished].sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(gate.maxActive).toBe(2);
    expect(await d.counts()).toEqual({ waiting: 0, active: 0 });
  });

  it('runs higher priority first, first-in-first-out within a priority', async () => {
    const d = make({ concurrency: 1 });
    await d.enqueue('low', -5);
    await d.enqueue('mid-1', 0);
    await d.enqueue('high', 10);
    await d.enqueue('mid-2', 0);
    const gate = new Gate();
    gate.hold = false;
    await d.start(gate.handler);
    await d.onIdle();
    expect(gate.started).toEqual(['high', 'mid-1', 'mid-2', 'low']);
  });

  it('does not add a job id that is already waiting (dedupe by our job id)', async () => {
    const d = make({ concurrency: 1 });
    await d.enqueue('same', 0);
    await d.enqueue('same', 5);
    expect(await d.counts()).toEqual({ waiting: 1, active: 0 });
    const gate = new Gate();
    gate.hold = false;
    await d.start(gate.handler);
    await d.onIdle();
    expect(gate.started).toEqual(['same']);
  });

  it('removes a waiting job but not a running or unknown one', async () => {
    const d = make({ concurrency: 1 });
    const gate = new Gate();
    await d.enqueue('runs', 1);
    await d.enqueue('waits', 0);
    await d.start(gate.handler);
    await expect.poll(() => gate.started, POLL).toEqual(['runs']);
    expect(await d.remove('runs')).toBe(false);
    expect(await d.remove('waits')).toBe(true);
    expect(await d.remove('never-enqueued')).toBe(false);
    gate.releaseAll();
    await d.onIdle();
    expect(gate.started).toEqual(['runs']);
  });

  it('shares one queue between two dispatchers: each job runs once, on whichever has room', async () => {
    const queueName = uniqueQueueName();
    const a = make({ queueName, concurrency: 1 });
    const b = make({ queueName, concurrency: 1 });
    const ga = new Gate();
    const gb = new Gate();
    await a.start(ga.handler);
    await b.start(gb.handler);
    await a.enqueue('j1', 0);
    await b.enqueue('j2', 0);
    await a.enqueue('j3', 0);
    // Each holds one job; the third waits for whichever frees up first.
    await expect.poll(() => ga.started.length + gb.started.length, POLL).toBe(2);
    expect(ga.started).toHaveLength(1);
    expect(gb.started).toHaveLength(1);
    expect(await a.counts()).toEqual({ waiting: 1, active: 2 });
    ga.releaseAll();
    gb.releaseAll();
    await a.onIdle();
    await b.onIdle();
    expect([...ga.started, ...gb.started].sort()).toEqual(['j1', 'j2', 'j3']);
  });

  it('close() aborts running handlers and hands their jobs back to the queue for another process', async () => {
    const queueName = uniqueQueueName();
    const a = make({ queueName, concurrency: 1 });
    const ga = new Gate();
    await a.start(ga.handler);
    await a.enqueue('moving', 0);
    await expect.poll(() => ga.started, POLL).toEqual(['moving']);
    await a.close();
    await a.close(); // idempotent
    expect(ga.signals.get('moving')?.aborted).toBe(true);

    const b = make({ queueName, concurrency: 1 });
    const gb = new Gate();
    gb.hold = false;
    expect(await b.counts()).toEqual({ waiting: 1, active: 0 });
    await b.start(gb.handler);
    await b.onIdle();
    expect(gb.started).toEqual(['moving']);
  });

  it("picks up a killed worker's job once its lock expires (stalled-job recovery)", async () => {
    const queueName = uniqueQueueName();
    queues.push(queueName);
    const lockMs = 1_500;
    const stalledMs = 500;
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/queue/bullmq-child.ts', REDIS_URL, queueName, TEST_PREFIX, String(lockMs), String(stalledMs)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    await expect.poll(() => (out.includes('ready') ? 'ready' : err), { timeout: 30_000 }).toBe('ready');

    const producer = make({ queueName, concurrency: 1, lockDurationMs: lockMs, stalledIntervalMs: stalledMs });
    await producer.enqueue('orphan', 0);
    await expect.poll(() => out, { timeout: 30_000 }).toContain('took orphan');
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;

    const gate = new Gate();
    gate.hold = false;
    await producer.start(gate.handler);
    await expect.poll(() => gate.started, { timeout: 30_000 }).toEqual(['orphan']);
    await producer.onIdle();
  });

  it('fails fast with a clear error naming the address when Redis is not reachable', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const { port } = srv.address() as AddressInfo;
    await new Promise<void>((r) => srv.close(() => r()));
    const d = new BullMqDispatcher({ connection: `redis://127.0.0.1:${port}`, queueName: 'never', connectTimeoutMs: 2_000 });
    open.push(d);
    const err = await d.enqueue('x', 0).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DispatcherUnavailableError);
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect((err as Error).message).toMatch(/Redis is not reachable/);
  });
});
