/**
 * Raw-wire helpers for simulator tests: a recording WebSocket client, JSON POSTs, a bounded poll,
 * a hand-driven Clock, and the workflows the tests submit.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import type { Clock, TimerHandle } from '../../src/util/clock.js';

/** Polls `cond` until true; fails after `timeoutMs` with `what`. No fixed sleeps. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface WsMsg {
  type: string;
  data: Record<string, unknown>;
}

/** A WebSocket client that records every message and its close. */
export class RecordingSocket {
  readonly messages: WsMsg[] = [];
  readonly binaries: Buffer[] = [];
  closed: { code: number; reason: string } | undefined;
  error: NodeJS.ErrnoException | undefined;
  readonly ws: WebSocket;
  readonly opened: Promise<void>;

  constructor(baseUrl: string, clientId: string) {
    this.ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/ws?clientId=${encodeURIComponent(clientId)}`);
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.ws.on('message', (d: Buffer, binary: boolean) => {
      if (binary) this.binaries.push(d);
      else this.messages.push(JSON.parse(d.toString()) as WsMsg);
    });
    this.ws.on('error', (e: NodeJS.ErrnoException) => {
      this.error = e;
    });
    this.ws.on('close', (code: number, reason: Buffer) => {
      this.closed = { code, reason: reason.toString() };
    });
  }

  static async open(baseUrl: string, clientId: string): Promise<RecordingSocket> {
    const s = new RecordingSocket(baseUrl, clientId);
    await s.opened;
    return s;
  }

  /** Messages for one prompt (and statuses excluded). */
  forPrompt(promptId: string): WsMsg[] {
    return this.messages.filter((m) => m.type !== 'status' && m.data.prompt_id === promptId);
  }

  async waitFor(pred: (m: WsMsg) => boolean, what: string): Promise<WsMsg> {
    let found: WsMsg | undefined;
    await waitUntil(() => (found = this.messages.find(pred)) !== undefined, what);
    return found as WsMsg;
  }

  /** Waits for the end marker `executing {node: null}` of a prompt. */
  waitDone(promptId: string): Promise<WsMsg> {
    return this.waitFor((m) => m.type === 'executing' && m.data.node === null && m.data.prompt_id === promptId, `end of ${promptId}`);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const done = new Promise<void>((r) => this.ws.once('close', () => r()));
    if (this.ws.readyState === WebSocket.CONNECTING || this.closed) this.ws.terminate();
    else this.ws.close(1000);
    await done;
  }
}

/** POSTs JSON; returns status, content type and the parsed (or raw) body. */
export async function postJson(baseUrl: string, path: string, body: unknown): Promise<{ status: number; type: string | null; json: unknown; text: string; headers: Headers }> {
  const res = await fetch(`${baseUrl}${path}`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, type: res.headers.get('content-type'), json, text, headers: res.headers };
}

export async function getJson<T = unknown>(baseUrl: string, path: string): Promise<T> {
  const res = await fetch(`${baseUrl}${path}`);
  return (await res.json()) as T;
}

/** The `cause.code` of a failed fetch (ECONNREFUSED, ECONNRESET, UND_ERR_SOCKET...). */
export async function fetchFailure(url: string, init?: RequestInit): Promise<string> {
  try {
    const res = await fetch(url, init);
    await res.arrayBuffer();
  } catch (e) {
    return (e as { cause?: { code?: string } }).cause?.code ?? 'unknown';
  }
  return 'no failure';
}

/** A Clock whose timers only fire when the test says so. */
export class ManualClock implements Clock {
  private t = 1_800_000_000_000;
  private timers: Array<{ fn: () => void; at: number; id: number }> = [];
  private seq = 0;

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.push({ fn, at: this.t + ms, id });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((x) => x.id !== (handle as unknown as number));
  }

  pending(): number {
    return this.timers.length;
  }

  /** Advances time and fires every timer that is due. */
  advance(ms: number): void {
    this.t += ms;
    const due = this.timers.filter((x) => x.at <= this.t);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const x of due) x.fn();
  }
}

/** EmptyImage -> ImageInvert -> SaveImage (the recorded ok_simple graph). */
export function simpleWorkflow(color = 0, prefix = 'test'): Record<string, unknown> {
  return {
    '1': { class_type: 'EmptyImage', inputs: { width: 64, height: 64, batch_size: 1, color } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '3': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: prefix } },
  };
}

export interface SdParams {
  ckpt?: string;
  width?: number;
  height?: number;
  batch?: number;
  steps?: number;
  seed?: number;
  tiled?: boolean;
}

/** The default text-to-image graph (checkpoint, two prompts, KSampler, VAE decode, save). */
export function sdWorkflow(p: SdParams = {}): Record<string, unknown> {
  return {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: p.ckpt ?? 'v1-5-pruned-emaonly.ckpt' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: p.width ?? 512, height: p.height ?? 512, batch_size: p.batch ?? 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: 'a lighthouse at dusk', clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: 'blurry', clip: ['4', 1] } },
    '3': {
      class_type: 'KSampler',
      inputs: {
        seed: p.seed ?? 42,
        steps: p.steps ?? 4,
        cfg: 7,
        sampler_name: 'euler',
        scheduler: 'normal',
        denoise: 1,
        model: ['4', 0],
        positive: ['6', 0],
        negative: ['7', 0],
        latent_image: ['5', 0],
      },
    },
    '8': p.tiled
      ? { class_type: 'VAEDecodeTiled', inputs: { samples: ['3', 0], vae: ['4', 2], tile_size: 512, overlap: 64, temporal_size: 64, temporal_overlap: 8 } }
      : { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { images: ['8', 0], filename_prefix: 'sd' } },
  };
}

export interface RunOutcome {
  promptId: string;
  outcome: 'success' | 'error' | 'interrupted';
  error?: Record<string, unknown>;
  outputs: Record<string, unknown>;
}

/** Submits a prompt and waits for its history entry; returns the terminal outcome. */
export async function runPrompt(baseUrl: string, prompt: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<RunOutcome> {
  const promptId = randomUUID();
  const r = await postJson(baseUrl, '/prompt', { prompt, prompt_id: promptId, ...extra });
  if (r.status !== 200) throw new Error(`submit failed: ${r.status} ${r.text}`);
  let entry: { outputs: Record<string, unknown>; status: { messages: Array<[string, Record<string, unknown>]> } } | undefined;
  await waitUntil(async () => {
    const h = await getJson<Record<string, typeof entry>>(baseUrl, `/history/${promptId}`);
    entry = h[promptId];
    return entry !== undefined;
  }, `history of ${promptId}`);
  const last = entry?.status.messages.at(-1);
  const kind = last?.[0];
  const outcome = kind === 'execution_success' ? 'success' : kind === 'execution_interrupted' ? 'interrupted' : 'error';
  return { promptId, outcome, ...(kind === 'execution_error' ? { error: last?.[1] } : {}), outputs: entry?.outputs ?? {} };
}
