/**
 * The `/_sim/` admin routes and the in-process control API: stats, fault SPECs (and their
 * validation errors), reset, crash, model and node availability.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { SimConfigError, parseFaultSpec, startSimulator, type Simulator } from '../../src/sim/index.js';
import { RecordingSocket, fetchFailure, getJson, postJson, runPrompt, sdWorkflow, simpleWorkflow, waitUntil } from './helpers.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  while (open.length > 0) await open.pop()?.close();
});
async function sim(): Promise<Simulator> {
  const s = await startSimulator({ stepMs: 0, crashDowntimeMs: 20 });
  open.push(s);
  return s;
}

describe('GET /_sim/stats', () => {
  it('counts executions per prompt id and per distinct graph, and reports the queue', async () => {
    const s = await sim();
    const a = await runPrompt(s.url, simpleWorkflow(1));
    await runPrompt(s.url, simpleWorkflow(1)); // same graph, new id: fully cached but still a run
    const stats = await getJson<{ executions: Record<string, number>; workflows: Record<string, number>; faults: Record<string, number>; queue: number }>(s.url, '/_sim/stats');
    expect(stats.executions[a.promptId]).toBe(1);
    expect(Object.keys(stats.executions)).toHaveLength(2);
    expect(stats.workflows).toEqual({ [s.workflowHash(simpleWorkflow(1))]: 2 });
    expect(stats).toMatchObject({ faults: {}, queue: 0 });
    expect(stats).toEqual(s.stats());
  });
});

describe('/_sim/faults', () => {
  it('replaces the SPEC and returns it in canonical form', async () => {
    const s = await sim();
    const r = await postJson(s.url, '/_sim/faults', { faults: ' oom=0.10 , http503@/api/prompt/=1 ' });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ faults: 'oom=0.1,http503@/prompt=1' });
    expect(await getJson(s.url, '/_sim/faults')).toEqual({ faults: 'oom=0.1,http503@/prompt=1' });
    expect(s.getFaults()).toBe('oom=0.1,http503@/prompt=1');
  });

  it.each([
    ['oomx=0.1', 'unknown fault kind "oomx"'],
    ['oom=1.5', 'rate "1.5" must be a number from 0 to 1'],
    ['oom', '"oom" must be kind=rate'],
    ['stall@/prompt=1', 'only HTTP faults'],
    ['http503@FOO/prompt=1', 'scope "FOO/prompt"'],
    ['oom=0.1,oom=0.2', 'oom is given twice'],
  ])('rejects %s with a 400 naming the bad part', async (spec, part) => {
    const s = await sim();
    const r = await postJson(s.url, '/_sim/faults', { faults: spec });
    expect(r.status).toBe(400);
    expect((r.json as { error: string }).error).toContain(part);
    expect(() => s.setFaults(spec)).toThrow(SimConfigError);
    expect(s.getFaults()).toBe('');
  });

  it('rejects bodies that are not {"faults": string}', async () => {
    const s = await sim();
    expect((await postJson(s.url, '/_sim/faults', '{oops')).json).toMatchObject({ error: expect.stringContaining('body: not valid JSON') });
    expect((await postJson(s.url, '/_sim/faults', [1])).json).toEqual({ error: 'body: must be a JSON object' });
    expect((await postJson(s.url, '/_sim/faults', { faults: 3 })).json).toMatchObject({ error: expect.stringContaining('body.faults') });
  });

  it('parseFaultSpec names the part in its SimConfigError', () => {
    expect(() => parseFaultSpec('oom=0.1,ws_drop=x')).toThrow(/faults: "ws_drop=x": rate "x"/);
    expect(parseFaultSpec('').rules).toEqual([]);
    expect(parseFaultSpec('reset@POST/prompt=1').rules).toEqual([{ kind: 'reset', rate: 1, method: 'POST', path: '/prompt' }]);
  });
});

describe('POST /_sim/reset', () => {
  it('clears queue, history, cache and counters', async () => {
    const s = await sim();
    s.setFaults('missing_node=1');
    await postJson(s.url, '/prompt', { prompt: simpleWorkflow() });
    s.setFaults('');
    const first = await runPrompt(s.url, simpleWorkflow(5));
    const r = await postJson(s.url, '/_sim/reset', {});
    expect(r.status).toBe(200);
    expect(await getJson(s.url, '/history')).toEqual({});
    expect(s.stats()).toEqual({ executions: {}, workflows: {}, faults: {}, queue: 0 });
    const again = await runPrompt(s.url, simpleWorkflow(5));
    expect(again.outputs).not.toEqual(first.outputs); // the cache was dropped: it ran and wrote new files
    const n = await postJson(s.url, '/prompt', { prompt: simpleWorkflow(6) });
    expect((n.json as { number: number }).number).toBe(1);
  });
});

describe('POST /_sim/crash', () => {
  it('restarts like a killed process: sockets drop with 1006, queue and history are gone, number restarts at 0', async () => {
    const s = await sim();
    const clientId = randomUUID();
    const ws = await RecordingSocket.open(s.url, clientId);
    open.push(ws);
    await runPrompt(s.url, simpleWorkflow(), { client_id: clientId });
    expect(Object.keys(await getJson(s.url, '/history'))).toHaveLength(1);
    expect((await postJson(s.url, '/_sim/crash', {})).json).toEqual({ crashing: true });
    await waitUntil(() => ws.closed !== undefined, 'the socket to drop');
    expect(ws.closed?.code).toBe(1006);
    await waitUntil(async () => (await fetchFailure(`${s.url}/prompt`)) === 'no failure', 'the restart');
    expect(await getJson(s.url, '/history')).toEqual({});
    expect((await postJson(s.url, '/prompt', { prompt: simpleWorkflow(9) })).json).toMatchObject({ number: 0 });
  });

  it('crash() resolves once the server listens again on the same port', async () => {
    const s = await sim();
    const port = s.port;
    await s.crash();
    expect(s.port).toBe(port);
    expect((await fetch(`${s.url}/prompt`)).status).toBe(200);
  });
});

describe('models and node types', () => {
  it('POST /_sim/models changes what loaders list and accept', async () => {
    const s = await sim();
    const r = await postJson(s.url, '/_sim/models', { folder: 'checkpoints', files: ['only.safetensors'] });
    expect(r.status).toBe(200);
    expect(await getJson(s.url, '/models/checkpoints')).toEqual(['only.safetensors']);
    const info = await getJson<Record<string, { input: { required: { ckpt_name: unknown[] } } }>>(s.url, '/object_info/CheckpointLoaderSimple');
    expect(info.CheckpointLoaderSimple?.input.required.ckpt_name[0]).toEqual(['only.safetensors']);
    const bad = await postJson(s.url, '/prompt', { prompt: sdWorkflow() });
    expect(bad.status).toBe(400);
    expect((await postJson(s.url, '/_sim/models', { folder: 'check points', files: [] })).json).toMatchObject({ error: expect.stringContaining('body.folder') });
    expect((await postJson(s.url, '/_sim/models', { folder: 'loras', files: [1] })).json).toMatchObject({ error: expect.stringContaining('body.files') });
  });

  it('POST /_sim/nodes removes a node type from object_info and validation, and restores it', async () => {
    const s = await sim();
    await postJson(s.url, '/_sim/nodes', { remove: ['ImageInvert'] });
    expect(await getJson(s.url, '/object_info/ImageInvert')).toEqual({});
    expect(Object.keys(await getJson(s.url, '/object_info'))).not.toContain('ImageInvert');
    const r = await postJson(s.url, '/prompt', { prompt: simpleWorkflow() });
    expect(r.json).toMatchObject({ error: { type: 'invalid_prompt', message: 'Cannot execute because node ImageInvert does not exist.' } });
    s.restoreNodeType('ImageInvert');
    expect((await postJson(s.url, '/prompt', { prompt: simpleWorkflow() })).status).toBe(200);
    expect((await postJson(s.url, '/_sim/nodes', { remove: 'x' })).json).toMatchObject({ error: expect.stringContaining('body.remove') });
  });

  it('unknown admin routes answer 404 with the list of routes', async () => {
    const s = await sim();
    const r = await fetch(`${s.url}/_sim/nope`);
    expect(r.status).toBe(404);
    expect(((await r.json()) as { error: string }).error).toContain('GET /_sim/stats');
  });
});
