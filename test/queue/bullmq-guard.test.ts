/**
 * Two guards (as two comfyguard processes would be) sharing one Redis store and one BullMQ queue:
 * each job runs once, and both take work.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { txt2img } from '../../src/cli/demo/samples.js';
import { createGuard } from '../../src/jobs/guard.js';
import type { Guard } from '../../src/jobs/guard-api.js';
import type { JobHandler } from '../../src/queue/contract.js';
import { BullMqDispatcher } from '../../src/queue/bullmq.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { deleteQueueKeys, REDIS_URL, requireRedis, TEST_PREFIX, uniqueQueueName } from './redis.js';

/** Counts the jobs this process's dispatcher handed to its guard; each waits for `gate` first. */
class CountingDispatcher extends BullMqDispatcher {
  handled: string[] = [];
  gate: Promise<void> = Promise.resolve();
  onTake: () => void = () => undefined;
  override start(handler: JobHandler): Promise<void> {
    return super.start(async (id, signal) => {
      this.handled.push(id);
      this.onTake();
      await this.gate;
      return handler(id, signal);
    });
  }
}

async function deleteStoreKeys(prefix: string): Promise<void> {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

describe('guards sharing a BullMQ queue (real Redis)', () => {
  beforeAll(requireRedis);
  const guards: Guard[] = [];
  let sim: Simulator | null = null;
  let queueName = '';
  let storePrefix = '';
  afterEach(async () => {
    await Promise.all(guards.splice(0).map((g) => g.close()));
    await sim?.close();
    sim = null;
    await deleteQueueKeys(queueName);
    await deleteStoreKeys(storePrefix);
  });

  it('runs each job once, on whichever process has room', async () => {
    queueName = uniqueQueueName();
    storePrefix = `cgtest-store-${randomUUID()}:`;
    sim = await startSimulator({ stepMs: 1 });
    // Each process holds its first job until both have one: proof that both took work.
    let releaseAll: () => void = () => undefined;
    const bothTook = new Promise<void>((r) => (releaseAll = r));
    const dispatchers = [0, 1].map(() => new CountingDispatcher({ connection: REDIS_URL, queueName, prefix: TEST_PREFIX, concurrency: 1 }));
    for (const d of dispatchers) {
      d.gate = bothTook;
      d.onTake = () => {
        if (dispatchers.every((x) => x.handled.length > 0)) releaseAll();
      };
    }
    for (const dispatcher of dispatchers) {
      guards.push(
        await createGuard({
          servers: [{ url: sim.url, name: 'gpu' }],
          store: `${REDIS_URL}/0?prefix=${encodeURIComponent(storePrefix)}`,
          dispatcher,
          cleanupIntervalMs: 0,
        }),
      );
    }
    const [a] = guards as [Guard, Guard];
    const base = { ckpt: 'v1-5-pruned-emaonly.ckpt', width: 512, height: 512, batch: 1, steps: 4, prompt: 'x' };
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await a.submit(txt2img({ ...base, seed: i }))).id);

    // Another process's transitions do not reach this guard's events, so poll the shared store.
    await expect
      .poll(async () => (await Promise.all(ids.map((id) => a.get(id)))).map((j) => j?.status), { timeout: 60_000, interval: 50 })
      .toEqual(['completed', 'completed', 'completed', 'completed']);

    const handled = dispatchers.flatMap((d) => d.handled);
    expect([...handled].sort()).toEqual([...ids].sort());
    expect(dispatchers[0]!.handled.length).toBeGreaterThanOrEqual(1);
    expect(dispatchers[1]!.handled.length).toBeGreaterThanOrEqual(1);
    const executions = Object.values(sim.stats().executions);
    expect(executions).toHaveLength(4);
    expect(executions.every((n) => n === 1)).toBe(true);
  });
});
