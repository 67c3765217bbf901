/**
 * The OpenAPI document lists every route the service has, with the schemas that validate
 * requests, and the interactive docs are served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/server/app.js';
import { FakeGuard } from './fake-guard.js';

interface OpenApiDoc {
  openapi: string;
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> }; parameters?: Array<{ name: string; in: string }>; responses: Record<string, unknown>; tags?: string[] }>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

const NOT_API = (url: string) => url.startsWith('/docs') || url === '/api/openapi.json' || url === '/' || /\.(js|css|html|svg)$/.test(url);

let guard: FakeGuard;
let app: ReturnType<typeof buildApp>;
const routes: Array<{ method: string; url: string }> = [];
let doc: OpenApiDoc;

beforeAll(async () => {
  guard = await new FakeGuard().init();
  app = buildApp({ guard });
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push({ method: m.toLowerCase(), url: r.url });
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as { port: number };
  doc = (await (await fetch(`http://127.0.0.1:${addr.port}/api/openapi.json`)).json()) as OpenApiDoc;
});

afterAll(async () => {
  await app?.close();
  await guard?.close();
});

describe('the OpenAPI document', () => {
  it('lists every route of the API, the ComfyUI-compatible endpoint and /metrics', () => {
    const api = routes.filter((r) => !NOT_API(r.url));
    expect(api.length).toBeGreaterThan(25);
    const missing = api.filter((r) => !doc.paths[r.url.replace(/:(\w+)/g, '{$1}')]?.[r.method]).map((r) => `${r.method} ${r.url}`);
    expect(missing).toEqual([]);
    for (const p of ['/api/jobs', '/api/jobs/{id}', '/api/jobs/{id}/events', '/api/jobs/{id}/retry', '/api/jobs/{id}/cancel', '/api/emergency-stop', '/api/stats', '/api/stats/detailed', '/api/health', '/api/health/comfyui', '/api/outputs/{server}/{type}/{filename}', '/metrics', '/comfy/prompt', '/comfy/ws', '/comfy/history/{id}', '/comfy/view']) {
      expect(doc.paths, p).toHaveProperty([p]);
    }
    expect(Object.keys(doc.paths['/api/jobs']!).sort()).toEqual(['delete', 'get', 'post']);
  });

  it('documents the request schemas that validate requests and one error schema', () => {
    expect(doc.openapi).toBe('3.0.3');
    const post = doc.paths['/api/jobs']!.post!;
    const body = post.requestBody!.content['application/json']!.schema as { properties: Record<string, unknown>; required: string[]; additionalProperties: boolean };
    expect(body.required).toEqual(['workflow']);
    expect(Object.keys(body.properties).sort()).toEqual(['options', 'params', 'workflow']);
    expect(body.additionalProperties).toBe(false);
    expect(JSON.stringify(body)).toContain('#/components/schemas/JobOptions');
    const options = doc.components.schemas.JobOptions as { properties: Record<string, unknown> };
    expect(Object.keys(options.properties)).toEqual(
      expect.arrayContaining(['maxRetries', 'timeoutMs', 'fallbackModels', 'fallbackWorkflows', 'priority', 'idempotencyKey', 'webhookUrl', 'recovery']),
    );
    for (const name of ['Job', 'Error', 'Workflow', 'JobOptions', 'Stats', 'ServerHealth']) expect(doc.components.schemas, name).toHaveProperty([name]);
    expect(Object.keys(post.responses)).toEqual(expect.arrayContaining(['202', '400', '401', '413']));
    expect(JSON.stringify(post.responses['400'])).toContain('#/components/schemas/Error');
    const list = doc.paths['/api/jobs']!.get!;
    expect(list.parameters!.map((p) => `${p.in}:${p.name}`)).toEqual(expect.arrayContaining(['query:status', 'query:limit', 'query:cursor']));
    expect(doc.components.securitySchemes).toHaveProperty('bearer');
  });

  it('documents the job resource in camelCase', () => {
    const job = doc.components.schemas.Job as { properties: Record<string, unknown> };
    expect(Object.keys(job.properties)).toEqual(
      expect.arrayContaining(['id', 'status', 'progress', 'server', 'createdAt', 'updatedAt', 'attempts', 'recoveryHistory', 'retryCount', 'originalParameters', 'outputs', 'error']),
    );
    for (const k of Object.keys(job.properties)) expect(k).not.toMatch(/_/);
  });

  it('serves the interactive docs at /docs', async () => {
    const addr = app.server.address() as { port: number };
    const res = await fetch(`http://127.0.0.1:${addr.port}/docs/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/swagger/i);
  });
});
