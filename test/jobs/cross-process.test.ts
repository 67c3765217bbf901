/**
 * Contracts that hold across processes sharing one PostgreSQL store and one BullMQ queue: a request
 * made through one guard is honoured by the guard that runs the job. The second guard here has no
 * worker (it only enqueues), so every run is provably the other guard's.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ApiWorkflow } from '../../src/comfy/types.js';
import { createGuard } from '../../src/jobs/guard.js';
import type { Guard } from '../../src/jobs/guard-api.js';
import type { Dispatcher } from '../../src/queue/contract.js';
import { BullMqDispatcher } from '../../src/queue/bullmq.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { deleteQueueKeys, REDIS_URL, requireRedis, TEST_PREFIX, uniqueQueueName } from '../queue/redis.js';
import { createTestDatabase, randomSuffix } from '../store/services.js';
import { until } from '../support/wait.js';

/** A dispatcher that enqueues into the shared queue but never runs anything itself. */
function enqueueOnly(inner: BullMqDispatcher): Dispatcher {
  return {
    kind: 'bullmq',
    start: async () => undefined,
    enqueue: (id, p) => inner.enqueue(id, p),
    enqueueMany: (jobs) => inner.enqueueMany(jobs),
    remove: (id) => inner.remove(id),
    counts: () => inner.counts(),
    onIdle: () => inner.onIdle(),
    close: () => inner.close(),
  };
}

/** EmptyImage has 3 channels: asking for the alpha one raises IndexError in the node (a generation error). */
function failing(): ApiWorkflow {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color: 0 } },
    '2': { class_type: 'ImageToMask', inputs: { image: ['1', 0], channel: 'alpha' } },
    '3': { class_type: 'MaskToImage', inputs: { mask: ['2', 0] } },
    '4': { class_type: 'SaveImage', inputs: { images: ['3', 0], filename_prefix: 'x' } },
  };
}

function slow(): ApiWorkflow {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color: 7 } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'slow' } },
  };
}

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let sim: Simulator;
const closers: Array<() => Promise<unknown>> = [];
const queues: string[] = [];

beforeAll(async () => {
  await requireRedis();
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  await Promise.all(queues.splice(0).map(deleteQueueKeys));
});

async function pair(simOpts: Parameters<typeof startSimulator>[0] = {}): Promise<{ runner: Guard; other: Guard; sim: Simulator }> {
  sim = await startSimulator({ stepMs: 1, ...simOpts });
  closers.push(() => sim.close());
  const schema = `x_${randomSuffix()}`;
  const queueName = uniqueQueueName();
  queues.push(queueName);
  const make = async (worker: boolean) => {
    const store = new PostgresStore({ connectionString: db.url, schema, applicationName: `cg_${schema}` });
    const bull = new BullMqDispatcher({ connection: REDIS_URL, prefix: TEST_PREFIX, queueName, concurrency: 2, lockDurationMs: 5_000, stalledIntervalMs: 2_000 });
    const g = await createGuard({ servers: [{ url: sim.url, name: 'sim' }], store, dispatcher: worker ? bull : enqueueOnly(bull), cleanupIntervalMs: 0, retry: { baseMs: 20, capMs: 100 }, pollIntervalMs: 200 });
    closers.push(async () => {
      await g.close();
      await store.close();
    });
    return g;
  };
  return { runner: await make(true), other: await make(false), sim };
}

describe('contracts across processes (PostgreSQL store, BullMQ queue)', () => {
  it('runs a manual retry requested through one guard on another, with its full retry budget', async () => {
    const { runner, other } = await pair();
    const { id } = await other.submit(failing(), { maxRetries: 1 });
    const first = await other.wait(id);
    expect(first.status).toBe('failed');
    expect(first.error?.code).toBe('COMFYUI_GENERATION_ERROR');
    expect(first.attempts).toHaveLength(2); // the first, and its one retry
    await other.retry(id);
    const again = await runner.wait(id);
    expect(again.status).toBe('failed');
    // A fresh budget: two more attempts (not one that fails at once with "budget exhausted").
    expect(again.attempts).toHaveLength(4);
    expect(again.attempts[2]!.manual).toBe(true);
  });

  it('honours a cancel requested through one guard for a job another is running', async () => {
    const { runner, other, sim: s } = await pair({ stepMs: 300 });
    const { id } = await other.submit(slow());
    await until(async () => (await runner.get(id))?.status === 'running', 'the job to run');
    await until(async () => {
      const q = (await (await fetch(`${s.url}/queue`)).json()) as { queue_running: unknown[] };
      return q.queue_running.length === 1;
    }, 'the prompt to run on the server');
    const cancelled = await other.cancel(id);
    expect(cancelled.status).toBe('cancelled');
    expect((await runner.wait(id)).status).toBe('cancelled');
    await until(async () => {
      const q = (await (await fetch(`${s.url}/queue`)).json()) as { queue_running: unknown[]; queue_pending: unknown[] };
      return q.queue_running.length === 0 && q.queue_pending.length === 0;
    }, 'the server to be idle');
  });
});
