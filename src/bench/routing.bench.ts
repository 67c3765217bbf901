/**
 * Routing throughput: `ServerPool.select()` decisions per second over 100 servers. The servers are
 * in-memory fakes with cached health (TTL far longer than the run), so this measures routing
 * (filters, capability match, load scoring, tie spreading), not I/O.
 */
import { performance } from 'node:perf_hooks';
import { FakeComfyApi, txt2img } from '../pool/fake-api.js';
import { ServerPool } from '../pool/index.js';
import { chooseRoute, type RouteCandidate } from '../pool/routing.js';
import { percentile, round, type BenchResult } from './harness.js';

const SERVERS = 100;

async function makePool(): Promise<ServerPool> {
  const pool = new ServerPool({
    servers: Array.from({ length: SERVERS }, (_, i) => ({ url: `http://gpu-${i}.bench:8188`, name: `gpu-${i}`, weight: 1 + (i % 4), tags: i % 2 ? ['sdxl'] : ['sd15'] })),
    healthTtlMs: 3_600_000,
    capabilityRefreshMs: 3_600_000,
    clientFactory: (cfg) => {
      const i = Number(cfg.name.slice(4));
      return new FakeComfyApi(cfg.name, {
        queueRemaining: i % 7,
        models: { checkpoints: i % 10 === 0 ? ['sd15.safetensors', 'rare.safetensors'] : ['sd15.safetensors'], loras: ['detail.safetensors'], vae: [] },
      });
    },
  });
  await pool.start();
  return pool;
}

async function measure(pool: ServerPool, label: string, req: Omit<Parameters<ServerPool['select']>[0], 'workflow'>, workflow = txt2img(), n = 20_000): Promise<Record<string, string | number>> {
  // Warm up the JIT and the caches.
  for (let i = 0; i < 500; i++) {
    const s = await pool.select({ workflow, ...req });
    if (s) pool.acquire(s.name)();
  }
  const lat: number[] = new Array<number>(n);
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    const s = await pool.select({ workflow, ...req });
    lat[i] = performance.now() - t;
    // A real caller acquires what it selected; releasing at once keeps the load steady for the run.
    if (s) pool.acquire(s.name)();
  }
  const elapsed = performance.now() - started;
  lat.sort((a, b) => a - b);
  return {
    scenario: label,
    decisions: n,
    'decisions/s': Math.round(n / (elapsed / 1000)),
    'p50 µs': round(percentile(lat, 50) * 1000, 0),
    'p99 µs': round(percentile(lat, 99) * 1000, 0),
  };
}

function measurePure(n = 200_000): Record<string, string | number> {
  const candidates: RouteCandidate[] = Array.from({ length: SERVERS }, (_, i) => ({ name: `gpu-${i}`, weight: 1 + (i % 4), queueRemaining: i % 7, inFlight: 0, lastPicked: i }));
  let sink = 0;
  const started = performance.now();
  for (let i = 0; i < n; i++) sink += chooseRoute(candidates)?.load ?? 0;
  const elapsed = performance.now() - started;
  // Using the result keeps the loop from being optimised away.
  if (!Number.isFinite(sink)) throw new Error('routing bench: non-finite load');
  return { scenario: 'chooseRoute() only (scoring 100 candidates)', decisions: n, 'decisions/s': Math.round(n / (elapsed / 1000)), 'p50 µs': '-', 'p99 µs': '-' };
}

/** Runs the routing benchmark. */
export async function run(): Promise<BenchResult> {
  const pool = await makePool();
  try {
    const rows = [
      await measure(pool, 'select(): any of 100 servers', {}),
      await measure(pool, 'select(): tag sdxl (50 servers), 10 excluded', { tags: ['sdxl'], exclude: Array.from({ length: 10 }, (_, i) => `gpu-${i * 2 + 1}`) }),
      await measure(pool, 'select(): model on 10 of 100 servers', {}, txt2img('rare.safetensors')),
      await measure(pool, 'select(): prefer an earlier server', { prefer: 'gpu-42' }),
      measurePure(),
    ];
    return {
      name: 'routing',
      title: `Routing decisions with ${SERVERS} servers (fake clients, cached health)`,
      rows,
      notes: [
        'Each select() runs the cached health check of every eligible server, the capability match of the workflow, load scoring and tie spreading; the caller acquires and releases the pick at once.',
        `Node ${process.version}, ${process.platform}/${process.arch}.`,
      ],
    };
  } finally {
    await pool.close();
  }
}
