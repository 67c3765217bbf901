/**
 * Two real ComfyUI client libraries, unchanged, run the same cases once directly against the
 * simulator and once through comfyguard: @saintno/comfyui-sdk through `/comfy`, and
 * @stable-canvas/comfyui-client (WebSocket mode) through the root mount (`comfyPort`), since it
 * always connects to `/ws` at the root of its host. Each case must behave the same on both paths,
 * except recovery, where through comfyguard the client simply sees success.
 */
import { CallWrapper, ComfyApi, PromptBuilder } from '@saintno/comfyui-sdk';
import { Client } from '@stable-canvas/comfyui-client';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ApiWorkflow } from '../../src/comfy/types.js';
import { createGuard } from '../../src/jobs/guard.js';
import type { Guard } from '../../src/jobs/guard-api.js';
import { startService, UploadStore, type RunningService } from '../../src/server/index.js';
import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { pngInfo, solidPng } from '../../src/sim/png.js';

type Outcome = 'success' | 'validation_error' | 'execution_error' | 'interrupted' | 'failed';

interface RunResult {
  outcome: Outcome;
  progress: number;
  bytes?: Uint8Array;
  /** The 400 body, or ComfyUI's execution_error / execution_interrupted data. */
  detail?: Record<string, unknown>;
  promptId?: string;
  /** Binary preview images the client decoded. */
  previews?: number;
  /** For a `failed` outcome: what the client threw. */
  why?: string;
}

interface Driver {
  run(workflow: ApiWorkflow, outNode: string, opts?: { interruptOnFirstProgress?: boolean }): Promise<RunResult>;
  upload(name: string, data: Uint8Array): Promise<string>;
  close(): Promise<void>;
}

const STEPS = 6;

function txt2img(overrides: Record<string, unknown> = {}): ApiWorkflow {
  return {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'v1-5-pruned-emaonly.ckpt' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 64, batch_size: 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: 'a lighthouse', clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: '', clip: ['4', 1] } },
    '3': {
      class_type: 'KSampler',
      inputs: { seed: 1, steps: STEPS, cfg: 7, sampler_name: 'euler', scheduler: 'normal', denoise: 1, model: ['4', 0], positive: ['6', 0], negative: ['7', 0], latent_image: ['5', 0], ...overrides },
    },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { images: ['8', 0], filename_prefix: 'clients' } },
  };
}

/** The sampler runs, then ImageToMask asks a 3-channel image for its alpha channel: ComfyUI raises IndexError. */
function failing(): ApiWorkflow {
  const wf = txt2img();
  delete wf['9'];
  return {
    ...wf,
    '10': { class_type: 'ImageToMask', inputs: { image: ['8', 0], channel: 'alpha' } },
    '11': { class_type: 'MaskToImage', inputs: { mask: ['10', 0] } },
    '9': { class_type: 'SaveImage', inputs: { images: ['11', 0], filename_prefix: 'fail' } },
  };
}

function loadsImage(name: string): ApiWorkflow {
  return {
    '1': { class_type: 'LoadImage', inputs: { image: name } },
    '2': { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    '9': { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'loaded' } },
  };
}

function errorDetail(err: unknown): Record<string, unknown> | undefined {
  const cause = (err as { cause?: unknown }).cause;
  return cause && typeof cause === 'object' ? (cause as Record<string, unknown>) : undefined;
}

/** @saintno/comfyui-sdk: ComfyApi + CallWrapper, the way its README runs a workflow. */
async function saintno(base: string): Promise<Driver> {
  const api = new ComfyApi(base, undefined, { customWebSocketImpl: WebSocket as never });
  api.init(20, 50);
  await api.waitForReady();
  return {
    run: (workflow, outNode, opts = {}) =>
      new Promise<RunResult>((resolve) => {
        let progress = 0;
        let previews = 0;
        const builder = new PromptBuilder(workflow as Record<string, never>, [], ['out']).setOutputNode('out', outNode as never);
        new CallWrapper(api, builder)
          .onPreview(() => previews++)
          .onProgress(() => {
            progress++;
            if (opts.interruptOnFirstProgress && progress === 1) void api.interrupt();
          })
          .onFinished(async (data, promptId) => {
            const img = (data.out as { images: Array<{ filename: string; subfolder: string; type: string }> }).images[0]!;
            const bytes = new Uint8Array(await (await fetch(api.getPathImage(img))).arrayBuffer());
            resolve({ outcome: 'success', progress, previews, bytes, ...(promptId ? { promptId } : {}) });
          })
          .onFailed((err) => {
            const name = err.name;
            const detail = errorDetail(err);
            const outcome: Outcome =
              name === 'EnqueueFailedError' ? 'validation_error' : name === 'CustomEventError' ? 'execution_error' : name === 'ExecutionInterruptedError' ? 'interrupted' : 'failed';
            resolve({ outcome, progress, ...(detail ? { detail } : {}), why: `${name}: ${err.message}` });
          })
          .run()
          .catch(() => resolve({ outcome: 'failed', progress }));
      }),
    upload: async (name, data) => {
      const r = await api.uploadImage(data, name, { override: true });
      if (!r) throw new Error('upload failed');
      return r.info.filename;
    },
    close: async () => {
      // destroy() drops the socket's error handler and closes it: a socket still connecting (a
      // reconnect after a crash) would then raise in ws, so let it open first.
      const socket = () => (api as unknown as { socket?: { client?: { readyState: number } } }).socket?.client;
      while (socket()?.readyState === WebSocket.CONNECTING) await new Promise((r) => setTimeout(r, 5));
      api.destroy();
    },
  };
}

/** @stable-canvas/comfyui-client in WebSocket mode: Client.enqueue. */
async function stableCanvas(hostPort: string): Promise<Driver> {
  const client = new Client({ api_host: hostPort, WebSocket, clientId: `sc${Math.random().toString(16).slice(2)}` });
  await client.connect({ websocket: { enabled: true }, polling: { enabled: false } });
  return {
    run: async (workflow, _outNode, opts = {}) => {
      let progress = 0;
      let previews = 0;
      const offPreview = client.on('b_preview', () => previews++);
      let interrupted: ((r: RunResult) => void) | null = null;
      const onInterrupted = new Promise<RunResult>((resolve) => (interrupted = resolve));
      const offInterrupted = client.on('execution_interrupted', (data) => interrupted?.({ outcome: 'interrupted', progress, detail: data as unknown as Record<string, unknown> }));
      // Client.enqueue rejects with a message only; ComfyUI's error data is on the socket event.
      let errorData: Record<string, unknown> | undefined;
      const offError = client.on('execution_error', (data) => (errorData = data as unknown as Record<string, unknown>));
      try {
        const run = client
          .enqueue(workflow as Record<string, unknown>, {
            disable_random_seed: true,
            progress: () => {
              progress++;
              if (opts.interruptOnFirstProgress && progress === 1) void client.interrupt();
            },
          })
          .then(async (out): Promise<RunResult> => {
            // Previews arrive as buffers; the saved output is the /view URL.
            const img = (out.images as Array<{ type: string; data: unknown }>).find((i) => i.type === 'url');
            const bytes = img ? new Uint8Array(await (await fetch(String(img.data))).arrayBuffer()) : undefined;
            return { outcome: 'success', progress, previews, ...(bytes ? { bytes } : {}), promptId: out.prompt_id };
          })
          .catch((err: unknown): RunResult => {
            const e = err as { name?: string; status?: number; json?: unknown; data?: unknown; cause?: unknown };
            if (typeof e.status === 'number' && e.status >= 400) return { outcome: 'validation_error', progress, detail: e.json as Record<string, unknown> };
            const data = errorData ?? ((e.data ?? e.cause) as Record<string, unknown> | undefined);
            return { outcome: data?.exception_type !== undefined ? 'execution_error' : 'failed', progress, ...(data ? { detail: data } : {}), why: `${e.name}: ${String((err as Error).message)}` };
          });
        return await Promise.race([run, onInterrupted]);
      } finally {
        offInterrupted();
        offError();
        offPreview();
      }
    },
    upload: async (name, data) => {
      const form = new FormData();
      form.set('image', new Blob([data], { type: 'image/png' }), name);
      form.set('overwrite', 'true');
      const res = await client.fetchApi('/upload/image', { method: 'POST', body: form });
      return ((await res.json()) as { name: string }).name;
    },
    close: async () => {
      // Closing a socket that is still connecting (a reconnect after a crash) raises in ws; let it open first.
      while (client.socket?.readyState === WebSocket.CONNECTING) await new Promise((r) => setTimeout(r, 5));
      client.close();
    },
  };
}

/** One path to a simulator: directly, or through comfyguard. */
interface Path {
  sim: Simulator;
  guard: Guard | null;
  /** Base URL for @saintno/comfyui-sdk. */
  saintnoBase: string;
  /** host:port for @stable-canvas/comfyui-client (root of the host). */
  stableCanvasHost: string;
  close(): Promise<void>;
}

async function directPath(): Promise<Path> {
  const sim = await startSimulator({ port: 0, stepMs: 5, name: 'direct', previews: true, crashDowntimeMs: 50 });
  const host = new URL(sim.url).host;
  return { sim, guard: null, saintnoBase: sim.url, stableCanvasHost: host, close: () => sim.close() };
}

async function guardedPath(): Promise<Path> {
  const sim = await startSimulator({ port: 0, stepMs: 5, name: 'sim-0', previews: true, crashDowntimeMs: 50 });
  const uploads = new UploadStore();
  let guard: Guard | null = null;
  let service: RunningService | null = null;
  try {
    guard = await createGuard({
      servers: [{ url: sim.url, name: sim.name }],
      store: 'memory:',
      retry: { baseMs: 20, capMs: 200 },
      stallTimeoutMs: 10_000,
      pollIntervalMs: 200,
      unreachableGraceMs: 500,
      healthTtlMs: 200,
      cleanupIntervalMs: 0,
      progressThrottleMs: 0,
      prepareAttempt: async (c) => {
        await uploads.deliver(c);
      },
    });
    service = await startService({ guard, comfyUploads: uploads, comfyPort: 0 });
    const g = guard;
    const s = service;
    return {
      sim,
      guard: g,
      saintnoBase: `${s.url}/comfy`,
      stableCanvasHost: new URL(s.comfyUrl!).host,
      close: async () => {
        await s.close();
        await g.close();
        await sim.close();
      },
    };
  } catch (err) {
    await service?.close();
    await guard?.close();
    await sim.close();
    throw err;
  }
}

/** Arms a fault for the next prompt only: it is lifted as soon as comfyguard sees an attempt fail. */
function faultOnce(path: Path, spec: string): void {
  path.sim.setFaults(spec);
  const off = path.guard?.onEvent((e) => {
    if (e.type === 'attempt_settled' && e.outcome !== 'completed') {
      path.sim.setFaults('');
      off?.();
    }
  });
}

/**
 * Resolves once the simulator crashed, came back and holds no trace of any prompt: what a client
 * talking to it directly is left with (stable-canvas would wait for its 5-minute timeout).
 */
async function lostToCrash(sim: Simulator): Promise<RunResult> {
  for (;;) {
    await new Promise((r) => setImmediate(r));
    if ((sim.stats().faults.crash ?? 0) < 1) continue;
    const answers = await Promise.all(['/queue', '/history'].map((p) => fetch(`${sim.url}${p}`).then((r) => (r.ok ? r.json() : null), () => null)));
    const [queue, history] = answers as [{ queue_running: unknown[]; queue_pending: unknown[] } | null, Record<string, unknown> | null];
    if (queue && history && queue.queue_running.length === 0 && queue.queue_pending.length === 0 && Object.keys(history).length === 0) return { outcome: 'failed', progress: 0, why: 'the server crashed and lost the prompt' };
  }
}

const table: Array<{ client: string; path: string; case: string; outcome: string }> = [];

const CLIENTS = [
  { name: '@saintno/comfyui-sdk', make: (p: Path) => saintno(p.saintnoBase) },
  { name: '@stable-canvas/comfyui-client', make: (p: Path) => stableCanvas(p.stableCanvasHost) },
] as const;
const PATHS = [
  { name: 'direct', start: directPath },
  { name: 'comfyguard', start: guardedPath },
] as const;

afterAll(() => {
  // The closing note's table: one row per client, case and path.
  console.table(table);
});

describe.each(CLIENTS)('$name, unchanged', (client) => {
  const answers: Record<string, Record<string, RunResult>> = { direct: {}, comfyguard: {} };

  describe.each(PATHS)('against $name', (pathDef) => {
    const record = (c: string, r: RunResult) => {
      answers[pathDef.name]![c] = r;
      table.push({ client: client.name, path: pathDef.name, case: c, outcome: `${r.outcome} (${r.progress} progress${r.previews ? `, ${r.previews} previews` : ''})${r.why && r.outcome === 'failed' ? ` ${r.why}` : ''}` });
    };

    const withDriver = async (fn: (d: Driver, p: Path) => Promise<void>) => {
      const p = await pathDef.start();
      const d = await client.make(p);
      try {
        await fn(d, p);
      } finally {
        await d.close();
        await p.close();
      }
    };

    it('runs a workflow with a progress event per sampler step and returns the output image bytes', async () => {
      await withDriver(async (d) => {
        const r = await d.run(txt2img(), '9');
        record('success', r);
        expect(r.outcome).toBe('success');
        expect(r.progress).toBeGreaterThanOrEqual(STEPS);
        // The sampler's previews arrive as type 1 frames (neither client announces preview metadata).
        expect(r.previews).toBeGreaterThan(0);
        expect(pngInfo(r.bytes!)).toMatchObject({ width: 64, height: 64 });
      });
    });

    it('gets ComfyUI\'s 400 for a prompt that fails validation', async () => {
      await withDriver(async (d) => {
        const r = await d.run(txt2img({ steps: 0 }), '9');
        record('validation error', r);
        expect(r.outcome).toBe('validation_error');
        expect(r.detail).toMatchObject({ error: { type: 'prompt_outputs_failed_validation' }, node_errors: { '3': { errors: [{ type: 'value_smaller_than_min' }] } } });
        if (pathDef.name === 'comfyguard') expect(r.detail).toEqual(answers.direct!['validation error']?.detail);
      });
    });

    it('gets ComfyUI\'s own execution_error for a node that raises', async () => {
      await withDriver(async (d) => {
        const r = await d.run(failing(), '9');
        record('execution error', r);
        expect(r.outcome).toBe('execution_error');
        expect(r.detail).toMatchObject({ exception_type: 'IndexError', node_id: '10', node_type: 'ImageToMask' });
        expect((r.detail!.traceback as string[]).length).toBeGreaterThan(0);
        if (pathDef.name === 'comfyguard') {
          const direct = answers.direct!['execution error']?.detail;
          expect(r.detail!.exception_message).toBe(direct?.exception_message);
          expect(r.detail!.current_inputs).toEqual(direct?.current_inputs);
        }
      });
    });

    it('interrupts a running prompt', async () => {
      await withDriver(async (d) => {
        const r = await d.run(txt2img({ steps: 400 }), '9', { interruptOnFirstProgress: true });
        record('interrupt', r);
        expect(r.outcome).toBe('interrupted');
      });
    });

    it('uploads an image that LoadImage then reads', async () => {
      await withDriver(async (d) => {
        const name = await d.upload(`up-${client.name.length}.png`, solidPng(16, 12, [10, 200, 30]));
        const r = await d.run(loadsImage(name), '9');
        record('upload + LoadImage', r);
        expect(r.outcome).toBe('success');
        expect(pngInfo(r.bytes!)).toMatchObject({ width: 16, height: 12 });
      });
    });

    it('runs a prompt that hits an out-of-memory error (through comfyguard: recovered, success)', async () => {
      await withDriver(async (d, p) => {
        faultOnce(p, 'oom=1');
        const r = await d.run(txt2img(), '9');
        record('OOM', r);
        if (pathDef.name === 'direct') {
          expect(r.outcome).toBe('execution_error');
          expect(String(r.detail?.exception_type)).toMatch(/OutOfMemory/);
        } else {
          expect(r.outcome).toBe('success');
          expect(pngInfo(r.bytes!)).toBeDefined();
        }
      });
    });

    it('runs a prompt during which the server crashes (through comfyguard: recovered, success)', async () => {
      await withDriver(async (d, p) => {
        faultOnce(p, 'crash=1');
        const run = d.run(txt2img(), '9');
        const r = pathDef.name === 'direct' ? await Promise.race([run, lostToCrash(p.sim)]) : await run;
        record('server crash', r);
        if (pathDef.name === 'direct') expect(r.outcome).not.toBe('success');
        else {
          expect(r.outcome).toBe('success');
          expect(pngInfo(r.bytes!)).toMatchObject({ width: 64, height: 64 });
        }
      });
    });
  });
});
