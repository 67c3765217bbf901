/**
 * The ComfyUI-compatible endpoint, driven the way stock ComfyUI clients drive a server:
 * @saintno/comfyui-sdk's request sequence (text/plain POST, WS per clientId, history, view),
 * comfyguard's own zod-validated protocol client, and a second guard that uses `/comfy` as its
 * ComfyUI server.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ComfyClient } from '../../src/comfy/client.js';
import type { HistoryEntry, HistoryMap, QueueState } from '../../src/comfy/types.js';
import { createGuard } from '../../src/jobs/guard.js';
import type { JobView } from '../../src/server/job-view.js';
import { tinyWorkflow, waitFor } from './helpers.js';
import { startServiceRig, type ServiceRig } from './rig.js';

interface WsMsg {
  type: string;
  data: Record<string, unknown>;
}

/** A ComfyUI WebSocket client that records every message and can wait for one. */
class Socket {
  readonly messages: WsMsg[] = [];
  readonly ws: WebSocket;
  closed = false;
  readonly #waiters = new Set<() => void>();
  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (data, binary) => {
      // Like stable-canvas: every text frame must be JSON {type, data}.
      if (binary) throw new Error('unexpected binary frame');
      this.messages.push(JSON.parse(String(data)) as WsMsg);
      for (const w of this.#waiters) w();
    });
    this.ws.on('close', () => {
      this.closed = true;
      for (const w of this.#waiters) w();
    });
  }
  /** Resolves with the first message (from index `from`) that matches. */
  next(match: (m: WsMsg) => boolean, from = 0): Promise<WsMsg> {
    return waitFor(() => this.messages.slice(from).find(match), 'a WebSocket message', 30_000, 10);
  }
  forPrompt(id: string): WsMsg[] {
    return this.messages.filter((m) => m.data?.prompt_id === id);
  }
  close(): void {
    this.ws.close();
  }
}

const openSockets: Socket[] = [];
function connect(base: string, query: string): Socket {
  const s = new Socket(`${base.replace('http', 'ws')}/comfy/ws${query}`);
  openSockets.push(s);
  return s;
}

/** POST /prompt exactly as @saintno/comfyui-sdk sends it: JSON text with Content-Type text/plain. */
async function postPromptAsText(base: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(`${base}/comfy/prompt`, { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: JSON.stringify(body) });
}

afterEach(() => {
  for (const s of openSockets.splice(0)) s.close();
});

describe('a ComfyUI client flow through /comfy', () => {
  let rig: ServiceRig;
  beforeAll(async () => {
    rig = await startServiceRig([{}], { app: { comfyHeartbeatMs: 100 } });
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('runs a job submitted as text/plain, sends ComfyUI events on the socket and serves history and view', async () => {
    const base = rig.url;
    // The SDK's init sequence.
    expect(await (await fetch(`${base}/comfy/prompt`)).json()).toEqual({ exec_info: { queue_remaining: expect.any(Number) } });
    const stats = (await (await fetch(`${base}/comfy/system_stats`)).json()) as { system: { os: string }; devices: unknown[] };
    expect(typeof stats.system.os).toBe('string');
    const info = (await (await fetch(`${base}/comfy/object_info/EmptyImage?clientId=abc`)).json()) as Record<string, unknown>;
    expect(info).toHaveProperty('EmptyImage');
    expect((await fetch(`${base}/comfy/internal/logs/subscribe`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"clientId":"c1","enabled":true}' })).status).toBe(200);

    const ws = connect(base, '?clientId=c1');
    const hello = await ws.next((m) => m.type === 'status');
    expect(hello.data).toMatchObject({ sid: 'c1', status: { exec_info: { queue_remaining: expect.any(Number) } } });

    const res = await postPromptAsText(base, { client_id: 'c1', prompt: tinyWorkflow('compat') });
    expect(res.status).toBe(200);
    const queued = (await res.json()) as { prompt_id: string; number: number; node_errors: object };
    expect(queued).toEqual({ prompt_id: expect.any(String), number: expect.any(Number), node_errors: {} });
    const id = queued.prompt_id;

    // End marker: executing with node null, after which history is written.
    await ws.next((m) => m.type === 'executing' && m.data.node === null && m.data.prompt_id === id);
    const types = ws.forPrompt(id).map((m) => m.type);
    expect(types[0]).toBe('execution_start');
    expect(types[1]).toBe('execution_cached');
    expect(types).toContain('executed');
    expect(types.indexOf('executed')).toBeLessThan(types.indexOf('execution_success'));
    expect(types.at(-1)).toBe('executing');
    expect(types).not.toContain('execution_error');
    // ComfyUI's order at the end: execution_success, status (broadcast), executing null.
    const all = ws.messages.map((m) => m.type);
    const successAt = ws.messages.findIndex((m) => m.type === 'execution_success' && m.data.prompt_id === id);
    expect(all.slice(successAt + 1)).toContain('status');
    const executed = ws.forPrompt(id).find((m) => m.type === 'executed')!;
    expect(executed.data).toMatchObject({ node: '2', output: { images: [{ filename: expect.stringMatching(/^compat_/), subfolder: '', type: 'output' }] } });

    const history = (await (await fetch(`${base}/comfy/history/${id}`)).json()) as HistoryMap;
    const entry = history[id]!;
    expect(entry.status).toMatchObject({ status_str: 'success', completed: true });
    expect(entry.status!.messages.map((m) => m[0])).toEqual(['execution_start', 'execution_cached', 'execution_success']);
    expect(entry.prompt[1]).toBe(id);
    expect(entry.prompt[0]).toBe(queued.number);
    expect(entry.prompt[3]).toEqual({ client_id: 'c1' });
    expect(entry.prompt[4]).toEqual(['2']);
    const image = entry.outputs['2']!.images![0]!;

    const view = await fetch(`${base}/comfy/view?filename=${encodeURIComponent(image.filename)}&subfolder=&type=output&clientId=c1`);
    expect(view.status).toBe(200);
    expect(view.headers.get('content-type')).toBe('image/png');
    expect([...new Uint8Array(await view.arrayBuffer()).slice(1, 4)]).toEqual([0x50, 0x4e, 0x47]);

    const recent = (await (await fetch(`${base}/comfy/history?max_items=200`)).json()) as HistoryMap;
    expect(recent[id]).toEqual(entry);

    // The same job through the main API.
    const job = (await (await fetch(`${base}/api/jobs/${id}`)).json()) as JobView;
    expect(job.status).toBe('completed');
  });

  it('answers a prompt that fails validation with ComfyUI\'s own 400 before any job exists', async () => {
    const before = (await rig.guard.stats()).totalJobs;
    const bad = { '1': { class_type: 'EmptyImage', inputs: { width: 0, height: 64, batch_size: 1, color: 0 } }, '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'bad' } } };
    const res = await postPromptAsText(rig.url, { client_id: 'c2', prompt: bad });
    expect(res.status).toBe(400);
    const direct = await fetch(`${rig.sims[0]!.url}/prompt`, { method: 'POST', body: JSON.stringify({ prompt: bad }) });
    expect(await res.json()).toEqual(await direct.json());
    expect((await rig.guard.stats()).totalJobs).toBe(before);
  });

  it('reports a failed job with ComfyUI\'s own execution_error on the socket and in history, plus comfyguard\'s code', async () => {
    const ws = connect(rig.url, '?clientId=c2');
    await ws.next((m) => m.type === 'status');
    const failing = {
      '1': { class_type: 'EmptyImage', inputs: { width: 8, height: 8, batch_size: 1, color: 0 } },
      '2': { class_type: 'ImageToMask', inputs: { image: ['1', 0], channel: 'alpha' } },
      '3': { class_type: 'MaskToImage', inputs: { mask: ['2', 0] } },
      '4': { class_type: 'SaveImage', inputs: { images: ['3', 0], filename_prefix: 'bad' } },
    };
    const { prompt_id: id } = (await (await postPromptAsText(rig.url, { client_id: 'c2', prompt: failing })).json()) as { prompt_id: string };
    await ws.next((m) => m.type === 'executing' && m.data.node === null && m.data.prompt_id === id);
    const err = ws.forPrompt(id).find((m) => m.type === 'execution_error')!;
    expect(err.data).toMatchObject({ prompt_id: id, exception_type: 'IndexError', node_id: '2', node_type: 'ImageToMask' });
    expect((err.data.traceback as string[]).length).toBeGreaterThan(0);
    expect(typeof err.data.code).toBe('string');
    expect(typeof err.data.hint).toBe('string');
    expect(ws.forPrompt(id).map((m) => m.type)).not.toContain('execution_success');

    const entry = ((await (await fetch(`${rig.url}/comfy/history/${id}`)).json()) as HistoryMap)[id]!;
    expect(entry.status).toMatchObject({ status_str: 'error', completed: false });
    const last = entry.status!.messages.at(-1)!;
    expect(last[0]).toBe('execution_error');
    expect(last[1]).toMatchObject({ exception_type: 'IndexError', node_id: '2' });
    expect(entry.outputs).toEqual({});
  });

  it('uses a client-chosen prompt_id everywhere the client sees the job', async () => {
    const ws = connect(rig.url, '?clientId=c3');
    await ws.next((m) => m.type === 'status');
    const res = await postPromptAsText(rig.url, { client_id: 'c3', prompt_id: 'my-job-1', prompt: tinyWorkflow('mine') });
    expect(((await res.json()) as { prompt_id: string }).prompt_id).toBe('my-job-1');
    await ws.next((m) => m.type === 'execution_success' && m.data.prompt_id === 'my-job-1');
    await waitFor(async () => Object.keys((await (await fetch(`${rig.url}/comfy/history/my-job-1`)).json()) as object).length > 0, 'history of my-job-1');
    const entry = ((await (await fetch(`${rig.url}/comfy/history/my-job-1`)).json()) as HistoryMap)['my-job-1'] as HistoryEntry;
    expect(entry.prompt[1]).toBe('my-job-1');
  });

  it('answers ComfyUI-shaped 400s for a missing, malformed or UI-format prompt', async () => {
    const cases: Array<[unknown, string]> = [
      [{ client_id: 'x' }, 'no_prompt'],
      [{ prompt: { nodes: [], links: [] } }, 'invalid_prompt'],
      [{ prompt: {} }, 'prompt_no_outputs'],
      [{ prompt: { '1': { inputs: {} } } }, 'invalid_prompt'],
    ];
    for (const [body, type] of cases) {
      const res = await postPromptAsText(rig.url, body as Record<string, unknown>);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const err = (await res.json()) as { error: { type: string; message: string; details: string; extra_info: object }; node_errors: object };
      expect(err.error.type).toBe(type);
      expect(err.error.message.length).toBeGreaterThan(0);
      expect(err.node_errors).toEqual({});
    }
    // Where ComfyUI's handler itself raises, aiohttp answers a text 500; so does comfyguard.
    const crash = await postPromptAsText(rig.url, { prompt: 'EmptyImage' });
    expect(crash.status).toBe(500);
    expect(await crash.text()).toBe('500 Internal Server Error\n\nServer got itself in trouble');
    const notJson = await fetch(`${rig.url}/comfy/prompt`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'not json' });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: { type: string } }).error.type).toBe('invalid_json');
  });

  it('answers the client\'s feature_flags and keeps the socket alive with status heartbeats', async () => {
    const ws = connect(rig.url, '?clientId=c4');
    await ws.next((m) => m.type === 'status');
    ws.ws.send(JSON.stringify({ type: 'feature_flags', data: { supports_preview_metadata: true } }));
    const flags = await ws.next((m) => m.type === 'feature_flags');
    expect(flags.data).toMatchObject({ supports_preview_metadata: true });
    // With no job at all, status messages keep coming (this rig beats every 100 ms).
    await waitFor(() => ws.messages.filter((m) => m.type === 'status').length >= 3, 'three status heartbeats');
    const beat = ws.messages.filter((m) => m.type === 'status')[2]!;
    expect(beat.data).toEqual({ status: { exec_info: { queue_remaining: expect.any(Number) } } });
  });

  it('routes events to the new socket when a client reconnects with the same clientId', async () => {
    const first = connect(rig.url, '?clientId=c5');
    await first.next((m) => m.type === 'status');
    const second = connect(rig.url, '?clientId=c5');
    await second.next((m) => m.type === 'status');
    // The old socket is closed by us; its close must not unregister the new one (ComfyUI #16010).
    await waitFor(() => first.closed, 'the replaced socket to close');
    const { prompt_id: id } = (await (await postPromptAsText(rig.url, { client_id: 'c5', prompt: tinyWorkflow('re') })).json()) as { prompt_id: string };
    await second.next((m) => m.type === 'execution_success' && m.data.prompt_id === id);
    expect(first.forPrompt(id)).toEqual([]);
  });

  it('works with comfyguard\'s own validating ComfyUI client pointed at /comfy', async () => {
    const client = new ComfyClient({ baseUrl: `${rig.url}/comfy`, name: 'via-comfyguard' });
    try {
      const stats = await client.getSystemStats();
      expect(stats.devices.length).toBeGreaterThanOrEqual(0);
      expect(await client.getNodeInfo('SaveImage')).toHaveProperty('SaveImage');
      const res = await client.submitPrompt(tinyWorkflow('own'), { clientId: 'c6' });
      const id = res.prompt_id;
      const history = await waitFor(async () => {
        const h = await client.getHistory(id);
        return h[id] ? h : null;
      }, 'history');
      const file = history[id]!.outputs['2']!.images![0]!;
      const bytes = await client.view(file);
      expect(bytes.contentType).toBe('image/png');
      const queue = await client.getQueue();
      expect(queue.queue_running.concat(queue.queue_pending).some((q) => q[1] === id)).toBe(false);
      expect((await client.getPromptStatus()).exec_info.queue_remaining).toBeGreaterThanOrEqual(0);
      const all = await client.getAllHistory({ maxItems: 5 });
      expect(Object.keys(all).length).toBeLessThanOrEqual(5);
    } finally {
      await client.close();
    }
  });

  it('serves a second guard that uses /comfy as its ComfyUI server', async () => {
    const outer = await createGuard({ servers: [{ url: `${rig.url}/comfy`, name: 'through' }], store: 'memory:', cleanupIntervalMs: 0, progressThrottleMs: 0, healthTtlMs: 300 });
    try {
      const { id } = await outer.submit(tinyWorkflow('chained'));
      const job = await outer.wait(id, { signal: AbortSignal.timeout(30_000) });
      expect(job.status).toBe('completed');
      expect(job.outputs).toHaveLength(1);
      const file = await outer.fetchOutput('through', job.outputs[0]!);
      expect(file.contentType).toBe('image/png');
    } finally {
      await outer.close();
    }
  });
});

describe('queue, delete and interrupt through /comfy', () => {
  let rig: ServiceRig;
  let release: () => void = () => {};
  afterEach(async () => {
    release();
    await rig?.close();
  });

  it('lists jobs in /queue from POST until history exists, deletes pending ones and interrupts running ones', async () => {
    const gate = new Promise<void>((r) => (release = r));
    // One job at a time, so the second one waits in comfyguard's queue.
    rig = await startServiceRig([{ nodeGate: () => gate }], { guard: { concurrency: 1 } });
    const ws = connect(rig.url, '?clientId=q1');
    await ws.next((m) => m.type === 'status');
    const post = async (prefix: string) =>
      ((await (await postPromptAsText(rig.url, { client_id: 'q1', prompt: tinyWorkflow(prefix) })).json()) as { prompt_id: string; number: number }).prompt_id;
    const running = await post('held');
    const pending = await post('waiting');

    const queue = await waitFor(async () => {
      const q = (await (await fetch(`${rig.url}/comfy/queue?clientId=q1`)).json()) as QueueState;
      return q.queue_running.some((i) => i[1] === running) ? q : null;
    }, 'the held job to be running');
    expect(queue.queue_pending.map((i) => i[1])).toEqual([pending]);
    const item = queue.queue_pending[0]!;
    expect(item[2]).toEqual(tinyWorkflow('waiting'));
    expect(item[3]).toEqual({ client_id: 'q1' });
    expect((await (await fetch(`${rig.url}/comfy/prompt`)).json()) as object).toEqual({ exec_info: { queue_remaining: 2 } });
    expect(await (await fetch(`${rig.url}/comfy/history/${running}`)).json()).toEqual({});

    const del = await fetch(`${rig.url}/comfy/queue`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ delete: [pending] }) });
    expect(del.status).toBe(200);
    expect(((await (await fetch(`${rig.url}/api/jobs/${pending}`)).json()) as JobView).status).toBe('cancelled');

    const stop = await fetch(`${rig.url}/comfy/interrupt`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt_id: running }) });
    expect(stop.status).toBe(200);
    expect(((await (await fetch(`${rig.url}/api/jobs/${running}`)).json()) as JobView).status).toBe('cancelled');
    await ws.next((m) => m.type === 'execution_interrupted' && m.data.prompt_id === running);
    const entry = ((await (await fetch(`${rig.url}/comfy/history/${running}`)).json()) as HistoryMap)[running]!;
    expect(entry.status!.messages.at(-1)![0]).toBe('execution_interrupted');
    const after = (await (await fetch(`${rig.url}/comfy/queue`)).json()) as QueueState;
    expect(after).toEqual({ queue_running: [], queue_pending: [] });
  });
});
