/**
 * Protocol throughput: WebSocket messages parsed + validated per second (in a loop over the
 * recorded ok_simple / progress_steps frames, and end to end over a real loopback socket), binary
 * preview decoding, and REST round trips per second (`getPromptStatus` against a local node:http
 * server) with p50/p99 latency, sequential and with 8 calls in flight.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { decodeBinaryFrame, encodeBinaryFrame } from '../comfy/binary.js';
import { ComfyClient } from '../comfy/client.js';
import { parseWsText } from '../comfy/messages.js';
import { ComfySocket } from '../comfy/socket.js';
import { percentile, round, type BenchResult } from './harness.js';

const CAPTURES = fileURLToPath(new URL('../../test/comfy/captures/', import.meta.url));

/** The recorded server text frames of the given captures, as the server sent them. */
function recordedFrames(names: string[]): string[] {
  const out: string[] = [];
  for (const name of names) {
    const cap = JSON.parse(readFileSync(`${CAPTURES}${name}.json`, 'utf8')) as { events: Array<{ kind: string; data?: unknown }> };
    for (const e of cap.events) if (e.kind === 'ws') out.push(JSON.stringify(e.data));
  }
  return out;
}

function parseLoop(frames: string[], minMs: number): Record<string, string | number> {
  let unknown = 0;
  for (let i = 0; i < 2_000; i++) parseWsText(frames[i % frames.length] as string);
  let n = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (const f of frames) if (parseWsText(f).type === 'unknown') unknown++;
    n += frames.length;
    elapsed = performance.now() - started;
  }
  if (unknown > 0) throw new Error(`bench: ${unknown} recorded frames did not validate`);
  let sink = 0;
  const jsonStarted = performance.now();
  for (let i = 0; i < n; i++) sink += (JSON.parse(frames[i % frames.length] as string) as { type: string }).type.length;
  const jsonElapsed = performance.now() - jsonStarted;
  return {
    measure: 'WS text frames parse+validate (loop)',
    count: n,
    'per second': Math.round(n / (elapsed / 1000)),
    'p50 µs': '',
    'p99 µs': '',
    note: `JSON.parse alone: ${Math.round(n / (jsonElapsed / 1000))}/s (sink ${sink % 7})`,
  };
}

function binaryLoop(minMs: number): Record<string, string | number> {
  const image = new Uint8Array(234);
  const frames = [
    encodeBinaryFrame({ kind: 'preview', formatCode: 2, image }),
    encodeBinaryFrame({ kind: 'preview_with_metadata', metadata: { node_id: '2', prompt_id: 'p', image_type: 'image/png' }, image }),
  ];
  let n = 0;
  const started = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (let i = 0; i < 1_000; i++) if (decodeBinaryFrame(frames[i & 1] as Buffer).kind === 'unknown_binary') throw new Error('bench: bad frame');
    n += 1_000;
    elapsed = performance.now() - started;
  }
  return { measure: 'binary previews decoded (type 1 + 4, loop)', count: n, 'per second': Math.round(n / (elapsed / 1000)), 'p50 µs': '', 'p99 µs': '', note: '' };
}

async function socketRun(frames: string[], total: number): Promise<Record<string, string | number>> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const port = (wss.address() as AddressInfo).port;
  wss.on('connection', (ws) => {
    ws.on('message', () => {
      // One burst per request: the recorded frames, repeated to `total`.
      for (let i = 0; i < total; i++) ws.send(frames[i % frames.length] as string);
    });
  });
  // The feature_flags frame the socket sends on open asks the server for the burst.
  const socket = new ComfySocket({ baseUrl: `http://127.0.0.1:${port}`, clientId: 'bench', pingIntervalMs: 0, featureFlags: { bench: true } });
  let received = 0;
  let unknown = 0;
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  socket.on((e) => {
    if (e.kind === 'unknown') unknown++;
    if ((e.kind === 'message' || e.kind === 'unknown') && ++received === total) done();
  });
  const started = performance.now();
  await socket.connect();
  await finished;
  const elapsed = performance.now() - started;
  await socket.close();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
  if (unknown > 0) throw new Error(`bench: ${unknown} frames became unknown over the socket`);
  return {
    measure: 'WS messages over a loopback socket (receive+parse+validate+emit)',
    count: total,
    'per second': Math.round(total / (elapsed / 1000)),
    'p50 µs': '',
    'p99 µs': '',
    note: '',
  };
}

async function restRun(concurrency: number, total: number): Promise<Record<string, string | number>> {
  const body = JSON.stringify({ exec_info: { queue_remaining: 0 } });
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const client = new ComfyClient({ baseUrl: `http://127.0.0.1:${port}`, maxConnections: concurrency });
  for (let i = 0; i < 300; i++) await client.getPromptStatus();
  const lat: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        const t = performance.now();
        await client.getPromptStatus();
        lat.push(performance.now() - t);
      }
    }),
  );
  const elapsed = performance.now() - started;
  await client.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  lat.sort((a, b) => a - b);
  return {
    measure: `REST getPromptStatus round trips, ${concurrency} in flight`,
    count: lat.length,
    'per second': Math.round(lat.length / (elapsed / 1000)),
    'p50 µs': round(percentile(lat, 50) * 1000, 0),
    'p99 µs': round(percentile(lat, 99) * 1000, 0),
    note: 'keep-alive undici Agent, zod-validated response',
  };
}

/** Runs the protocol benchmark. */
export async function run(): Promise<BenchResult> {
  const frames = recordedFrames(['ok_simple', 'progress_steps']);
  const rows = [
    parseLoop(frames, 1_500),
    binaryLoop(500),
    await socketRun(frames, 100_000),
    await restRun(1, 5_000),
    await restRun(8, 10_000),
  ];
  return {
    name: 'protocol',
    title: 'ComfyUI protocol: WS parse rate and REST round trips',
    rows,
    notes: [`${frames.length} recorded text frames from ok_simple + progress_steps, cycled`, `node ${process.version}`],
  };
}
