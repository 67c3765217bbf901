/**
 * Dispatch throughput: jobs per second through the in-process dispatcher and through BullMQ on the
 * local Redis (one process, and two dispatchers sharing one queue), with a handler that does no
 * work, so the numbers are the dispatcher's own cost. Enqueue latency is measured per call.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { BullMqDispatcher } from '../queue/bullmq.js';
import type { Dispatcher } from '../queue/contract.js';
import { InProcessDispatcher } from '../queue/in-process.js';
import { percentile, round, type BenchResult } from './harness.js';

const JOBS = 2_000;
const CONCURRENCY = 8;
const REDIS_URL = process.env['BENCH_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const PREFIX = 'cgbench';

async function measure(label: string, dispatchers: Dispatcher[]): Promise<Record<string, string | number>> {
  let handled = 0;
  let allHandled: () => void = () => undefined;
  const done = new Promise<void>((r) => (allHandled = r));
  for (const d of dispatchers) {
    await d.start(async () => {
      handled++;
      if (handled === JOBS) allHandled();
    });
  }
  const enqueueMs: number[] = [];
  const started = performance.now();
  for (let i = 0; i < JOBS; i++) {
    const t = performance.now();
    await dispatchers[i % dispatchers.length]!.enqueue(`job-${i}`, i % 3);
    enqueueMs.push(performance.now() - t);
  }
  await done;
  const seconds = (performance.now() - started) / 1000;
  enqueueMs.sort((a, b) => a - b);
  return {
    dispatcher: label,
    jobs: JOBS,
    concurrency: `${CONCURRENCY} x ${dispatchers.length}`,
    'jobs/s': Math.round(JOBS / seconds),
    'enqueue p50 ms': round(percentile(enqueueMs, 50), 3),
    'enqueue p99 ms': round(percentile(enqueueMs, 99), 3),
  };
}

async function deleteKeys(queueName: string): Promise<void> {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${PREFIX}:${queueName}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

async function bullmq(label: string, count: number): Promise<Record<string, string | number>> {
  const queueName = `bench-${randomUUID()}`;
  const ds = Array.from({ length: count }, () => new BullMqDispatcher({ connection: REDIS_URL, queueName, prefix: PREFIX, concurrency: CONCURRENCY }));
  try {
    return await measure(label, ds);
  } finally {
    await Promise.all(ds.map((d) => d.close()));
    await deleteKeys(queueName);
  }
}

/** Runs the dispatch benchmark. */
export async function run(): Promise<BenchResult> {
  const rows: Array<Record<string, string | number>> = [];
  const notes: string[] = ['handler does no work: the numbers are dispatch overhead only (a real job takes seconds)'];
  const inProc = new InProcessDispatcher({ concurrency: CONCURRENCY });
  try {
    rows.push(await measure('in-process', [inProc]));
  } finally {
    await inProc.close();
  }
  try {
    rows.push(await bullmq('bullmq (1 process)', 1));
    rows.push(await bullmq('bullmq (2 sharing a queue)', 2));
  } catch (err) {
    notes.push(`BullMQ rows skipped: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { name: 'dispatch', title: `Dispatch throughput, ${JOBS} no-op jobs`, rows, notes };
}
