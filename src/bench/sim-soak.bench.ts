/**
 * Simulator soak: 10,000 prompts through one simulator at stepMs 0 over real HTTP + WebSocket
 * (16 concurrent clients, one socket each, every prompt distinct so every node runs and writes a
 * PNG). Reports prompts/s, submit-to-end latency, and RSS / heap / open sockets before and after
 * (history cleared, a forced gc) to show nothing leaks.
 */
import { randomUUID } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Agent, fetch } from 'undici';
import WebSocket from 'ws';
import { startSimulator } from '../sim/index.js';
import { percentile, round, type BenchResult } from './harness.js';

const PROMPTS = Number(process.env.BENCH_SIM_PROMPTS ?? 10_000);
const CONCURRENCY = Number(process.env.BENCH_SIM_CONCURRENCY ?? 16);
const MiB = 2 ** 20;

/** `global.gc` without --expose-gc, so the bench runner needs no flags. */
function forceGc(): boolean {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as (() => void) | undefined;
    if (typeof gc !== 'function') return false;
    gc();
    gc();
    return true;
  } catch {
    return false;
  }
}

function openSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
}

function memory() {
  const m = process.memoryUsage();
  return { rss: m.rss / MiB, heap: m.heapUsed / MiB };
}

function workflow(i: number): Record<string, unknown> {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color: i % 16_777_215 } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: `soak${i % 100}` } },
  };
}

/** One client: a socket, and a loop that submits and waits for each prompt's end marker. */
async function client(url: string, agent: Agent, next: () => number | undefined, latencies: number[]): Promise<void> {
  const clientId = randomUUID();
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws?clientId=${clientId}`);
  const waiters = new Map<string, () => void>();
  ws.on('message', (data: Buffer, binary: boolean) => {
    if (binary) return;
    const text = data.toString();
    if (!text.startsWith('{"type": "executing"')) return;
    const msg = JSON.parse(text) as { data: { node: string | null; prompt_id?: string } };
    if (msg.data.node === null && msg.data.prompt_id) waiters.get(msg.data.prompt_id)?.();
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  for (let i = next(); i !== undefined; i = next()) {
    const promptId = randomUUID();
    const done = new Promise<void>((r) => waiters.set(promptId, r));
    const start = performance.now();
    const res = await fetch(`${url}/prompt`, { method: 'POST', body: JSON.stringify({ prompt: workflow(i), client_id: clientId, prompt_id: promptId }), dispatcher: agent });
    if (res.status !== 200) throw new Error(`submit ${i}: HTTP ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
    await done;
    waiters.delete(promptId);
    latencies.push(performance.now() - start);
  }
  await new Promise<void>((resolve) => {
    ws.once('close', () => resolve());
    ws.close(1000);
  });
}

/** Runs the soak and reports throughput and resource use. */
export async function run(): Promise<BenchResult> {
  const sim = await startSimulator({ stepMs: 0, name: 'soak' });
  const notes: string[] = [];
  try {
    // Warm up (JIT, code paths) so "before" is a steady state; reset so both ends hold no history.
    const warm = new Agent({ connections: CONCURRENCY });
    let w = 0;
    await client(sim.url, warm, () => (w < 200 ? w++ : undefined), []);
    await warm.close();
    sim.reset();
    const gcBefore = forceGc();
    const before = { ...memory(), sockets: openSockets(), simSockets: sim.state().open_websockets as number };

    const agent = new Agent({ connections: CONCURRENCY });
    let issued = 0;
    const latencies: number[] = [];
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, () => client(sim.url, agent, () => (issued < PROMPTS ? issued++ : undefined), latencies)));
    const seconds = (performance.now() - t0) / 1000;
    await sim.whenIdle();

    const stats = sim.stats();
    const executed = Object.keys(stats.executions).length;
    const twice = Object.values(stats.executions).filter((n) => n !== 1).length;
    const peak = memory();
    await agent.close();
    sim.reset(); // drops history, cache and the per-prompt counters (10,000 entries each)
    forceGc();
    const after = { ...memory(), sockets: openSockets(), simSockets: sim.state().open_websockets as number };
    latencies.sort((a, b) => a - b);
    if (!gcBefore) notes.push('gc could not be forced; RSS figures include garbage');
    notes.push(`${executed} distinct prompts executed (${twice} more than once); ${PROMPTS - latencies.length} lost`);
    notes.push('"before" and "after" follow a sim reset and a forced gc; "peak" holds 10,000 history entries and counters');
    notes.push('RSS rarely shrinks after a peak (the allocator keeps freed pages); heap and open sockets are the leak signals');
    return {
      name: 'sim-soak',
      title: `Simulator soak: ${PROMPTS} prompts, ${CONCURRENCY} concurrent HTTP+WS clients, stepMs 0`,
      rows: [
        {
          prompts: PROMPTS,
          seconds: round(seconds, 2),
          'prompts/s': round(PROMPTS / seconds, 0),
          'p50 ms': round(percentile(latencies, 50), 2),
          'p99 ms': round(percentile(latencies, 99), 2),
          'rss before MiB': round(before.rss),
          'rss peak MiB': round(peak.rss),
          'rss after MiB': round(after.rss),
          'heap before MiB': round(before.heap),
          'heap after MiB': round(after.heap),
          'tcp sockets before/after': `${before.sockets}/${after.sockets}`,
          'sim ws before/after': `${before.simSockets}/${after.simSockets}`,
        },
      ],
      notes,
    };
  } finally {
    await sim.close();
  }
}
