/**
 * `comfyguard serve` as a child process, for the benchmarks that measure the service from outside
 * (chaos, cluster): a free port, start-and-wait-for-listening, and a JSON call helper.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js');

/** A TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** Starts `serve --port PORT ...args` and resolves once it listens; rejects with its stderr if it exits first. */
export function startServe(port: number, args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [MAIN, 'serve', '--port', String(port), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening on')) resolve(p);
    });
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.once('exit', (code) => reject(new Error(`serve on ${port} exited ${code} before listening: ${err.slice(-800)}`)));
  });
}

/** A JSON request to the service; a non-2xx answer throws with its body. */
export async function api<T>(url: string, path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(`${url}${path}`, { ...init, headers: { 'content-type': 'application/json', ...(init?.headers ?? {}) } });
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${path}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}
