/**
 * Every bad request gets 400 (or 404/413/415) in the one error shape, naming the field at fault.
 * A real guard sits behind the service; these requests are refused before any job runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGuard } from '../../src/jobs/guard.js';
import type { Guard } from '../../src/jobs/guard-api.js';
import { listen, postJson, tinyWorkflow, type TestServer } from './helpers.js';

interface ErrorBody {
  error: { code: string; message: string; field?: string; details?: unknown[] };
}

let guard: Guard;
let server: TestServer;
let small: TestServer;

beforeAll(async () => {
  // Nothing listens on port 9: jobs that do get accepted just wait for a server, which is fine here.
  guard = await createGuard({ servers: [{ url: 'http://127.0.0.1:9', name: 'nowhere' }], store: 'memory:', cleanupIntervalMs: 0, maxRetries: 0 });
  server = await listen({ guard, dashboard: false });
  small = await listen({ guard, bodyLimit: 2_048, dashboard: false });
});

afterAll(async () => {
  await server?.close();
  await small?.close();
  await guard?.close();
});

async function expectError(res: Response, status: number, code: string, field?: string): Promise<ErrorBody> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  const body = JSON.parse(text) as ErrorBody;
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(0);
  if (field !== undefined) expect(body.error.field).toBe(field);
  return body;
}

const submit = (body: unknown) => postJson(`${server.url}/api/jobs`, body);

describe('POST /api/jobs refuses bad input', () => {
  it('answers 400 VALIDATION_ERROR field=workflow when the workflow is missing', async () => {
    await expectError(await submit({}), 400, 'VALIDATION_ERROR', 'workflow');
    await expectError(await submit({ params: { seed: 1 } }), 400, 'VALIDATION_ERROR', 'workflow');
  });

  it('answers 400 field=workflow when the workflow is not an object', async () => {
    await expectError(await submit({ workflow: 'EmptyImage' }), 400, 'VALIDATION_ERROR', 'workflow');
    await expectError(await submit({ workflow: [tinyWorkflow()] }), 400, 'VALIDATION_ERROR', 'workflow');
    await expectError(await submit({ workflow: null }), 400, 'VALIDATION_ERROR', 'workflow');
  });

  it('answers 400 for an empty workflow and for a node without class_type', async () => {
    await expectError(await submit({ workflow: {} }), 400, 'VALIDATION_ERROR', 'workflow');
    await expectError(await submit({ workflow: { '1': { inputs: {} } } }), 400, 'VALIDATION_ERROR', 'workflow.1.class_type');
    await expectError(await submit({ workflow: { '1': { class_type: 'EmptyImage', inputs: 5 } } }), 400, 'VALIDATION_ERROR', 'workflow.1.inputs');
  });

  it('explains a UI-format workflow instead of just refusing it', async () => {
    const ui = { last_node_id: 2, last_link_id: 1, nodes: [{ id: 1, type: 'EmptyImage' }], links: [[1, 1, 0, 2, 0, 'IMAGE']], version: 0.4 };
    const body = await expectError(await submit({ workflow: ui }), 400, 'VALIDATION_ERROR', 'workflow');
    expect(body.error.message).toMatch(/UI-format/);
    expect(body.error.message).toMatch(/API Format/);
  });

  it('names an unknown option and an unknown top-level field', async () => {
    await expectError(await submit({ workflow: tinyWorkflow(), options: { retries: 3 } }), 400, 'VALIDATION_ERROR', 'options.retries');
    await expectError(await submit({ workflow: tinyWorkflow(), priority: 3 }), 400, 'VALIDATION_ERROR', 'priority');
  });

  it('names the option with a bad type or range', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ maxRetries: '3' }, 'options.maxRetries'],
      [{ maxRetries: -1 }, 'options.maxRetries'],
      [{ maxRetries: 101 }, 'options.maxRetries'],
      [{ timeoutMs: 0 }, 'options.timeoutMs'],
      [{ priority: 1.5 }, 'options.priority'],
      [{ idempotencyKey: '' }, 'options.idempotencyKey'],
      [{ webhookUrl: 'ftp://example.com/hook' }, 'options.webhookUrl'],
      [{ webhookUrl: 'not a url' }, 'options.webhookUrl'],
      [{ fallbackModels: 'a.safetensors' }, 'options.fallbackModels'],
      [{ fallbackModels: ['ok.safetensors', ''] }, 'options.fallbackModels[1]'],
      [{ fallbackWorkflows: [{ '1': { inputs: {} } }] }, 'options.fallbackWorkflows[0].1.class_type'],
      [{ recovery: { COMFYUI_OOM: ['levitate'] } }, 'options.recovery.COMFYUI_OOM[0]'],
      [{ recovery: { NOT_A_CODE: ['retry'] } }, 'options.recovery.NOT_A_CODE'],
      [{ allowDegradation: 'yes' }, 'options.allowDegradation'],
    ];
    for (const [options, field] of cases) {
      await expectError(await submit({ workflow: tinyWorkflow(), options }), 400, 'VALIDATION_ERROR', field);
    }
  });

  it('names a parameter with a bad type, and one that fits no node (checked by the guard)', async () => {
    await expectError(await submit({ workflow: tinyWorkflow(), params: { width: 'big' } }), 400, 'VALIDATION_ERROR', 'params.width');
    await expectError(await submit({ workflow: tinyWorkflow(), params: 'seed=1' }), 400, 'VALIDATION_ERROR', 'params');
    const body = await expectError(await submit({ workflow: tinyWorkflow(), params: { nope: 1 } }), 400, 'VALIDATION_ERROR', 'params.nope');
    expect(body.error.message).toMatch(/nope/);
  });

  it('lists every issue in details, the first one in field', async () => {
    const body = await expectError(await submit({ workflow: tinyWorkflow(), options: { maxRetries: 'x', bogus: 1 } }), 400, 'VALIDATION_ERROR', 'options.maxRetries');
    const fields = (body.error.details as Array<{ field: string }>).map((d) => d.field);
    expect(fields).toEqual(expect.arrayContaining(['options.maxRetries', 'options.bogus']));
  });

  it('answers 400 INVALID_JSON for a body that is not JSON, and 400 for a body that is not an object', async () => {
    await expectError(await submit('{"workflow": '), 400, 'INVALID_JSON', 'body');
    await expectError(await submit('[1,2]'), 400, 'VALIDATION_ERROR', 'body');
    await expectError(await fetch(`${server.url}/api/jobs`, { method: 'POST' }), 400, 'VALIDATION_ERROR', 'body');
  });

  it('answers 415 for a body type it cannot read', async () => {
    const res = await fetch(`${server.url}/api/jobs`, { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<workflow/>' });
    await expectError(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers 413 PAYLOAD_TOO_LARGE for a body over the limit', async () => {
    const big = { workflow: { '1': { class_type: 'EmptyImage', inputs: { note: 'x'.repeat(4_096) } } } };
    await expectError(await postJson(`${small.url}/api/jobs`, big), 413, 'PAYLOAD_TOO_LARGE');
    // The same body fits the default 10 MiB limit.
    const ok = await postJson(`${server.url}/api/jobs`, { workflow: { ...tinyWorkflow(), '3': { class_type: 'PreviewImage', inputs: { images: ['1', 0], note: 'x'.repeat(4_096) } } } });
    expect(ok.status).toBe(202);
  });
});

describe('queries and ids', () => {
  it('refuses a bad status filter, limit and cursor on GET /api/jobs', async () => {
    await expectError(await fetch(`${server.url}/api/jobs?status=bogus`), 400, 'VALIDATION_ERROR', 'status');
    await expectError(await fetch(`${server.url}/api/jobs?status=queued,nope`), 400, 'VALIDATION_ERROR', 'status');
    for (const limit of ['0', '-5', 'abc', '1001', '2.5']) {
      await expectError(await fetch(`${server.url}/api/jobs?limit=${limit}`), 400, 'VALIDATION_ERROR', 'limit');
    }
    await expectError(await fetch(`${server.url}/api/jobs?cursor=not-a-cursor`), 400, 'VALIDATION_ERROR', 'cursor');
    await expectError(await fetch(`${server.url}/api/jobs?cursor=${'a'.repeat(2_000)}`), 400, 'VALIDATION_ERROR', 'cursor');
    await expectError(await fetch(`${server.url}/api/jobs?include=everything`), 400, 'VALIDATION_ERROR', 'include');
  });

  it('accepts unknown query keys (ComfyUI clients append ?clientId=)', async () => {
    const res = await fetch(`${server.url}/api/jobs?limit=1&clientId=abc`);
    expect(res.status).toBe(200);
  });

  it('refuses a bad olderThanHours on DELETE /api/jobs', async () => {
    for (const v of ['-1', 'abc', '']) {
      await expectError(await fetch(`${server.url}/api/jobs?olderThanHours=${v}`, { method: 'DELETE' }), 400, 'VALIDATION_ERROR', 'olderThanHours');
    }
  });

  it('refuses a bad window on GET /api/stats/detailed', async () => {
    await expectError(await fetch(`${server.url}/api/stats/detailed?hours=0`), 400, 'VALIDATION_ERROR', 'hours');
  });

  it('answers 404 NOT_FOUND for an unknown job on every job route', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    await expectError(await fetch(`${server.url}/api/jobs/${id}`), 404, 'NOT_FOUND');
    await expectError(await fetch(`${server.url}/api/jobs/${id}/events`), 404, 'NOT_FOUND');
    await expectError(await postJson(`${server.url}/api/jobs/${id}/retry`, {}), 404, 'NOT_FOUND');
    await expectError(await fetch(`${server.url}/api/jobs/${id}/cancel`, { method: 'POST' }), 404, 'NOT_FOUND');
  });

  it('refuses a bad retry body', async () => {
    const { id } = (await (await submit({ workflow: tinyWorkflow() })).json()) as { id: string };
    await expectError(await postJson(`${server.url}/api/jobs/${id}/retry`, { force: 'yes' }), 400, 'VALIDATION_ERROR', 'force');
    await expectError(await postJson(`${server.url}/api/jobs/${id}/retry`, { forced: true }), 400, 'VALIDATION_ERROR', 'forced');
  });

  it('refuses output paths that leave their folder and unknown folder types', async () => {
    await expectError(await fetch(`${server.url}/api/outputs/nowhere/output/..%2F..%2Fetc%2Fpasswd`), 400, 'VALIDATION_ERROR', 'filename');
    await expectError(await fetch(`${server.url}/api/outputs/nowhere/secrets/a.png`), 400, 'VALIDATION_ERROR', 'type');
    await expectError(await fetch(`${server.url}/api/outputs/nowhere/output/a.png?subfolder=../../x`), 400, 'VALIDATION_ERROR', 'subfolder');
    const view = await fetch(`${server.url}/comfy/view?filename=../../etc/passwd&type=output`);
    expect(view.status).toBe(400);
    expect(((await view.json()) as { error: { type: string; details: string } }).error).toMatchObject({ type: 'validation_error', details: 'filename' });
  });

  it('answers 404 for an output of an unknown server and for unknown routes', async () => {
    await expectError(await fetch(`${server.url}/api/outputs/ghost/output/a.png`), 404, 'NOT_FOUND');
    await expectError(await fetch(`${server.url}/api/nothing-here`), 404, 'NOT_FOUND');
    await expectError(await fetch(`${server.url}/api/jobs`, { method: 'PUT' }), 404, 'NOT_FOUND');
  });
});
