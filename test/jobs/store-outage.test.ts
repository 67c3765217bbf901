/**
 * The store goes away mid-job (every connection cut, new ones refused) and comes back: the guard
 * keeps the job, picks it up again and completes it without running its prompt twice.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createGuard } from '../../src/jobs/guard.js';
import type { Guard } from '../../src/jobs/guard-api.js';
import { openStore } from '../../src/store/open.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { sd15Txt2img } from '../fixtures/workflows/index.js';
import { createTestDatabase } from '../store/services.js';
import { TcpProxy } from '../store/tcp-proxy.js';
import { until } from '../support/wait.js';
import { holdFirst } from './harness.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

describe('a store outage mid-job', () => {
  it('resumes the job once PostgreSQL is back, without resubmitting its prompt', async () => {
    const db = await createTestDatabase();
    cleanups.push(db.drop);
    const proxy = await TcpProxy.start('127.0.0.1', 5432);
    cleanups.push(() => proxy.stop());
    const url = new URL(db.url);
    url.port = String(proxy.port);
    const gate = holdFirst('KSampler');
    const sim: Simulator = await startSimulator({ stepMs: 1, nodeGate: gate.nodeGate });
    cleanups.push(() => sim.close());
    const store = openStore(url.toString());
    const warnings: string[] = [];
    const logger = { info: () => {}, debug: () => {}, error: () => {}, warn: (_o: object, msg?: string) => void warnings.push(msg ?? '') };
    const guard: Guard = await createGuard({ servers: [sim.url], store, logger, pollIntervalMs: 200, cleanupIntervalMs: 0, stallTimeoutMs: 60_000 });
    cleanups.push(() => store.close());
    cleanups.push(() => guard.close());

    const wf = sd15Txt2img();
    wf['3']!.inputs.steps = 4;
    const { id } = await guard.submit(wf);
    await until(() => gate.held() > 0, 'the sampler to start');
    await proxy.stop();
    gate.release();
    // The prompt finishes on the server while the store is away.
    await until(async () => {
      const h = (await (await fetch(`${sim.url}/history`)).json()) as Record<string, unknown>;
      return Object.keys(h).length === 1;
    }, 'the prompt to finish on the server');
    // Keep the store away until the guard has noticed (its own bounded retries gave up).
    await until(() => warnings.some((w) => w.includes('store unavailable')), 'the guard to notice the outage', { timeoutMs: 90_000 });
    await proxy.restart();
    const job = await guard.wait(id);
    expect(job.status).toBe('completed');
    expect(job.attempts).toHaveLength(1);
    expect(Object.values(sim.stats().executions)).toEqual([1]);
  }, 120_000);
});
