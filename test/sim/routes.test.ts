/**
 * REST and WebSocket details beyond the recorded captures, checked against ComfyUI's server.py:
 * uploads, /view errors, /models, unknown routes and methods, the Origin check, body limits,
 * the /api prefix, the interrupt at sampler steps, previews, and the same-clientId reconnect bug.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { solidPng } from '../../src/sim/png.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/index.js';
import { RecordingSocket, getJson, postJson, runPrompt, sdWorkflow, waitUntil } from './helpers.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  while (open.length > 0) await open.pop()?.close();
});
async function sim(opts: SimulatorOptions = {}): Promise<Simulator> {
  const s = await startSimulator({ stepMs: 0, ...opts });
  open.push(s);
  return s;
}
async function socket(s: Simulator, clientId: string): Promise<RecordingSocket> {
  const ws = await RecordingSocket.open(s.url, clientId);
  open.push(ws);
  return ws;
}

async function upload(s: Simulator, name: string, data: Buffer, fields: Record<string, string> = {}) {
  const form = new FormData();
  form.set('image', new Blob([new Uint8Array(data)], { type: 'image/png' }), name);
  for (const [k, v] of Object.entries(fields)) form.set(k, v);
  const res = await fetch(`${s.url}/upload/image`, { method: 'POST', body: form });
  return { status: res.status, body: res.status === 200 ? ((await res.json()) as { name: string; subfolder: string; type: string }) : await res.text() };
}

describe('files', () => {
  it('uploads images (renaming on a clash, keeping identical content) and LoadImage reads them', async () => {
    const s = await sim();
    const red = solidPng(32, 16, [255, 0, 0]);
    expect(await upload(s, 'in.png', red)).toEqual({ status: 200, body: { name: 'in.png', subfolder: '', type: 'input' } });
    expect((await upload(s, 'in.png', red)).body).toMatchObject({ name: 'in.png' });
    expect((await upload(s, 'in.png', solidPng(8, 8, [0, 0, 255]))).body).toMatchObject({ name: 'in (1).png' });
    expect((await upload(s, 'in.png', red, { type: 'nowhere' })).status).toBe(500);
    const info = await getJson<{ LoadImage: { input: { required: { image: [string[]] } } } }>(s.url, '/object_info/LoadImage');
    expect(info.LoadImage.input.required.image[0]).toEqual(['example.png', 'in (1).png', 'in.png']);
    const r = await runPrompt(s.url, {
      '1': { class_type: 'LoadImage', inputs: { image: 'in.png' } },
      '2': { class_type: 'PreviewImage', inputs: { images: ['1', 0] } },
    });
    expect(r.outputs['2']).toMatchObject({ images: [{ subfolder: '', type: 'temp' }] });
    const file = (r.outputs['2'] as { images: Array<{ filename: string }> }).images[0]?.filename ?? '';
    expect(file).toMatch(/^ComfyUI_temp_[a-z0-9]{5}_00001_\.png$/);
    const view = await fetch(`${s.url}/view?filename=${encodeURIComponent(file)}&type=temp&subfolder=`);
    expect(view.status).toBe(200);
    expect(view.headers.get('content-disposition')).toBe(`filename="${file}"`);
  });

  it('answers /view errors like ComfyUI', async () => {
    const s = await sim();
    expect((await fetch(`${s.url}/view?filename=../secret.png`)).status).toBe(400);
    expect((await fetch(`${s.url}/view?filename=a.png&type=nowhere`)).status).toBe(400);
    expect((await fetch(`${s.url}/view?filename=a.png&subfolder=../..`)).status).toBe(403);
    expect((await fetch(`${s.url}/view?filename=missing.png`)).status).toBe(404);
    expect((await fetch(`${s.url}/view?filename=example.png [input]`)).status).toBe(200);
  });
});

describe('routes', () => {
  it('serves every route under /api too, lists model folders, 404s unknown folders and classes', async () => {
    const s = await sim({ models: { checkpoints: ['x.safetensors'] } });
    expect(await getJson(s.url, '/api/models/checkpoints')).toEqual(['x.safetensors']);
    expect(await getJson<string[]>(s.url, '/models')).toContain('diffusion_models');
    const unknown = await fetch(`${s.url}/models/nope`);
    expect([unknown.status, unknown.headers.get('content-type'), await unknown.text()]).toEqual([404, 'application/octet-stream', '']);
    expect(await getJson(s.url, '/object_info/NoSuchNode')).toEqual({});
    expect(await getJson(s.url, '/api/features')).toEqual({ supports_preview_metadata: true, max_upload_size: 104857600 });
  });

  it('answers unknown paths 404 and wrong methods 405, as aiohttp does', async () => {
    const s = await sim();
    const missing = await fetch(`${s.url}/nope`);
    expect([missing.status, await missing.text()]).toEqual([404, '404: Not Found']);
    const wrong = await fetch(`${s.url}/interrupt`);
    expect([wrong.status, wrong.headers.get('allow'), await wrong.text()]).toEqual([405, 'POST', '405: Method Not Allowed']);
  });

  it('rejects a mismatched Origin on a loopback Host with a bare 403', async () => {
    const s = await sim();
    const res = await fetch(`${s.url}/prompt`, { headers: { origin: 'http://evil.example' } });
    expect([res.status, await res.text()]).toEqual([403, '']);
    expect((await fetch(`${s.url}/prompt`, { headers: { origin: s.url } })).status).toBe(200);
  });

  it('caps request bodies at max upload size with a text 413', async () => {
    const s = await sim({ maxUploadSize: 1024 });
    const r = await postJson(s.url, '/prompt', { prompt: {}, pad: 'x'.repeat(2000) });
    expect(r.status).toBe(413);
    expect(r.text).toMatch(/^Maximum request body size 1024 exceeded, actual body size \d+$/);
  });

  it('accepts a JSON body whatever its content type, and answers a malformed one with the text 500', async () => {
    const s = await sim();
    const ok = await fetch(`${s.url}/prompt`, { method: 'POST', body: JSON.stringify({ prompt: sdWorkflow() }), headers: { 'content-type': 'text/plain;charset=UTF-8' } });
    expect(ok.status).toBe(200);
    const bad = await fetch(`${s.url}/free`, { method: 'POST', body: '' });
    expect([bad.status, await bad.text()]).toEqual([500, '500 Internal Server Error\n\nServer got itself in trouble']);
  });
});

describe('execution details', () => {
  it('interrupts a sampler between steps; progress counts 1..steps', async () => {
    const clientId = randomUUID();
    let release: (() => void) | undefined;
    let held = false;
    const s = await sim({
      nodeGate: (info) => {
        if (info.classType !== 'KSampler' || held) return undefined;
        held = true;
        return new Promise<void>((r) => (release = r));
      },
    });
    const ws = await socket(s, clientId);
    const { json } = await postJson(s.url, '/prompt', { prompt: sdWorkflow({ steps: 30 }), client_id: clientId });
    const promptId = (json as { prompt_id: string }).prompt_id;
    await waitUntil(() => release !== undefined, 'the sampler to start');
    await postJson(s.url, '/interrupt', {});
    release?.();
    await ws.waitDone(promptId);
    const msgs = ws.forPrompt(promptId);
    expect(msgs.find((m) => m.type === 'execution_interrupted')?.data).toMatchObject({ node_id: '3', node_type: 'KSampler' });
    expect(msgs.filter((m) => m.type === 'progress')).toEqual([]); // the flag is seen at the first step hook

    const full = await runPrompt(s.url, sdWorkflow({ steps: 3, seed: 9 }), { client_id: clientId });
    await ws.waitDone(full.promptId);
    const steps = ws.forPrompt(full.promptId).filter((m) => m.type === 'progress');
    expect(steps.map((m) => [m.data.value, m.data.max, m.data.node])).toEqual([
      [1, 3, '3'],
      [2, 3, '3'],
      [3, 3, '3'],
    ]);
  });

  it('sends sampler previews as type 1 frames, or type 4 with metadata to clients that asked', async () => {
    const s = await sim({ previews: true });
    const plain = await socket(s, 'plain');
    const meta = await socket(s, 'meta');
    meta.ws.send(JSON.stringify({ type: 'feature_flags', data: { supports_preview_metadata: true } }));
    await meta.waitFor((m) => m.type === 'feature_flags', 'the feature_flags reply');
    const a = await runPrompt(s.url, sdWorkflow({ steps: 2 }), { client_id: 'plain' });
    await plain.waitDone(a.promptId);
    const b = await runPrompt(s.url, sdWorkflow({ steps: 2, seed: 5 }), { client_id: 'meta' });
    await meta.waitDone(b.promptId);
    expect(plain.binaries.map((f) => [f.readUInt32BE(0), f.readUInt32BE(4)])).toEqual([
      [1, 2],
      [1, 2],
    ]);
    expect(meta.binaries).toHaveLength(2);
    const frame = meta.binaries[0] as Buffer;
    expect(frame.readUInt32BE(0)).toBe(4);
    const metadata = JSON.parse(frame.subarray(8, 8 + frame.readUInt32BE(4)).toString()) as Record<string, unknown>;
    expect(metadata).toEqual({ node_id: '3', prompt_id: b.promptId, display_node_id: '3', parent_node_id: null, real_node_id: '3', image_type: 'image/png' });
  });

  it('emulates issue #16010: a reconnect with the same clientId is unregistered when the old socket closes', async () => {
    const s = await sim();
    const first = await socket(s, 'dup');
    const second = await socket(s, 'dup');
    await first.close();
    await waitUntil(() => (s.state().open_websockets as number) === 1, 'the server to see the first socket go');
    const r = await runPrompt(s.url, sdWorkflow(), { client_id: 'dup' });
    expect(r.outcome).toBe('success');
    expect(second.forPrompt(r.promptId)).toEqual([]); // the live socket hears nothing

    const fixed = await sim({ reconnectBug: false });
    const a = await socket(fixed, 'dup');
    const b = await socket(fixed, 'dup');
    await a.close();
    await waitUntil(() => (fixed.state().open_websockets as number) === 1, 'the server to see the first socket go');
    const r2 = await runPrompt(fixed.url, sdWorkflow(), { client_id: 'dup' });
    await b.waitDone(r2.promptId);
  });
});
