/**
 * What `comfyguard doctor` learns about one ComfyUI server: a handful of bounded, read-only calls
 * (system_stats, queue, object_info, models, features, one WebSocket handshake). Nothing is
 * submitted. Every call's failure is kept as data so the report can say exactly what broke.
 */
import { randomUUID } from 'node:crypto';
import { ComfyClient } from '../../comfy/client.js';
import { ComfyRequestError } from '../../comfy/errors.js';
import { serverCapabilities, type ServerCapabilities } from '../../comfy/features.js';
import { ComfySocket } from '../../comfy/socket.js';
import type { SystemStats } from '../../comfy/types.js';

/** A call's result or the reason it failed. */
export type Probed<T> = { ok: true; value: T; ms: number } | { ok: false; error: string; status?: number; ms: number };

export interface ServerProbe {
  url: string;
  systemStats: Probed<SystemStats>;
  queue: Probed<{ running: number; pending: number }>;
  nodeTypes: Probed<string[]>;
  checkpoints: Probed<string[]>;
  websocket: Probed<true>;
  capabilities: ServerCapabilities;
}

export interface ProbeOptions {
  /** Bound of each call. @default 10_000 */
  timeoutMs?: number;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Probes one server; never throws for server trouble. */
export async function probeServer(url: string, opts: ProbeOptions = {}): Promise<ServerProbe> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const client = new ComfyClient({ baseUrl: url, requestTimeoutMs: timeoutMs, ...(opts.headers ? { headers: opts.headers } : {}) });
  const call = { timeoutMs, ...(opts.signal ? { signal: opts.signal } : {}) };
  try {
    const systemStats = await timed(() => client.getSystemStats(call));
    if (!systemStats.ok) {
      // Unreachable or refusing: the other calls would only repeat the same failure.
      const skipped: Probed<never> = { ok: false, error: 'skipped: server not reachable', ms: 0 };
      return { url, systemStats, queue: skipped, nodeTypes: skipped, checkpoints: skipped, websocket: skipped, capabilities: serverCapabilities(undefined) };
    }
    const [queue, nodeTypes, checkpoints, websocket] = await Promise.all([
      timed(async () => {
        const q = await client.getQueue(call);
        return { running: q.queue_running.length, pending: q.queue_pending.length };
      }),
      timed(() => nodeTypesOf(client, call)),
      timed(() => client.getModels('checkpoints', call)),
      timed(() => websocketHandshake(url, timeoutMs, opts.headers)),
    ]);
    return { url, systemStats, queue, nodeTypes, checkpoints, websocket, capabilities: serverCapabilities(systemStats.value) };
  } finally {
    await client.close().catch(() => undefined);
  }
}

/**
 * Class names from `GET /object_info`. Only the names matter here, so a definition the client's
 * strict schema rejects (V3 nodes send `null` output tooltips) must not hide the whole list: the
 * names are read from the JSON body the error carries, as the pool does.
 */
async function nodeTypesOf(client: ComfyClient, call: { timeoutMs: number; signal?: AbortSignal }): Promise<string[]> {
  try {
    return Object.keys(await client.getObjectInfo(call)).sort();
  } catch (err) {
    const body = err instanceof ComfyRequestError && err.kind === 'invalid_response' ? err.body : undefined;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw err;
    return Object.entries(body as Record<string, unknown>)
      .filter(([, def]) => typeof def === 'object' && def !== null)
      .map(([name]) => name)
      .sort();
  }
}

/** Opens `/ws` and waits for the server's first `status` message, as ComfyUI sends on connect. */
async function websocketHandshake(url: string, timeoutMs: number, headers?: Record<string, string>): Promise<true> {
  const socket = new ComfySocket({ baseUrl: url, clientId: `doctor-${randomUUID()}`, connectTimeoutMs: timeoutMs, pingIntervalMs: 0, ...(headers ? { headers } : {}) });
  try {
    let off: () => void = () => undefined;
    const firstStatus = new Promise<true>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no status message within ${timeoutMs} ms of connecting`)), timeoutMs);
      off = socket.on((e) => {
        if (e.kind === 'message' && e.message.type === 'status') {
          clearTimeout(timer);
          resolve(true);
        } else if (e.kind === 'close') {
          clearTimeout(timer);
          reject(new Error(`socket closed (code ${e.code}${e.reason ? `, ${e.reason}` : ''}) before the first status message`));
        }
      });
    });
    try {
      await socket.connect();
      return await firstStatus;
    } finally {
      off();
    }
  } finally {
    await socket.close().catch(() => undefined);
  }
}

async function timed<T>(fn: () => Promise<T>): Promise<Probed<T>> {
  const t0 = performance.now();
  try {
    const value = await fn();
    return { ok: true, value, ms: Math.round(performance.now() - t0) };
  } catch (err) {
    const ms = Math.round(performance.now() - t0);
    if (err instanceof ComfyRequestError) {
      const code = err.transportCode ? ` (${err.transportCode})` : '';
      return { ok: false, error: `${err.message}${code}`, ...(err.status !== undefined ? { status: err.status } : {}), ms };
    }
    return { ok: false, error: err instanceof Error ? err.message : String(err), ms };
  }
}
