/**
 * The API key: required to listen beyond loopback, enforced on the API, `/comfy` and `/metrics`,
 * never on the dashboard's files or the OpenAPI document.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createGuard } from '../../src/jobs/guard.js';
import type { Guard } from '../../src/jobs/guard-api.js';
import { isLoopbackHost, startService, type RunningService } from '../../src/server/index.js';
import { tinyWorkflow } from './helpers.js';

const KEY = 'test-key-7f3a9c-0b1d';

let guard: Guard;
let open: RunningService | null = null;
let locked: RunningService | null = null;

beforeAll(async () => {
  guard = await createGuard({ servers: [{ url: 'http://127.0.0.1:9', name: 'nowhere' }], store: 'memory:', cleanupIntervalMs: 0, maxRetries: 0 });
  open = await startService({ guard });
  // Every interface: the key is mandatory here.
  locked = await startService({ guard, host: '0.0.0.0', port: 0, apiKey: KEY, metrics: { registry: { contentType: 'text/plain', metrics: async () => 'comfyguard_up 1\n' } } });
});

afterAll(async () => {
  await open?.close();
  await locked?.close();
  await guard?.close();
});

function wsOpen(url: string): Promise<{ ok: true; first: unknown } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.once('message', (data) => {
      resolve({ ok: true, first: JSON.parse(String(data)) });
      ws.close();
    });
    ws.once('error', (err) => resolve({ ok: false, error: err.message }));
  });
}

describe('startService', () => {
  it('refuses to listen on a non-loopback host without an API key', async () => {
    await expect(startService({ guard, host: '0.0.0.0' })).rejects.toThrow(/API key/);
    await expect(startService({ guard, host: '192.168.1.10', apiKey: '' })).rejects.toMatchObject({ code: 'SERVICE_CONFIG_ERROR' });
  });

  it('listens on loopback without a key and needs none there', async () => {
    expect(open!.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect((await fetch(`${open!.url}/api/jobs`)).status).toBe(200);
  });

  it('knows which hosts are loopback', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.10', 'example.com', '128.0.0.1']) expect(isLoopbackHost(h), h).toBe(false);
  });
});

describe('with an API key', () => {
  const url = () => locked!.url;

  it('answers 401 UNAUTHORIZED without the key, and with a wrong one', async () => {
    const missing = await fetch(`${url()}/api/jobs`);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    const wrong = await fetch(`${url()}/api/jobs`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { message: string } }).error.message).toMatch(/wrong/);
    const notBearer = await fetch(`${url()}/api/jobs`, { headers: { authorization: `Basic ${KEY}` } });
    expect(notBearer.status).toBe(401);
  });

  it('protects submissions, stats, health, metrics and the ComfyUI endpoint', async () => {
    const post = await fetch(`${url()}/api/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workflow: tinyWorkflow() }) });
    expect(post.status).toBe(401);
    for (const path of ['/api/stats', '/api/stats/detailed', '/api/health', '/api/health/comfyui', '/metrics', '/comfy/prompt', '/comfy/queue', '/comfy/history']) {
      expect((await fetch(`${url()}${path}`)).status, path).toBe(401);
    }
  });

  it('does not let a percent-encoded path dodge the check', async () => {
    expect((await fetch(`${url()}/%61pi/jobs`)).status).not.toBe(200);
    expect((await fetch(`${url()}/api/%6Aobs`)).status).not.toBe(200);
  });

  it('lets the right key through', async () => {
    const auth = { authorization: `Bearer ${KEY}` };
    expect((await fetch(`${url()}/api/jobs`, { headers: auth })).status).toBe(200);
    const post = await fetch(`${url()}/api/jobs`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ workflow: tinyWorkflow() }) });
    expect(post.status).toBe(202);
    const metrics = await fetch(`${url()}/metrics`, { headers: auth });
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('comfyguard_up 1');
  });

  it('keeps the dashboard and the API docs public so a browser can ask for the key', async () => {
    const page = await fetch(`${url()}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('id="api-key"');
    expect((await fetch(`${url()}/app.js`)).status).toBe(200);
    expect((await fetch(`${url()}/api/openapi.json`)).status).toBe(200);
    expect((await fetch(`${url()}/docs`, { redirect: 'manual' })).status).toBeLessThan(400);
  });

  it('accepts ?token= on the ComfyUI endpoint (WebSocket clients cannot send headers), not on the API', async () => {
    expect((await fetch(`${url()}/comfy/prompt?token=${KEY}`)).status).toBe(200);
    expect((await fetch(`${url()}/api/jobs?token=${KEY}`)).status).toBe(401);
    const wsUrl = url().replace('http', 'ws');
    const refused = await wsOpen(`${wsUrl}/comfy/ws?clientId=a`);
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.error).toMatch(/401/);
    const nowhere = await wsOpen(`${wsUrl}/ws?clientId=a&token=${KEY}`);
    expect(nowhere.ok).toBe(false);
    const accepted = await wsOpen(`${wsUrl}/comfy/ws?clientId=a&token=${KEY}`);
    expect(accepted).toMatchObject({ ok: true, first: { type: 'status', data: { sid: 'a' } } });
  });
});
