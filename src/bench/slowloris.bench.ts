/**
 * Slowloris: BENCH_SLOW_CONNECTIONS (default 2,000) connections that send the start of a request
 * and never finish it, against the service with its default bounds (headers within 10 s, at most
 * 1,024 connections). Counts how many are refused at once by the cap, how many are still open just
 * after the header timeout, and whether a normal request is served during and after the attack.
 */
import { connect, type Socket } from 'node:net';
import { createGuard } from '../jobs/guard.js';
import { buildApp } from '../server/app.js';
import { round, type BenchResult } from './harness.js';

const N = Number(process.env.BENCH_SLOW_CONNECTIONS ?? 2_000);
const HEADERS_TIMEOUT_MS = Number(process.env.BENCH_SLOW_HEADERS_TIMEOUT_MS ?? 10_000);

interface Slow {
  socket: Socket;
  closed: boolean;
  closedAt: number;
}

function open(port: number): Promise<Slow> {
  return new Promise((resolve) => {
    const s: Slow = { socket: connect(port, '127.0.0.1'), closed: false, closedAt: 0 };
    s.socket.on('connect', () => {
      s.socket.write('GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a');
      resolve(s);
    });
    s.socket.on('close', () => {
      if (!s.closed) s.closedAt = performance.now();
      s.closed = true;
      resolve(s);
    });
    s.socket.on('error', () => undefined);
    // Read what the server sends (its 408), or the socket never sees the end and never reports 'close'.
    s.socket.resume();
  });
}

async function normalRequest(base: string): Promise<string> {
  const t = performance.now();
  try {
    const res = await fetch(`${base}/api/health`, { signal: AbortSignal.timeout(5_000) });
    await res.arrayBuffer();
    return `${res.status} in ${round(performance.now() - t, 1)} ms`;
  } catch (err) {
    return `failed (${err instanceof Error ? err.message : String(err)})`;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the slowloris measurement. */
export async function run(): Promise<BenchResult> {
  const guard = await createGuard({ servers: [{ url: 'http://127.0.0.1:9', name: 'nowhere' }], store: 'memory:', cleanupIntervalMs: 0 });
  const app = buildApp({ guard, dashboard: false, headersTimeoutMs: HEADERS_TIMEOUT_MS });
  const slow: Slow[] = [];
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const base = `http://127.0.0.1:${port}`;
    const t0 = performance.now();
    for (let i = 0; i < N; i += 100) slow.push(...(await Promise.all(Array.from({ length: Math.min(100, N - i) }, () => open(port)))));
    const openedIn = performance.now() - t0;
    // Give the server a moment to refuse what is over the cap.
    await sleep(500);
    const refusedAtOnce = slow.filter((s) => s.closed).length;
    const during = await normalRequest(base);
    // The last connection's header clock started when it was opened: wait out the timeout from there.
    const deadline = t0 + openedIn + HEADERS_TIMEOUT_MS + 2_000;
    const timeline: string[] = [];
    while (performance.now() < deadline) {
      await sleep(1_000);
      timeline.push(`${round((performance.now() - t0) / 1000, 0)} s: ${slow.filter((s) => !s.closed).length} open`);
    }
    const stillOpen = slow.filter((s) => !s.closed).length;
    const after = await normalRequest(base);
    const closedTimes = slow.filter((s) => s.closed && s.closedAt > 0).map((s) => s.closedAt - t0).sort((a, b) => a - b);
    return {
      name: 'slowloris',
      title: `Slowloris: ${N} connections that never finish their headers (header timeout ${HEADERS_TIMEOUT_MS / 1000} s, cap 1,024)`,
      rows: [
        { measure: 'slow connections opened', value: N, unit: `connections (in ${round(openedIn / 1000, 1)} s)` },
        { measure: 'refused at once by the connection cap', value: refusedAtOnce, unit: 'connections' },
        { measure: `still open ${round((HEADERS_TIMEOUT_MS + 2_000) / 1000, 1)} s after the last was opened`, value: stillOpen, unit: 'connections' },
        { measure: 'last one closed at', value: round((closedTimes[closedTimes.length - 1] ?? 0) / 1000, 1), unit: 's after the attack began' },
        { measure: 'GET /api/health during the attack', value: during, unit: '' },
        { measure: 'GET /api/health after the timeout', value: after, unit: '' },
      ],
      notes: ['A request during the attack is refused while the cap is full (the cap protects the process, the header timeout frees the slots).', `open slow connections over time: ${timeline.join(', ')}`],
    };
  } finally {
    for (const s of slow) s.socket.destroy();
    await app.close();
    await guard.close();
  }
}
