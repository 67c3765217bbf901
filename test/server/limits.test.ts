/**
 * Bounded request handling: slow clients cut off, a connection cap, body depth and workflow size
 * limits, Fastify's and Node's own errors in the one error shape, 5xx logged with their request id,
 * and inputs that must not leak (webhook credentials, server URL credentials, tokens in messages).
 */
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startService } from '../../src/server/index.js';
import { FakeGuard } from './fake-guard.js';
import { listen, tinyWorkflow, waitFor, type TestServer } from './helpers.js';
import { raw } from './http-raw.js';

let guard: FakeGuard;
let srv: TestServer;

beforeAll(async () => {
  guard = await new FakeGuard().init();
  srv = await listen({ guard, dashboard: false, maxWorkflowNodes: 50, maxBodyDepth: 20 });
});

afterAll(async () => {
  await srv?.close();
  await guard?.close();
});

const post = (path: string, body: string, headers: Record<string, string> = {}) => raw(srv.url, path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });

/** Opens a socket and sends the start of a request that never ends (slowloris). */
function slowClient(url: string): Promise<{ socket: Socket; received: () => string; closed: () => boolean }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    let data = '';
    let closed = false;
    const socket = connect(Number(u.port), u.hostname, () => {
      socket.write(`GET /api/jobs HTTP/1.1\r\nHost: ${u.host}\r\nX-Slow: a`);
      resolve({ socket, received: () => data, closed: () => closed });
    });
    socket.on('data', (c: Buffer) => (data += String(c)));
    socket.on('close', () => (closed = true));
    socket.on('error', () => undefined);
    socket.once('error', reject);
  });
}

describe('slow and numerous connections', () => {
  const opened: Socket[] = [];
  afterEach(() => {
    for (const s of opened.splice(0)) s.destroy();
  });

  it('closes every connection that does not finish its headers in time, with a 408 in the error shape', async () => {
    const slow = await listen({ guard, dashboard: false, headersTimeoutMs: 300, requestTimeoutMs: 600 });
    try {
      const clients = await Promise.all(Array.from({ length: 20 }, () => slowClient(slow.url)));
      opened.push(...clients.map((c) => c.socket));
      await waitFor(() => clients.every((c) => c.closed()), 'the server to close every slow connection');
      const answer = clients[0]!.received();
      expect(answer).toMatch(/^HTTP\/1\.1 408/);
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({ error: { code: 'REQUEST_TIMEOUT', message: 'the request took too long to arrive' } });
      // A prompt client is still served.
      expect((await raw(slow.url, '/api/jobs')).status).toBe(200);
    } finally {
      await slow.close();
    }
  });

  it('refuses connections beyond the cap and serves again once they are gone', async () => {
    const capped = await listen({ guard, dashboard: false, maxConnections: 4 });
    try {
      const clients = await Promise.all(Array.from({ length: 4 }, () => slowClient(capped.url)));
      opened.push(...clients.map((c) => c.socket));
      const extra = await slowClient(capped.url);
      opened.push(extra.socket);
      await waitFor(() => extra.closed(), 'the connection over the cap to be closed');
      expect(clients.some((c) => c.closed())).toBe(false);
      for (const c of clients) c.socket.destroy();
      await waitFor(async () => (await raw(capped.url, '/api/jobs')).status === 200, 'a request once the slots are free');
    } finally {
      await capped.close();
    }
  });
});

describe('body and workflow bounds', () => {
  it('answers 413 WORKFLOW_TOO_LARGE for a workflow with more nodes than the limit, on /api/jobs and /comfy/prompt', async () => {
    const big: Record<string, unknown> = {};
    for (let i = 0; i < 51; i++) big[String(i)] = { class_type: 'EmptyImage', inputs: {} };
    const api = await post('/api/jobs', JSON.stringify({ workflow: big }));
    expect(api.status).toBe(413);
    expect(api.json()).toMatchObject({ error: { code: 'WORKFLOW_TOO_LARGE', field: 'workflow' } });
    const fallback = await post('/api/jobs', JSON.stringify({ workflow: tinyWorkflow(), options: { fallbackWorkflows: [big] } }));
    expect(fallback.json()).toMatchObject({ error: { code: 'WORKFLOW_TOO_LARGE', field: 'options.fallbackWorkflows[0]' } });
    const comfy = await post('/comfy/prompt', JSON.stringify({ prompt: big }));
    expect(comfy.status).toBe(413);
    expect(comfy.json()).toMatchObject({ error: { code: 'WORKFLOW_TOO_LARGE' } });
  });

  it('answers 400 BODY_TOO_DEEP for 5,000-deep nesting, without a stack overflow', async () => {
    const deep = `{"workflow":${'['.repeat(5_000)}${']'.repeat(5_000)}}`;
    for (const path of ['/api/jobs', '/comfy/prompt']) {
      const res = await post(path, deep);
      expect(res.status, path).toBe(400);
      expect(JSON.stringify(res.json())).not.toMatch(/call stack/i);
      expect(res.json()).toMatchObject({ error: { code: 'BODY_TOO_DEEP' } });
    }
    // Brackets inside strings are text, not nesting.
    const ok = await post('/api/jobs', JSON.stringify({ workflow: { '1': { class_type: 'EmptyImage', inputs: { text: '['.repeat(500) } } } }));
    expect(ok.status).toBe(202);
  });

  it('names a __proto__ key instead of calling the body invalid JSON', async () => {
    const res = await post('/api/jobs', '{"workflow":{"1":{"class_type":"A","inputs":{}}},"__proto__":{"x":1}}');
    expect(res.status).toBe(400);
    expect(res.json()).toMatchObject({ error: { code: 'FORBIDDEN_KEY' } });
  });
});

describe('Fastify and Node errors in the one shape', () => {
  it('answers bad percent-encoding, a 150-character id, oversized headers and unknown methods as {error:{code,message}}', async () => {
    const badUrl = await raw(srv.url, '/api/jobs/%E0%A4%A');
    expect(badUrl.status).toBe(400);
    expect(badUrl.json()).toMatchObject({ error: { code: 'VALIDATION_ERROR', message: expect.any(String) } });
    const longId = await raw(srv.url, `/api/jobs/${'a'.repeat(150)}`);
    expect(longId.status).toBe(404);
    expect(longId.json()).toMatchObject({ error: { code: 'NOT_FOUND', field: 'id' } });
    const tooLongId = await raw(srv.url, `/api/jobs/${'a'.repeat(201)}`);
    expect(tooLongId.json()).toMatchObject({ error: { code: 'VALIDATION_ERROR', field: 'id' } });
    const bigHeaders = await raw(srv.url, '/api/jobs', { headers: { 'x-big': 'x'.repeat(20_000) } });
    expect(bigHeaders.status).toBe(431);
    expect(bigHeaders.json()).toEqual({ error: { code: 'HEADERS_TOO_LARGE', message: 'the request headers are too large' } });
    const method = await raw(srv.url, '/api/jobs', { method: 'PROPFIND' });
    expect(method.status).toBeGreaterThanOrEqual(400);
    expect(method.json()).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
  });

  it('turns an upstream 400 on /comfy/view into a 400, not a 502', async () => {
    const real = guard.fetchOutput.bind(guard);
    guard.fetchOutput = async () => {
      throw Object.assign(new Error('HTTP 400 from http://127.0.0.1:18401/view'), { name: 'ComfyRequestError', kind: 'http', status: 400, server: '127.0.0.1:18401' });
    };
    try {
      const res = await raw(srv.url, '/comfy/view?filename=a.png&type=output');
      expect(res.status).toBe(400);
      expect(res.body).not.toContain('18401');
    } finally {
      guard.fetchOutput = real;
    }
  });
});

describe('5xx answers', () => {
  it('logs each 5xx with the request id the client is told', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of String(chunk).split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    const broken = await new FakeGuard().init();
    broken.stats = async () => {
      throw new Error('boom at /opt/comfyguard/secret.ts with sk-abcdefghijklmnopqrstuvwxyz123456');
    };
    const s = await listen({ guard: broken, dashboard: false, logger: pino({ level: 'info' }, sink) });
    try {
      const res = await raw(s.url, '/api/stats');
      expect(res.status).toBe(500);
      const body = res.json() as { error: { code: string; message: string } };
      expect(body.error.code).toBe('INTERNAL');
      expect(body.error.message).not.toMatch(/opt|sk-/);
      const id = res.headers['x-request-id'];
      expect(body.error.message).toContain(`request id ${String(id)}`);
      const logged = lines.find((l) => l.msg === 'request failed');
      expect(logged).toMatchObject({ level: 50, reqId: id });
    } finally {
      await s.close();
      await broken.close();
    }
  });
});

describe('what must not leak', () => {
  it('refuses webhook URLs with credentials or internal targets at submit, naming the field', async () => {
    for (const url of ['http://user:pw@hooks.example.com/x', 'http://169.254.169.254/latest', 'http://127.0.0.1:9/x', 'http://10.1.2.3/x', 'http://[::ffff:127.0.0.1]/']) {
      const res = await post('/api/jobs', JSON.stringify({ workflow: tinyWorkflow(), options: { webhookUrl: url } }));
      expect(res.status, url).toBe(400);
      expect(res.json(), url).toMatchObject({ error: { code: 'VALIDATION_ERROR', field: 'options.webhookUrl' } });
      expect(res.body, url).not.toContain('pw@');
    }
    const local = await listen({ guard, dashboard: false, webhookTargets: { allowLoopback: true } });
    try {
      const res = await raw(local.url, '/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workflow: tinyWorkflow(), options: { webhookUrl: 'http://127.0.0.1:9/x' } }) });
      expect(res.status).toBe(202);
    } finally {
      await local.close();
    }
  });

  it('shows server URLs without credentials and scrubs their last error', async () => {
    const g = await new FakeGuard().init();
    g.servers_ = [{ ...g.servers_[0]!, url: 'http://admin:hunter2@gpu.example.com:8188', lastError: 'connect ECONNREFUSED 10.0.0.5:8188 token=abcd1234efgh' }];
    const s = await listen({ guard: g, dashboard: false });
    try {
      const res = await raw(s.url, '/api/health/comfyui');
      expect(res.body).not.toMatch(/hunter2|admin|10\.0\.0\.5|abcd1234/);
      expect(res.json()).toMatchObject({ servers: [{ url: 'http://gpu.example.com:8188' }] });
    } finally {
      await s.close();
      await g.close();
    }
  });

  it('scrubs tokens and paths that recovery text quoted into a job\'s error and history', async () => {
    const { id } = await guard.submit(tinyWorkflow());
    await guard.advance(id, 'failed', {
      error: { code: 'COMFYUI_MODEL_MISSING', category: 'recoverable', retryable: true, message: 'model missing; tried C:\\Users\\bob\\models\\x.safetensors', hint: 'fallback sk-abcdefghijklmnopqrstuvwxyz0123 failed at /opt/models/a.ckpt' },
    });
    const res = await raw(srv.url, `/api/jobs/${id}`);
    expect(res.status).toBe(200);
    expect(res.body).not.toMatch(/Users|bob|sk-abc|\/opt\//);
  });

  it('refuses an API key shorter than 16 characters', async () => {
    await expect(startService({ guard, apiKey: 'short-key' })).rejects.toMatchObject({ code: 'SERVICE_CONFIG_ERROR' });
  });
});
