/**
 * A hostile web page in the visitor's browser: cross-origin form posts and no-cors fetches,
 * DNS rebinding (a foreign Host), cross-origin WebSockets, framing, and script in output files.
 * All over real HTTP on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FakeGuard } from './fake-guard.js';
import { listen, tinyWorkflow, type TestServer } from './helpers.js';
import { raw } from './http-raw.js';

const EVIL = 'https://evil.example';

let guard: FakeGuard;
let srv: TestServer;
let configured: TestServer;

beforeAll(async () => {
  guard = await new FakeGuard().init();
  srv = await listen({ guard, dashboard: true });
  configured = await listen({ guard, dashboard: false, allowedHosts: ['comfy.example', '.corp.example'], allowedOrigins: ['https://app.example'] });
});

afterAll(async () => {
  await srv?.close();
  await configured?.close();
  await guard?.close();
});

const jobCount = async () => (await guard.store.query({ limit: 1000 })).jobs.length;
const formBody = `${JSON.stringify({ workflow: tinyWorkflow() }).slice(0, -1)},"x":"="}`;

describe('cross-site request forgery', () => {
  it('refuses a cross-origin HTML form post (enctype text/plain) and creates no job', async () => {
    const before = await jobCount();
    const res = await raw(srv.url, '/api/jobs', { method: 'POST', headers: { origin: EVIL, 'content-type': 'text/plain', 'sec-fetch-site': 'cross-site' }, body: formBody });
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ error: { code: 'ORIGIN_NOT_ALLOWED' } });
    expect(await jobCount()).toBe(before);
  });

  it('takes JSON on the API only from application/json, so a form cannot post it even without an Origin', async () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await raw(srv.url, '/api/jobs', { method: 'POST', headers: { 'content-type': type }, body: JSON.stringify({ workflow: tinyWorkflow() }) });
      expect(res.status, type).toBe(415);
      expect(res.json(), type).toMatchObject({ error: { code: 'UNSUPPORTED_MEDIA_TYPE' } });
    }
  });

  it('refuses a no-cors emergency stop, cancel and cleanup from another origin', async () => {
    const { id } = await guard.submit(tinyWorkflow());
    for (const [method, path] of [['POST', '/api/emergency-stop'], ['POST', `/api/jobs/${id}/cancel`], ['DELETE', '/api/jobs?olderThanHours=0']] as const) {
      const res = await raw(srv.url, path, { method, headers: { origin: EVIL } });
      expect(res.status, path).toBe(403);
    }
    expect(guard.emergencyStops).toBe(0);
    expect((await guard.get(id))?.status).toBe('queued');
  });

  it('refuses a cross-site request without an Origin when Fetch Metadata says so', async () => {
    const res = await raw(srv.url, '/api/emergency-stop', { method: 'POST', headers: { 'sec-fetch-site': 'cross-site' } });
    expect(res.status).toBe(403);
    expect(guard.emergencyStops).toBe(0);
  });

  it('accepts the service\'s own origin and a configured one', async () => {
    const own = await raw(srv.url, '/api/jobs', { method: 'POST', headers: { origin: srv.url, 'content-type': 'application/json' }, body: JSON.stringify({ workflow: tinyWorkflow() }) });
    expect(own.status).toBe(202);
    const app = await raw(configured.url, '/api/jobs', { method: 'POST', headers: { origin: 'https://app.example', 'content-type': 'application/json' }, body: JSON.stringify({ workflow: tinyWorkflow() }) });
    expect(app.status).toBe(202);
    const other = await raw(configured.url, '/api/jobs', { method: 'POST', headers: { origin: 'https://app.example.evil', 'content-type': 'application/json' }, body: JSON.stringify({ workflow: tinyWorkflow() }) });
    expect(other.status).toBe(403);
  });

  it('takes text/plain JSON on /comfy for ComfyUI clients, but not from another web page', async () => {
    const body = JSON.stringify({ prompt: tinyWorkflow(), client_id: 'sdk' });
    const sdk = await raw(srv.url, '/comfy/prompt', { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
    expect(sdk.status).toBe(200);
    const page = await raw(srv.url, '/comfy/prompt', { method: 'POST', headers: { 'content-type': 'text/plain', origin: EVIL }, body });
    expect(page.status).toBe(403);
    const clear = await raw(srv.url, '/comfy/queue', { method: 'POST', headers: { 'content-type': 'text/plain', origin: EVIL }, body: '{"clear":true}' });
    expect(clear.status).toBe(403);
    expect(clear.json()).toMatchObject({ error: { code: 'ORIGIN_NOT_ALLOWED' } });
  });
});

describe('DNS rebinding', () => {
  it('refuses a foreign Host, and answers loopback names, IP addresses and configured names', async () => {
    const port = new URL(srv.url).port;
    const foreign = await raw(srv.url, '/api/jobs', { headers: { host: `attacker.example:${port}` } });
    expect(foreign.status).toBe(403);
    expect(foreign.json()).toMatchObject({ error: { code: 'HOST_NOT_ALLOWED' } });
    expect(foreign.body).not.toContain('jobs');
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `app.localhost:${port}`]) {
      expect((await raw(srv.url, '/api/jobs', { headers: { host } })).status, host).toBe(200);
    }
    expect((await raw(srv.url, '/', { headers: { host: `attacker.example:${port}` } })).status).toBe(403);
    expect((await raw(configured.url, '/api/jobs', { headers: { host: 'comfy.example' } })).status).toBe(200);
    expect((await raw(configured.url, '/api/jobs', { headers: { host: 'gpu.corp.example:443' } })).status).toBe(200);
    expect((await raw(configured.url, '/api/jobs', { headers: { host: 'corp.example.attacker.example' } })).status).toBe(403);
  });
});

describe('WebSocket upgrades', () => {
  const open = (url: string, headers: Record<string, string> = {}) =>
    new Promise<{ opened: boolean; status?: number; body?: string }>((resolve) => {
      const ws = new WebSocket(url.replace('http', 'ws') + '/comfy/ws?clientId=w1', { headers });
      ws.once('open', () => {
        ws.close();
        resolve({ opened: true });
      });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += String(c)));
        res.on('end', () => resolve({ opened: false, status: res.statusCode ?? 0, body }));
      });
      ws.once('error', () => resolve({ opened: false }));
    });

  it('refuses a socket from another origin with the error shape, and opens one from a client without a page', async () => {
    const evil = await open(srv.url, { origin: EVIL });
    expect(evil).toMatchObject({ opened: false, status: 403 });
    expect(JSON.parse(evil.body!)).toMatchObject({ error: { code: 'ORIGIN_NOT_ALLOWED' } });
    expect(await open(srv.url)).toEqual({ opened: true });
  });

  it('answers a broken handshake and a plain GET with the error shape', async () => {
    const broken = await raw(srv.url, '/comfy/ws', { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'short' } });
    expect(broken.status).toBe(400);
    expect(JSON.parse(broken.body)).toMatchObject({ error: { code: 'VALIDATION_ERROR' } });
    const plain = await raw(srv.url, '/comfy/ws');
    expect(plain.status).toBe(400);
    expect(JSON.parse(plain.body)).toMatchObject({ error: { code: 'VALIDATION_ERROR' } });
  });
});

describe('headers of the dashboard and the API', () => {
  it('serves the dashboard with a CSP without inline script, no framing, nosniff and no referrer', async () => {
    const res = await raw(srv.url, '/');
    expect(res.status).toBe(200);
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    // Every script of the page is a file: nothing inline for the CSP to refuse.
    const scripts = [...res.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, inline] of scripts) {
      expect(attrs).toMatch(/\bsrc=/);
      expect(inline!.trim()).toBe('');
    }
    expect(res.body).not.toMatch(/\son[a-z]+=/i);
  });

  it('marks API answers as data that nothing may run or frame, with a request id', async () => {
    const res = await raw(srv.url, '/api/jobs');
    expect(res.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f]{12}$/);
  });
});

describe('output files', () => {
  beforeAll(() => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>fetch("/api/emergency-stop",{method:"POST"})</script></svg>';
    guard.files.set('gpu-a/output//evil.svg', { contentType: 'image/svg+xml', data: new TextEncoder().encode(svg) });
    guard.files.set('gpu-a/output//page.html', { contentType: 'text/html', data: new TextEncoder().encode('<script>alert(1)</script>') });
    guard.files.set('gpu-a/output//ok.png', { contentType: 'image/png', data: new Uint8Array([0x89, 0x50, 0x4e, 0x47]) });
  });

  it('serves an SVG output as an attachment in a sandbox, on /api/outputs and /comfy/view', async () => {
    for (const path of ['/api/outputs/gpu-a/output/evil.svg', '/comfy/view?filename=evil.svg&type=output']) {
      const res = await raw(srv.url, path);
      expect(res.status, path).toBe(200);
      expect(res.headers['content-disposition'], path).toMatch(/^attachment; filename="evil\.svg"/);
      expect(res.headers['content-security-policy'], path).toMatch(/sandbox/);
      expect(res.headers['content-security-policy'], path).toMatch(/default-src 'none'/);
      expect(res.headers['x-content-type-options'], path).toBe('nosniff');
    }
    const html = await raw(srv.url, '/api/outputs/gpu-a/output/page.html');
    expect(html.headers['content-disposition']).toMatch(/^attachment;/);
  });

  it('shows raster images inline, still sandboxed', async () => {
    const res = await raw(srv.url, '/api/outputs/gpu-a/output/ok.png');
    expect(res.headers['content-type']).toBe('image/png');
    expect(res.headers['content-disposition']).toMatch(/^inline; filename="ok\.png"/);
    expect(res.headers['content-security-policy']).toMatch(/sandbox/);
  });
});
