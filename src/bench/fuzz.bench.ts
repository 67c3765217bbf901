/**
 * The long fuzz run: BENCH_FUZZ_REQUESTS (default 20,000) hostile requests from the fast-check
 * arbitraries of fuzz-cases.ts, BENCH_FUZZ_CONCURRENCY (16) at a time, against the service over a
 * real guard and a simulator (jobs really run; BENCH_FUZZ_MODE=parked keeps them queued instead).
 * Reports 5xx of our own, upstream 502/504, hangs, dropped connections, answers without the error
 * shape, crashes (uncaught exceptions and unhandled rejections in the process), memory, and whether
 * health still answers at the end. BENCH_FUZZ_SEED replays a run.
 */
import fc from 'fast-check';
import { createGuard } from '../jobs/guard.js';
import type { Guard } from '../jobs/guard-api.js';
import { buildApp } from '../server/app.js';
import { startSimulator, type Simulator } from '../sim/index.js';
import { anyRequest, isUpstreamFailure, parkedDispatcher, problemsOf, send, type FuzzRequest } from './fuzz-cases.js';
import { percentile, round, type BenchResult } from './harness.js';

const REQUESTS = Number(process.env.BENCH_FUZZ_REQUESTS ?? 20_000);
const CONCURRENCY = Number(process.env.BENCH_FUZZ_CONCURRENCY ?? 16);
const MODE = process.env.BENCH_FUZZ_MODE === 'parked' ? 'parked' : 'sim';
const SEED = Number(process.env.BENCH_FUZZ_SEED ?? Date.now() % 2_147_483_647);
/** An answer slower than this is a hang. */
const HANG_MS = 15_000;

const mib = (n: number) => round(n / 1024 / 1024, 1);

/** Runs the fuzz campaign. */
export async function run(): Promise<BenchResult> {
  const crashes: string[] = [];
  const onCrash = (err: unknown) => crashes.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);

  let sim: Simulator | null = null;
  let guard: Guard | null = null;
  const app = { close: async () => undefined } as { close(): Promise<unknown> };
  try {
    if (MODE === 'sim') sim = await startSimulator({ port: 0, stepMs: 1, name: 'fuzz-sim' });
    guard = await createGuard({
      servers: [{ url: sim ? sim.url : 'http://127.0.0.1:9', name: sim ? 'fuzz-sim' : 'nowhere' }],
      store: 'memory:',
      maxRetries: 2,
      retry: { baseMs: 10, capMs: 100 },
      cleanupIntervalMs: 0,
      ...(MODE === 'parked' ? { dispatcher: parkedDispatcher() } : {}),
    });
    const service = buildApp({ guard, dashboard: false });
    app.close = () => service.close();
    await service.listen({ host: '127.0.0.1', port: 0 });
    const addr = service.server.address();
    const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;

    const requests: FuzzRequest[] = fc.sample(anyRequest, { numRuns: REQUESTS, seed: SEED });
    const before = process.memoryUsage();
    const counts = { ok2xx: 0, client4xx: 0, upstream5xx: 0, own5xx: 0, hangs: 0, dropped: 0, badShape: 0, unsent: 0 };
    const examples: string[] = [];
    const latencies: number[] = [];
    let peakRss = before.rss;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (;;) {
          const i = next++;
          if (i >= requests.length) return;
          const r = requests[i]!;
          const started = performance.now();
          const o = await send(base, r, HANG_MS);
          latencies.push(performance.now() - started);
          if (i % 500 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
          if (o.status === -1) {
            counts.unsent++;
            continue;
          }
          const problems = problemsOf(o);
          if (o.hung) counts.hangs++;
          else if (o.error !== null) counts.dropped++;
          else if (o.status >= 500) {
            if (isUpstreamFailure(o)) counts.upstream5xx++;
            else counts.own5xx++;
          } else if (o.status >= 400) counts.client4xx++;
          else counts.ok2xx++;
          if (problems.some((p) => p.includes('shape') || p.includes('JSON') || p.includes('detail'))) counts.badShape++;
          if (problems.length > 0 && examples.length < 8) examples.push(`${problems.join(', ')}: ${r.method} ${r.path.slice(0, 120)} ${(r.body ?? '').slice(0, 160)}`);
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const healthStarted = performance.now();
    const health = await send(base, { method: 'GET', path: '/api/health', headers: {} }, HANG_MS);
    const healthMs = performance.now() - healthStarted;
    const after = process.memoryUsage();
    const stats = await guard.stats().catch(() => null);
    latencies.sort((a, b) => a - b);

    return {
      name: 'fuzz',
      title: `Fuzz run: ${REQUESTS} hostile requests, ${CONCURRENCY} at a time (${MODE === 'sim' ? 'jobs run on a simulator' : 'jobs parked'}), seed ${SEED}`,
      rows: [
        { measure: 'requests sent', value: REQUESTS - counts.unsent, unit: 'requests' },
        { measure: 'not sendable by node:http (skipped)', value: counts.unsent, unit: 'requests' },
        { measure: 'answered 2xx', value: counts.ok2xx, unit: 'requests' },
        { measure: 'answered 4xx', value: counts.client4xx, unit: 'requests' },
        { measure: '5xx of our own', value: counts.own5xx, unit: 'requests' },
        { measure: '502/504 naming the ComfyUI server', value: counts.upstream5xx, unit: 'requests' },
        { measure: `hangs (no answer in ${HANG_MS / 1000} s)`, value: counts.hangs, unit: 'requests' },
        { measure: 'dropped connections', value: counts.dropped, unit: 'requests' },
        { measure: 'errors without {error:{code,message}} or leaking internals', value: counts.badShape, unit: 'requests' },
        { measure: 'crashes (uncaught exceptions, unhandled rejections)', value: crashes.length, unit: 'events' },
        { measure: 'throughput', value: Math.round((REQUESTS - counts.unsent) / seconds), unit: 'requests/s' },
        { measure: 'latency p50', value: round(percentile(latencies, 50), 1), unit: 'ms' },
        { measure: 'latency p99', value: round(percentile(latencies, 99), 1), unit: 'ms' },
        { measure: 'latency max', value: round(latencies[latencies.length - 1] ?? 0, 1), unit: 'ms' },
        { measure: 'RSS before / peak / after', value: `${mib(before.rss)} / ${mib(Math.max(peakRss, after.rss))} / ${mib(after.rss)}`, unit: 'MiB' },
        { measure: 'heap used before / after', value: `${mib(before.heapUsed)} / ${mib(after.heapUsed)}`, unit: 'MiB' },
        { measure: 'jobs created', value: stats?.totalJobs ?? -1, unit: 'jobs' },
        { measure: '/api/health afterwards', value: `${health.status} in ${round(healthMs, 1)} ms`, unit: '' },
      ],
      notes: [...examples, ...crashes.slice(0, 5).map((c) => `crash: ${c}`)],
    };
  } finally {
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
    await app.close();
    await guard?.close();
    await sim?.close();
  }
}
