import { afterEach, describe, expect, it, vi } from 'vitest';
import { ComfyClient } from '../../src/comfy/client.js';
import { ComfyRequestError } from '../../src/comfy/errors.js';
import type { ApiWorkflow, NodeErrorEntry } from '../../src/comfy/types.js';
import { systemClock } from '../../src/util/clock.js';
import {
  httpExchanges,
  loadCapture,
  startCaptureServer,
  type CaptureServer,
  type HttpCaptureEvent,
} from '../support/capture-server.js';
import { closedPort, httpServer, rawServer, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  vi.useRealTimers();
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function serve(...args: Parameters<typeof startCaptureServer>): Promise<CaptureServer> {
  const server = await startCaptureServer(...args);
  cleanups.push(() => server.close());
  return server;
}

function clientFor(url: string, extra: Partial<ConstructorParameters<typeof ComfyClient>[0]> = {}): ComfyClient {
  const client = new ComfyClient({ baseUrl: url, name: 'test-server', ...extra });
  cleanups.push(() => client.close());
  return client;
}

/** Runs `fn` and returns what it threw, failing the test if it did not throw a ComfyRequestError. */
async function failure(fn: () => Promise<unknown>): Promise<ComfyRequestError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ComfyRequestError);
    return err as ComfyRequestError;
  }
  throw new Error('expected the call to fail');
}

function only(events: HttpCaptureEvent[], what: string): HttpCaptureEvent {
  const [e] = events;
  if (!e || events.length !== 1) throw new Error(`expected exactly one recorded exchange for ${what}, found ${events.length}`);
  return e;
}

/** The recorded `POST /prompt` body as submitPrompt arguments. */
function submitArgs(e: HttpCaptureEvent): [ApiWorkflow, { clientId?: string; promptId?: string; partialExecutionTargets?: string[] }] {
  const body = e.request_body as { prompt: ApiWorkflow; client_id?: string; prompt_id?: string; partial_execution_targets?: string[] };
  const opts: { clientId?: string; promptId?: string; partialExecutionTargets?: string[] } = {};
  if (body.client_id !== undefined) opts.clientId = body.client_id;
  if (body.prompt_id !== undefined) opts.promptId = body.prompt_id;
  if (body.partial_execution_targets !== undefined) opts.partialExecutionTargets = body.partial_execution_targets;
  return [body.prompt, opts];
}

describe('ComfyClient REST calls replayed from captures', () => {
  it('submits a prompt with client_id and returns the recorded prompt_id, number and empty node_errors', async () => {
    const cap = loadCapture('ok_simple');
    const post = only(httpExchanges(cap, { method: 'POST', path: '/prompt' }), 'POST /prompt');
    const server = await serve(cap);
    const client = clientFor(server.url);
    const [wf, opts] = submitArgs(post);
    const res = await client.submitPrompt(wf, opts);
    expect(res).toEqual(post.response_body);
    expect(server.requests[0]?.json).toEqual(post.request_body);
    expect(server.requests[0]?.headers['content-type']).toBe('application/json');
  });

  it('sends a client-chosen prompt_id, extra_data, number and front exactly as given', async () => {
    const cap = loadCapture('client_prompt_id');
    const server = await serve(cap);
    const client = clientFor(server.url);
    const posts = httpExchanges(cap, { method: 'POST', path: '/prompt' });
    const withId = posts.find((p) => typeof (p.request_body as { prompt_id?: unknown }).prompt_id === 'string');
    if (!withId) throw new Error('capture has no POST with a string prompt_id');
    const [wf, opts] = submitArgs(withId);
    const res = await client.submitPrompt(wf, opts);
    expect(res.prompt_id).toBe(opts.promptId);
    expect(server.requests[0]?.json).toEqual(withId.request_body);

    await client.submitPrompt(wf, { clientId: 'c1', promptId: 'p1', extraData: { extra_pnginfo: { a: 1 } }, number: 1000, front: true });
    expect(server.requests[1]?.json).toEqual({ prompt: wf, client_id: 'c1', prompt_id: 'p1', extra_data: { extra_pnginfo: { a: 1 } }, number: 1000, front: true });
  });

  it('returns a 200 whose node_errors are non-empty instead of throwing (partial acceptance)', async () => {
    const cap = loadCapture('partial_targets');
    const partial = httpExchanges(cap, { method: 'POST', path: '/prompt', status: 200 }).find(
      (e) => Object.keys((e.response_body as { node_errors: object }).node_errors).length > 0,
    );
    if (!partial) throw new Error('capture has no partial acceptance');
    const server = await serve([partial]);
    const client = clientFor(server.url);
    const res = await client.submitPrompt(...submitArgs(partial));
    expect(res).toEqual(partial.response_body);
    expect(Object.keys(res.node_errors)).toEqual(['5']);
    expect(res.node_errors['5']?.errors[0]?.type).toBe('value_smaller_than_min');
  });

  it('sends partial_execution_targets when asked', async () => {
    const cap = loadCapture('partial_targets');
    const targeted = httpExchanges(cap, { method: 'POST', path: '/prompt', status: 200 }).find(
      (e) => Array.isArray((e.request_body as { partial_execution_targets?: unknown }).partial_execution_targets),
    );
    if (!targeted) throw new Error('capture has no targeted POST');
    const server = await serve([targeted]);
    const client = clientFor(server.url);
    const [wf, opts] = submitArgs(targeted);
    expect(opts.partialExecutionTargets).toBeDefined();
    await client.submitPrompt(wf, opts);
    expect(server.requests[0]?.json).toEqual(targeted.request_body);
  });

  it('reads the queue with running and pending items', async () => {
    const cap = loadCapture('queue_multi');
    const busy = httpExchanges(cap, { method: 'GET', path: '/queue' }).find(
      (e) => (e.response_body as { queue_pending: unknown[] }).queue_pending.length > 0,
    );
    if (!busy) throw new Error('capture has no busy queue');
    const server = await serve([busy]);
    const client = clientFor(server.url);
    const q = await client.getQueue();
    expect(q).toEqual(busy.response_body);
    expect(q.queue_running).toHaveLength(1);
    const [number, promptId, graph, , outputs] = q.queue_running[0] ?? [];
    expect(typeof number).toBe('number');
    expect(typeof promptId).toBe('string');
    expect(Object.keys(graph ?? {}).length).toBeGreaterThan(0);
    expect(Array.isArray(outputs)).toBe(true);
  });

  it('deletes from and clears the queue with the recorded bodies and accepts the empty 200', async () => {
    const cap = loadCapture('queue_cancel_pending');
    const posts = httpExchanges(cap, { method: 'POST', path: '/queue' });
    const del = posts.find((p) => 'delete' in (p.request_body as object));
    const clear = posts.find((p) => 'clear' in (p.request_body as object));
    if (!del || !clear) throw new Error('capture lacks delete/clear');
    const server = await serve(posts);
    const client = clientFor(server.url);
    await client.deleteFromQueue((del.request_body as { delete: string[] }).delete);
    await client.clearQueue();
    expect(server.requests.map((r) => r.json)).toEqual([del.request_body, clear.request_body]);
    expect(server.requests.map((r) => r.answeredWith)).toEqual([del, clear]);
  });

  it('reads one history entry, and {} for an unknown id', async () => {
    const ok = loadCapture('ok_simple');
    const entry = only(httpExchanges(ok, { method: 'GET', path: /^\/history\// }), 'GET /history/{id}');
    const info = loadCapture('server_info');
    const unknown = only(httpExchanges(info, { method: 'GET', path: /^\/history\/0000/ }), 'unknown history');
    const server = await serve([entry, unknown]);
    const client = clientFor(server.url);
    const id = entry.path.slice('/history/'.length);
    const h = await client.getHistory(id);
    expect(h).toEqual(entry.response_body);
    expect(h[id]?.status?.messages.at(-1)?.[0]).toBe('execution_success');
    expect(await client.getHistory(unknown.path.slice('/history/'.length))).toEqual({});
  });

  it('reads all history and the last N with max_items', async () => {
    const cap = loadCapture('history_errored');
    const lists = httpExchanges(cap, { method: 'GET', path: '/history' });
    const limited = lists.find((e) => e.path.includes('max_items='));
    const all = lists.find((e) => !e.path.includes('?'));
    if (!limited || !all) throw new Error('capture lacks /history lists');
    const server = await serve(lists);
    const client = clientFor(server.url);
    const max = Number(new URL(limited.path, 'http://x').searchParams.get('max_items'));
    expect(await client.getAllHistory({ maxItems: max })).toEqual(limited.response_body);
    expect(await client.getAllHistory()).toEqual(all.response_body);
    expect(server.requests.map((r) => r.path)).toEqual([`/history?max_items=${max}`, '/history']);
  });

  it('deletes and clears history (synthetic: the captures have no POST /history)', async () => {
    const empty = (body: unknown): HttpCaptureEvent => ({
      kind: 'http', t_ms: 0, method: 'POST', path: '/history', request_body: body, status: 200,
      response_content_type: 'application/octet-stream', response_body_length: 0, response_body_head_hex: '',
    });
    const server = await serve([empty({ delete: ['a', 'b'] }), empty({ clear: true })]);
    const client = clientFor(server.url);
    await client.deleteHistory(['a', 'b']);
    await client.clearHistory();
    expect(server.requests.map((r) => r.json)).toEqual([{ delete: ['a', 'b'] }, { clear: true }]);
  });

  it('interrupts globally with {} and per prompt with {prompt_id}', async () => {
    const cap = loadCapture('interrupted');
    const posts = httpExchanges(cap, { method: 'POST', path: '/interrupt' });
    const scoped = posts.find((p) => 'prompt_id' in (p.request_body as object));
    if (!scoped) throw new Error('capture has no scoped interrupt');
    const server = await serve(posts);
    const client = clientFor(server.url);
    await client.interrupt();
    const id = (scoped.request_body as { prompt_id: string }).prompt_id;
    await client.interrupt(id);
    expect(server.requests.map((r) => r.json)).toEqual([{}, { prompt_id: id }]);
  });

  it('frees memory with both flags (synthetic)', async () => {
    const server = await serve([
      { kind: 'http', t_ms: 0, method: 'POST', path: '/free', status: 200, response_content_type: 'application/octet-stream', response_body_length: 0 },
    ]);
    const client = clientFor(server.url);
    await client.free({ unloadModels: true });
    await client.free({ unloadModels: true, freeMemory: true });
    expect(server.requests.map((r) => r.json)).toEqual([
      { unload_models: true, free_memory: false },
      { unload_models: true, free_memory: true },
    ]);
  });

  it('reads system stats, the queue counter and the feature list of an idle server', async () => {
    const cap = loadCapture('server_info');
    const server = await serve(cap);
    const client = clientFor(server.url);
    const stats = await client.getSystemStats();
    expect(stats).toEqual(only(httpExchanges(cap, { path: '/system_stats' }), 'stats').response_body);
    expect(stats.system.comfyui_version).toBe('0.3.64');
    expect(stats.devices[0]?.index).toBeNull();
    expect(await client.getPromptStatus()).toEqual({ exec_info: { queue_remaining: 0 } });
    expect(await client.getFeatures()).toEqual({ supports_preview_metadata: true, max_upload_size: 104857600 });
  });

  it('reads node definitions per class ({} for an unknown class) and all of them', async () => {
    const cap = loadCapture('server_info');
    const perClass = httpExchanges(cap, { method: 'GET', path: /^\/object_info\// });
    const all: HttpCaptureEvent = {
      kind: 'http', t_ms: 0, method: 'GET', path: '/object_info', status: 200, response_content_type: 'application/json; charset=utf-8',
      response_body: Object.assign({}, ...perClass.map((e) => e.response_body as object)),
    };
    const server = await serve([...perClass, all]);
    const client = clientFor(server.url);
    const save = await client.getNodeInfo('SaveImage');
    expect(save['SaveImage']?.output_node).toBe(true);
    expect(save).toEqual(perClass.find((e) => e.path.endsWith('/SaveImage'))?.response_body);
    expect(await client.getNodeInfo('NonExistentNode')).toEqual({});
    const everything = await client.getObjectInfo();
    expect(Object.keys(everything).sort()).toEqual(['CheckpointLoaderSimple', 'EmptyImage', 'SaveImage']);
    expect(everything['EmptyImage']?.output_node).toBe(false);
  });

  it('lists model folders and files; an unknown folder is an HTTP 404 error (synthetic)', async () => {
    const json = (path: string, body: unknown): HttpCaptureEvent => ({
      kind: 'http', t_ms: 0, method: 'GET', path, status: 200, response_content_type: 'application/json; charset=utf-8', response_body: body,
    });
    const server = await serve([
      json('/models', ['checkpoints', 'loras', 'vae']),
      json('/models/checkpoints', ['SDXL\\sd_xl_base_1.0.safetensors', 'v1-5.safetensors']),
      { kind: 'http', t_ms: 0, method: 'GET', path: '/models/nope', status: 404, response_content_type: 'application/octet-stream', response_body_length: 0 },
    ]);
    const client = clientFor(server.url);
    expect(await client.getModelFolders()).toEqual(['checkpoints', 'loras', 'vae']);
    expect(await client.getModels('checkpoints')).toEqual(['SDXL\\sd_xl_base_1.0.safetensors', 'v1-5.safetensors']);
    const err = await failure(() => client.getModels('nope'));
    expect(err).toMatchObject({ kind: 'http', status: 404, method: 'GET', path: '/models/nope', server: 'test-server' });
  });

  it('downloads an output with /view and keeps content type and bytes', async () => {
    const cap = loadCapture('ok_simple');
    const view = only(httpExchanges(cap, { method: 'GET', path: '/view' }), 'view');
    const server = await serve([view]);
    const client = clientFor(server.url);
    const q = new URL(view.path, 'http://x').searchParams;
    const file = await client.view({ filename: q.get('filename') ?? '', subfolder: q.get('subfolder') ?? '', type: q.get('type') ?? '' });
    expect(file.contentType).toBe('image/png');
    expect(file.data.byteLength).toBe(view.response_body_length);
    expect(Buffer.from(file.data.subarray(0, 8)).toString('hex')).toBe(view.response_body_head_hex);
  });

  it('uploads an image as multipart/form-data and returns the name the server chose (synthetic)', async () => {
    const server = await serve([
      { kind: 'http', t_ms: 0, method: 'POST', path: '/upload/image', status: 200, response_content_type: 'application/json; charset=utf-8', response_body: { name: 'in (1).png', subfolder: 'sub', type: 'input' } },
    ]);
    const client = clientFor(server.url);
    const png = Buffer.from('89504e470d0a1a0a00000000', 'hex');
    const res = await client.uploadImage({ name: 'in.png', data: png, contentType: 'image/png' }, { subfolder: 'sub', overwrite: true });
    expect(res).toEqual({ name: 'in (1).png', subfolder: 'sub', type: 'input' });
    const req = server.requests[0];
    const ct = String(req?.headers['content-type']);
    expect(ct).toMatch(/^multipart\/form-data; boundary=/);
    const body = req?.body.toString('latin1') ?? '';
    expect(body).toContain('Content-Disposition: form-data; name="image"; filename="in.png"\r\nContent-Type: image/png\r\n\r\n' + png.toString('latin1') + '\r\n');
    expect(body).toContain('name="subfolder"\r\n\r\nsub\r\n');
    expect(body).toContain('name="overwrite"\r\n\r\ntrue\r\n');
    expect(body).not.toContain('name="type"');
  });
});

describe('ComfyClient failures keep their evidence', () => {
  it('keeps the plain-text 500 body of a malformed request in bodyText', async () => {
    const cap = loadCapture('invalid_body');
    const fiveHundreds = httpExchanges(cap, { status: 500 });
    expect(fiveHundreds.length).toBe(3);
    const server = await serve(fiveHundreds);
    const client = clientFor(server.url);
    for (const recorded of fiveHundreds) {
      const err = await failure(() => client.submitPrompt({ '1': { class_type: 'EmptyImage', inputs: {} } }));
      expect(err.kind).toBe('http');
      expect(err.status).toBe(500);
      expect(err.bodyText).toBe(recorded.response_body_text);
      expect(err.bodyText).toBe('500 Internal Server Error\n\nServer got itself in trouble');
      expect(err.body).toBeUndefined();
      expect(err.validation).toBeUndefined();
      expect(err.headers?.['content-type']).toBe('text/plain; charset=utf-8');
      expect(err.message).toContain('HTTP 500 500 Internal Server Error');
    }
  });

  const validationFiles = ['invalid_body', 'invalid_missing_input', 'invalid_missing_node', 'invalid_no_outputs', 'invalid_out_of_range', 'invalid_value_not_in_list', 'partial_targets'];
  for (const name of validationFiles) {
    it(`parses every 400 validation body of ${name} node by node`, async () => {
      const cap = loadCapture(name);
      const fourHundreds = httpExchanges(cap, { method: 'POST', path: '/prompt', status: 400 });
      expect(fourHundreds.length).toBeGreaterThan(0);
      const server = await serve(fourHundreds);
      const client = clientFor(server.url);
      for (const recorded of fourHundreds) {
        const body = recorded.response_body as { error: { type: string; message: string; details: string }; node_errors: Record<string, NodeErrorEntry> };
        // The bodies that cannot be sent through submitPrompt (a JSON array, no prompt key) are replayed in order.
        const req = recorded.request_body as { prompt?: ApiWorkflow };
        const err = await failure(() =>
          req && typeof req === 'object' && 'prompt' in req && typeof req.prompt === 'object'
            ? client.submitPrompt(...submitArgs(recorded))
            : client.submitPrompt({}),
        );
        expect(err.kind).toBe('http');
        expect(err.status).toBe(400);
        expect(err.body).toEqual(body);
        const v = err.validation;
        expect(v?.type).toBe(body.error.type);
        expect(v?.message).toBe(body.error.message);
        expect(v?.details).toBe(body.error.details);
        expect(v?.nodeErrors).toEqual(
          Object.entries(body.node_errors).map(([nodeId, e]) => ({ nodeId, classType: e.class_type, dependentOutputs: e.dependent_outputs, errors: e.errors })),
        );
        expect(err.message).toContain(`HTTP 400 ${body.error.type}`);
      }
    });
  }

  it('reports a refused connection as transport ECONNREFUSED with the server, method and path', async () => {
    const port = await closedPort();
    const client = clientFor(`http://127.0.0.1:${port}`);
    const err = await failure(() => client.getQueue());
    expect(err).toMatchObject({ kind: 'transport', transportCode: 'ECONNREFUSED', server: 'test-server', method: 'GET', path: '/queue' });
    expect(err.cause).toBeDefined();
  });

  it('reports a connection reset (RST) as transport ECONNRESET', async () => {
    const server = await rawServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
    cleanups.push(server.close);
    const client = clientFor(server.url);
    const err = await failure(() => client.getSystemStats());
    expect(err.kind).toBe('transport');
    expect(err.transportCode).toBe('ECONNRESET');
    expect(err.cause).toBeDefined();
  });

  it('reports a socket closed (FIN) without an answer as transport UND_ERR_SOCKET, there being no system code', async () => {
    const server = await rawServer((socket) => socket.once('data', () => socket.destroy()));
    cleanups.push(server.close);
    const client = clientFor(server.url);
    const err = await failure(() => client.getPromptStatus());
    expect(err.kind).toBe('transport');
    expect(err.transportCode).toBe('UND_ERR_SOCKET');
    expect(err.message).toContain('other side closed');
  });

  it('times out against a server that never answers (tiny per-call timeout)', async () => {
    const server = await rawServer(() => undefined);
    cleanups.push(server.close);
    const client = clientFor(server.url);
    const err = await failure(() => client.getQueue({ timeoutMs: 20 }));
    expect(err).toMatchObject({ kind: 'timeout', timeoutMs: 20, path: '/queue' });
  });

  it('times out on the injected clock: nothing fails until the fake time passes the timeout', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const server = await rawServer(() => undefined);
    cleanups.push(server.close);
    const client = clientFor(server.url, { requestTimeoutMs: 60_000, clock: systemClock });
    let settled: ComfyRequestError | undefined;
    const p = client.getQueue().catch((e: unknown) => {
      settled = e as ComfyRequestError;
    });
    await waitFor(() => server.accepted() === 1, 'the request to reach the server');
    await vi.advanceTimersByTimeAsync(59_999);
    expect(settled).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(settled).toMatchObject({ kind: 'timeout', timeoutMs: 60_000 });
  });

  it('aborts on the caller signal, before and during the call', async () => {
    const server = await rawServer(() => undefined);
    cleanups.push(server.close);
    const client = clientFor(server.url);
    const pre = new AbortController();
    pre.abort(new Error('user cancelled'));
    const early = await failure(() => client.getQueue({ signal: pre.signal }));
    expect(early.kind).toBe('aborted');
    expect(server.accepted()).toBe(0);

    const ac = new AbortController();
    const p = failure(() => client.getQueue({ signal: ac.signal }));
    await waitFor(() => server.accepted() === 1, 'the request to reach the server');
    ac.abort(new Error('user cancelled'));
    const err = await p;
    expect(err.kind).toBe('aborted');
    expect((err.cause as Error).message).toBe('user cancelled');
  });

  it('close() aborts in-flight calls and refuses new ones', async () => {
    const server = await rawServer(() => undefined);
    cleanups.push(server.close);
    const client = new ComfyClient({ baseUrl: server.url });
    const p = failure(() => client.getQueue());
    await waitFor(() => server.accepted() === 1, 'the request to reach the server');
    await client.close();
    expect((await p).kind).toBe('aborted');
    expect((await failure(() => client.getQueue())).message).toContain('client is closed');
    await client.close();
  });

  it('rejects a 200 that is not JSON, or JSON of the wrong shape, as invalid_response with the body', async () => {
    const server = await httpServer((req, res) => {
      if (req.url === '/queue') res.writeHead(200, { 'content-type': 'text/html' }).end('<html>proxy login</html>');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ exec_info: { queue_remaining: 'many' } }));
    });
    cleanups.push(server.close);
    const client = clientFor(server.url);
    const html = await failure(() => client.getQueue());
    expect(html).toMatchObject({ kind: 'invalid_response', status: 200, bodyText: '<html>proxy login</html>' });
    const shape = await failure(() => client.getPromptStatus());
    expect(shape.kind).toBe('invalid_response');
    expect(shape.body).toEqual({ exec_info: { queue_remaining: 'many' } });
    expect(shape.message).toContain('exec_info.queue_remaining');
  });

  it('keeps a proxy error page (502 HTML) as text with its headers', async () => {
    const server = await httpServer((_req, res) => res.writeHead(502, { 'content-type': 'text/html', 'retry-after': '7' }).end('<h1>502 Bad Gateway</h1>'));
    cleanups.push(server.close);
    const client = clientFor(server.url);
    const err = await failure(() => client.getQueue());
    expect(err).toMatchObject({ kind: 'http', status: 502, bodyText: '<h1>502 Bad Gateway</h1>' });
    expect(err.headers?.['retry-after']).toBe('7');
  });
});

describe('ComfyClient request headers', () => {
  it('sends the per-server extra headers and never an Origin header', async () => {
    const server = await serve(loadCapture('server_info'), { extraHttp: httpExchanges(loadCapture('interrupted'), { path: '/interrupt' }) });
    const client = clientFor(server.url, { headers: { Authorization: 'Bearer t0k', Origin: 'http://evil.example', 'X-Pod': 'a' } });
    await client.getPromptStatus();
    await client.interrupt();
    expect(server.requests).toHaveLength(2);
    for (const r of server.requests) {
      expect(r.headers['authorization']).toBe('Bearer t0k');
      expect(r.headers['x-pod']).toBe('a');
      expect(r.headers['origin']).toBeUndefined();
    }
  });

  it('keeps the base URL path prefix (a proxy path, or ComfyUI\'s /api copies of every route)', async () => {
    const seen: string[] = [];
    const server = await httpServer((req, res) => {
      seen.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ exec_info: { queue_remaining: 3 } }));
    });
    cleanups.push(server.close);
    const client = clientFor(`${server.url}/pod-7/api/`);
    expect(await client.getPromptStatus()).toEqual({ exec_info: { queue_remaining: 3 } });
    expect(seen).toEqual(['/pod-7/api/prompt']);
    expect(client.baseUrl).toBe(`${server.url}/pod-7/api`);
  });

  it('rejects a base URL that is not http(s)', () => {
    expect(() => new ComfyClient({ baseUrl: 'ftp://x' })).toThrow(/http/);
    expect(() => new ComfyClient({ baseUrl: 'not a url' })).toThrow(/valid URL/);
  });
});
