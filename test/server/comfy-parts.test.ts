/**
 * The pieces of the ComfyUI-compatible endpoint on their own: queue-time validation across servers,
 * the upload store and its delivery, the root mount's path mapping and the prompt id rewrite of
 * relayed events.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ApiWorkflow } from '../../src/comfy/types.js';
import { checkPrompt } from '../../src/server/comfy/prompt-check.js';
import { rootToComfyPath } from '../../src/server/comfy/root-mount.js';
import { previewFor, rewritePromptId } from '../../src/server/comfy/socket-hub.js';
import { parseFileValue, UploadStore } from '../../src/server/comfy/uploads.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { decodeBinaryFrame } from '../../src/comfy/binary.js';
import { tinyWorkflow } from './helpers.js';
import { startServiceRig, type ServiceRig } from './rig.js';

function checkpointWorkflow(ckpt: string): ApiWorkflow {
  return {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: ckpt } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: 'x', clip: ['4', 1] } },
    '3': {
      class_type: 'KSampler',
      inputs: { seed: 1, steps: 2, cfg: 7, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['6', 0], latent_image: ['5', 0] },
    },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { images: ['8', 0], filename_prefix: 'x' } },
  };
}

describe('queue-time validation across servers', () => {
  let a: Simulator;
  let b: Simulator;
  let infos: Array<{ server: string; info: Record<string, unknown> }>;
  beforeAll(async () => {
    a = await startSimulator({ port: 0, name: 'a' });
    b = await startSimulator({ port: 0, name: 'b', models: { checkpoints: ['only-on-b.safetensors'] } });
    infos = await Promise.all(
      [a, b].map(async (s) => ({ server: s.name, info: (await (await fetch(`${s.url}/object_info`)).json()) as Record<string, unknown> })),
    );
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  it('accepts a prompt that only one server can run, naming that server', () => {
    const r = checkPrompt(checkpointWorkflow('only-on-b.safetensors'), null, infos, () => false);
    expect(r).toMatchObject({ ok: true, servers: ['b'], checked: true });
  });

  it('answers what the first server answers when no server can run it', async () => {
    const wf = checkpointWorkflow('nowhere.safetensors');
    const r = checkPrompt(wf, null, infos, () => false);
    const direct = await fetch(`${a.url}/prompt`, { method: 'POST', body: JSON.stringify({ prompt: wf }) });
    expect(r.ok).toBe(false);
    expect(r.ok === false && r.status === 400 && r.body).toEqual(await direct.json());
  });

  it('converts widget values the way ComfyUI does, without touching the caller\'s object', () => {
    const wf = tinyWorkflow('conv');
    wf['1']!.inputs.width = '32';
    const r = checkPrompt(wf, null, infos, () => false);
    expect(r.ok && (r.prompt['1'] as { inputs: { width: unknown } }).inputs.width).toBe(32);
    expect(wf['1']!.inputs.width).toBe('32');
  });

  it('lets LoadImage name a file comfyguard holds for delivery, and refuses one nobody has', () => {
    const wf: ApiWorkflow = { '1': { class_type: 'LoadImage', inputs: { image: 'kept/in.png [input]' } }, '2': { class_type: 'PreviewImage', inputs: { images: ['1', 0] } } };
    expect(checkPrompt(wf, null, infos, (name) => name === 'kept/in.png').ok).toBe(true);
    const r = checkPrompt(wf, null, infos, () => false);
    expect(r.ok === false && r.status === 400 && r.body.node_errors['1']?.errors[0]).toMatchObject({ type: 'custom_validation_failed', details: 'image - Invalid image file: kept/in.png [input]' });
  });

  it('accepts unchecked when no server answered object_info', () => {
    expect(checkPrompt(tinyWorkflow(), null, [], () => false)).toMatchObject({ ok: true, checked: false });
  });
});

describe('the upload store', () => {
  const png = (n: number) => new Uint8Array([137, 80, 78, 71, n]);

  it('numbers a clashing name unless overwriting or the bytes are the same, as ComfyUI does', () => {
    const store = new UploadStore();
    const f = { type: 'input' as const, subfolder: '', filename: 'a.png', contentType: 'image/png' };
    expect(store.save({ ...f, data: png(1) }, false).name).toBe('a.png');
    expect(store.save({ ...f, data: png(1) }, false).name).toBe('a.png');
    expect(store.save({ ...f, data: png(2) }, false).name).toBe('a (1).png');
    expect(store.save({ ...f, data: png(3) }, true).name).toBe('a.png');
    expect(store.get('input', '', 'a.png')?.data).toEqual(png(3));
  });

  it('drops the oldest files beyond its byte budget', () => {
    const store = new UploadStore({ maxBytes: 12 });
    for (const n of [1, 2, 3]) store.save({ type: 'input', subfolder: '', filename: `${n}.png`, data: png(n), contentType: 'image/png' }, true);
    expect(store.has('1.png')).toBe(false);
    expect(store.has('3.png')).toBe(true);
  });

  it('reads the file a workflow value names, with subfolder and type annotation', () => {
    expect(parseFileValue('sub/dir/x.png [temp]')).toEqual({ type: 'temp', subfolder: 'sub/dir', filename: 'x.png' });
    expect(parseFileValue('x.png')).toEqual({ type: 'input', subfolder: '', filename: 'x.png' });
  });

  it('delivers the files an attempt\'s workflow uses to the server it goes to, masks after their image', async () => {
    const sim = await startSimulator({ port: 0, name: 'target' });
    try {
      const store = new UploadStore();
      const { solidPng } = await import('../../src/sim/png.js');
      store.save({ type: 'input', subfolder: 'u', filename: 'base.png', data: solidPng(4, 4, [1, 2, 3]), contentType: 'image/png' }, true);
      store.save({ type: 'input', subfolder: 'u', filename: 'unused.png', data: solidPng(4, 4, [1, 2, 3]), contentType: 'image/png' }, true);
      const workflow: ApiWorkflow = { '1': { class_type: 'LoadImage', inputs: { image: 'u/base.png' } } };
      const { ComfyClient } = await import('../../src/comfy/client.js');
      const client = new ComfyClient({ baseUrl: sim.url, name: 'target' });
      try {
        expect(await store.deliver({ client, workflow, signal: AbortSignal.timeout(10_000) })).toBe(1);
      } finally {
        await client.close();
      }
      const view = await fetch(`${sim.url}/view?filename=base.png&subfolder=u&type=input`);
      expect(view.status).toBe(200);
      const unused = await fetch(`${sim.url}/view?filename=unused.png&subfolder=u&type=input`);
      expect(unused.status).toBe(404);
    } finally {
      await sim.close();
    }
  });
});

describe('terminal messages', () => {
  it('keep ComfyUI\'s own error words and add comfyguard\'s code, category, hint and job facts', async () => {
    const { newJobRecord } = await import('../../src/jobs/types.js');
    const { terminalMessage } = await import('../../src/server/comfy/shapes.js');
    const job = {
      ...newJobRecord({ id: 'j1', workflow: tinyWorkflow(), now: 1 }),
      status: 'failed' as const,
      error: { code: 'COMFYUI_GENERATION_ERROR', category: 'generation', message: 'm', hint: 'h', retryable: false },
    };
    const raw = {
      type: 'execution_error' as const,
      data: { prompt_id: 'attempt-1', node_id: '2', node_type: 'ImageToMask', executed: ['1'], exception_type: 'IndexError', exception_message: 'index 3', traceback: ['tb'], current_inputs: { channel: ['alpha'] }, current_outputs: [] },
    };
    expect(terminalMessage(job, 'client-1', raw).data).toMatchObject({
      ...raw.data,
      prompt_id: 'client-1',
      code: 'COMFYUI_GENERATION_ERROR',
      category: 'generation',
      hint: 'h',
      comfyguard: { job_id: 'j1', recovered: false, degraded: null },
    });
  });

  it('say when the result was changed: degraded quality or inputs a recovery changed', async () => {
    const { newJobRecord } = await import('../../src/jobs/types.js');
    const { terminalMessage } = await import('../../src/server/comfy/shapes.js');
    const base = newJobRecord({ id: 'j2', workflow: tinyWorkflow(), now: 1 });
    const change = { nodeId: '1', classType: 'EmptyImage', input: 'width', from: 64, to: 32 };
    const job = {
      ...base,
      status: 'completed' as const,
      degraded: { level: 'medium', factor: 0.75 },
      attempts: [
        { number: 1, server: 's', promptId: 'p1', status: 'failed', startedAt: 1 },
        { number: 2, server: 's', promptId: 'p2', status: 'completed', startedAt: 2, changes: [change] },
      ] as unknown as typeof base.attempts,
    };
    expect(terminalMessage(job, 'c').data).toMatchObject({ comfyguard: { attempts: 2, recovered: true, degraded: { level: 'medium', factor: 0.75, changes: [change] } } });
  });
});

describe('relayed events', () => {
  it('carry the client\'s prompt id, inside progress_state nodes too', () => {
    const m = rewritePromptId({ type: 'progress_state', data: { prompt_id: 'attempt-2', nodes: { '3': { prompt_id: 'attempt-2', value: 1, max: 2 } } } }, 'attempt-2', 'client-id');
    expect(m.data).toEqual({ prompt_id: 'client-id', nodes: { '3': { prompt_id: 'client-id', value: 1, max: 2 } } });
  });

  it('send previews with metadata only to clients that announced support, type 1 otherwise', () => {
    const frame = { kind: 'preview_with_metadata' as const, eventType: 4 as const, metadata: { prompt_id: 'attempt', node_id: '3', image_type: 'image/png' }, image: new Uint8Array([1, 2, 3]) };
    expect(decodeBinaryFrame(previewFor(frame, 'mine', true))).toMatchObject({ kind: 'preview_with_metadata', metadata: { prompt_id: 'mine', node_id: '3' } });
    expect(decodeBinaryFrame(previewFor(frame, 'mine', false))).toMatchObject({ kind: 'preview', format: 'png' });
  });
});

describe('the root mount', () => {
  it('maps ComfyUI\'s root and /api paths onto /comfy', () => {
    expect(rootToComfyPath('/prompt')).toBe('/comfy/prompt');
    expect(rootToComfyPath('/api/prompt?clientId=1')).toBe('/comfy/prompt?clientId=1');
    expect(rootToComfyPath('/ws?clientId=abc')).toBe('/comfy/ws?clientId=abc');
    expect(rootToComfyPath('/api')).toBe('/comfy');
    expect(rootToComfyPath('/')).toBe('/comfy');
  });

  let rig: ServiceRig;
  let root: string;
  beforeAll(async () => {
    rig = await startServiceRig([{}]);
    const { listenComfyRoot } = await import('../../src/server/comfy/root-mount.js');
    const mount = await listenComfyRoot(rig.server.app, { host: '127.0.0.1', port: 0 });
    root = mount.url;
    const close = rig.close;
    rig.close = async () => {
      await close();
      await mount.close();
    };
  });
  afterAll(async () => {
    await rig.close();
  });

  it('serves /prompt, /api/prompt, /ws and the lenient empty bodies at the root', async () => {
    expect(await (await fetch(`${root}/prompt`)).json()).toMatchObject({ exec_info: { queue_remaining: expect.any(Number) } });
    expect(await (await fetch(`${root}/api/prompt`)).json()).toMatchObject({ exec_info: {} });
    for (const path of ['/interrupt', '/queue', '/free', '/api/interrupt']) {
      const empty = await fetch(`${root}${path}`, { method: 'POST' });
      expect(empty.status, path).toBe(200);
      const nul = await fetch(`${root}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'null' });
      expect(nul.status, path).toBe(200);
    }
    const ws = new WebSocket(`${root.replace('http', 'ws')}/ws?clientId=rooted`);
    const first = await new Promise<{ type: string; data: { sid?: string } }>((resolve, reject) => {
      ws.once('message', (d) => resolve(JSON.parse(String(d)) as { type: string; data: { sid?: string } }));
      ws.once('error', reject);
    });
    expect(first).toMatchObject({ type: 'status', data: { sid: 'rooted' } });
    ws.close();
  });

  it('answers uploads as ComfyUI does: the name it got, a bodyless 400 without a file, a 500 for an unknown type', async () => {
    const form = (fields: Record<string, string>, file = true) => {
      const f = new FormData();
      if (file) f.set('image', new Blob([new Uint8Array([1, 2, 3])], { type: 'image/png' }), 'm.png');
      for (const [k, v] of Object.entries(fields)) f.set(k, v);
      return f;
    };
    const ok = await fetch(`${root}/upload/mask`, { method: 'POST', body: form({ subfolder: 'clipspace', original_ref: JSON.stringify({ filename: 'base.png', subfolder: '', type: 'input' }) }) });
    expect(await ok.json()).toEqual({ name: 'm.png', subfolder: 'clipspace', type: 'input' });
    const viewed = await fetch(`${root}/view?filename=m.png&subfolder=clipspace&type=input`);
    expect(new Uint8Array(await viewed.arrayBuffer())).toEqual(new Uint8Array([1, 2, 3]));
    const noFile = await fetch(`${root}/upload/image`, { method: 'POST', body: form({}, false) });
    expect(noFile.status).toBe(400);
    const badType = await fetch(`${root}/upload/image`, { method: 'POST', body: form({ type: 'models' }) });
    expect(badType.status).toBe(500);
    const escape = await fetch(`${root}/upload/image`, { method: 'POST', body: form({ subfolder: '../x' }) });
    expect(escape.status).toBe(400);
  });
});

describe('client prompt ids across a restart', () => {
  it('answers /history and /queue numbers for prompt ids a previous process handed out', async () => {
    const { memoryMetaStore } = await import('../../src/server/index.js');
    const { listen } = await import('./helpers.js');
    const meta = memoryMetaStore();
    const rig = await startServiceRig([{}], { app: { comfyMeta: meta } });
    try {
      const post = (base: string, body: object) => fetch(`${base}/comfy/prompt`, { method: 'POST', body: JSON.stringify(body) }).then((r) => r.json() as Promise<{ prompt_id: string; number: number }>);
      const first = await post(rig.url, { prompt_id: 'kept-1', client_id: 'c', prompt: tinyWorkflow('kept') });
      expect(first.prompt_id).toBe('kept-1');
      const job = await rig.guard.wait((await rig.guard.list({ limit: 1 })).jobs[0]!.id, { signal: AbortSignal.timeout(20_000) });
      expect(job.status).toBe('completed');
      // A new service process over the same guard store and meta store.
      const again = await listen({ guard: rig.guard, dashboard: false, comfyMeta: meta });
      try {
        const history = (await (await fetch(`${again.url}/comfy/history/kept-1`)).json()) as Record<string, { prompt: unknown[] }>;
        expect(history['kept-1']?.prompt[0]).toBe(first.number);
        const second = await post(again.url, { prompt: tinyWorkflow('next') });
        expect(second.number).toBe(first.number + 1);
      } finally {
        await again.close();
      }
    } finally {
      await rig.close();
    }
  });
});
