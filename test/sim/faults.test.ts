/**
 * Every fault kind, observed on the wire (raw fetch and ws), each counted exactly once per
 * injection in `/_sim/stats`.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/index.js';
import { ManualClock, RecordingSocket, fetchFailure, getJson, postJson, sdWorkflow, simpleWorkflow, waitUntil } from './helpers.js';

const open: Array<{ close(): Promise<void> }> = [];
async function sim(opts: SimulatorOptions = {}): Promise<Simulator> {
  const s = await startSimulator({ stepMs: 0, ...opts });
  open.push(s);
  return s;
}
async function socket(s: Simulator, clientId = randomUUID()): Promise<RecordingSocket> {
  const ws = await RecordingSocket.open(s.url, clientId);
  open.unshift(ws);
  return ws;
}
afterEach(async () => {
  while (open.length > 0) await open.shift()?.close();
});

describe('connection faults', () => {
  it('refuse=1 closes the port until the rule is removed through the in-process API', async () => {
    const s = await sim();
    s.setFaults('refuse=1');
    expect(await fetchFailure(`${s.url}/prompt`)).toBe('ECONNREFUSED');
    s.setFaults('');
    await waitUntil(async () => (await fetchFailure(`${s.url}/prompt`)) === 'no failure', 'the port to open again');
    expect(s.stats().faults).toEqual({ refuse: 1 });
  });

  it('refuse below 1 drops the connection that drew it, then refuses new ones for a short window', async () => {
    const s = await sim({ faults: 'refuse=0.9999999999', refuseMs: 60_000 });
    const first = await fetchFailure(`${s.url}/prompt`, { headers: { connection: 'close' } });
    expect(['ECONNRESET', 'UND_ERR_SOCKET']).toContain(first);
    expect(await fetchFailure(`${s.url}/prompt`)).toBe('ECONNREFUSED');
    expect(s.stats().faults.refuse).toBe(1);
  });

  it('reset answers nothing although the server did the work (an ambiguous submit)', async () => {
    const s = await sim({ faults: 'reset@POST/prompt=1' });
    const promptId = randomUUID();
    const failure = await fetchFailure(`${s.url}/prompt`, { method: 'POST', body: JSON.stringify({ prompt: simpleWorkflow(), prompt_id: promptId }) });
    expect(['ECONNRESET', 'UND_ERR_SOCKET']).toContain(failure);
    await waitUntil(async () => Object.keys(await getJson(s.url, `/history/${promptId}`)).length === 1, 'the reset prompt to finish');
    expect(s.stats().executions[promptId]).toBe(1);
    expect(s.stats().faults).toEqual({ reset: 1 });
    expect((await fetch(`${s.url}/queue`)).status).toBe(200); // GET is outside the scope
  });

  it('http500 answers aiohttp\'s text 500 and only on the scoped route', async () => {
    const s = await sim({ faults: 'http500@/prompt=1' });
    const r = await postJson(s.url, '/prompt', { prompt: simpleWorkflow() });
    expect(r.status).toBe(500);
    expect(r.type).toBe('text/plain; charset=utf-8');
    expect(r.text).toBe('500 Internal Server Error\n\nServer got itself in trouble');
    expect((await fetch(`${s.url}/api/queue`)).status).toBe(200);
    expect((await postJson(s.url, '/api/prompt', { prompt: simpleWorkflow() })).status).toBe(500);
    expect(s.stats().faults).toEqual({ http500: 2 });
    expect(s.stats().queue).toBe(0);
  });

  it.each([
    [502, 'http502', null],
    [503, 'http503', '1'],
    [429, 'http429', '1'],
  ] as const)('%i comes from a proxy page, with Retry-After %s', async (status, kind, retryAfter) => {
    const s = await sim({ faults: `${kind}=1` });
    const r = await postJson(s.url, '/prompt', { prompt: simpleWorkflow() });
    expect(r.status).toBe(status);
    expect(r.type).toBe('text/html');
    expect(r.text).toContain(`<title>${status} `);
    expect(r.headers.get('retry-after')).toBe(retryAfter);
    expect(s.stats().faults).toEqual({ [kind]: 1 });
    // The admin routes never fail.
    expect((await fetch(`${s.url}/_sim/stats`)).status).toBe(200);
  });

  it('slow holds the response for slowMs on the injected clock', async () => {
    const clock = new ManualClock();
    const s = await sim({ faults: 'slow@/queue=1', slowMs: 5_000, clock });
    let answered = false;
    const pending = fetch(`${s.url}/queue`).then(async (r) => {
      answered = true;
      return r.json() as Promise<unknown>;
    });
    await waitUntil(() => s.stats().faults.slow === 1 && clock.pending() === 1, 'the slow timer');
    expect(answered).toBe(false);
    clock.advance(5_000);
    expect(await pending).toEqual({ queue_running: [], queue_pending: [] });
  });
});

describe('WebSocket faults', () => {
  it('ws_drop closes the submitter\'s socket with a close frame; the prompt still finishes', async () => {
    const s = await sim({ faults: 'ws_drop=1' });
    const ws = await socket(s);
    const other = await socket(s);
    const promptId = randomUUID();
    await postJson(s.url, '/prompt', { prompt: simpleWorkflow(), client_id: ws.ws.url.split('clientId=')[1], prompt_id: promptId });
    await waitUntil(() => ws.closed !== undefined, 'the drop');
    expect(ws.closed?.code).toBe(1001);
    expect(other.closed).toBeUndefined();
    await waitUntil(async () => Object.keys(await getJson(s.url, `/history/${promptId}`)).length === 1, 'history');
    expect(s.stats().faults).toEqual({ ws_drop: 1 });
  });

  it('ws_drop_silent cuts the TCP connection: the client sees 1006', async () => {
    const s = await sim({ faults: 'ws_drop_silent=1' });
    const clientId = randomUUID();
    const ws = await socket(s, clientId);
    await postJson(s.url, '/prompt', { prompt: simpleWorkflow(), client_id: clientId });
    await waitUntil(() => ws.closed !== undefined, 'the drop');
    expect(ws.closed?.code).toBe(1006);
    expect(s.stats().faults).toEqual({ ws_drop_silent: 1 });
  });
});

describe('execution faults', () => {
  it('stall: the prompt stops emitting after executing; an interrupt ends it with execution_interrupted', async () => {
    const s = await sim({ faults: 'stall=1' });
    const clientId = randomUUID();
    const ws = await socket(s, clientId);
    const { json } = await postJson(s.url, '/prompt', { prompt: simpleWorkflow(), client_id: clientId });
    const promptId = (json as { prompt_id: string }).prompt_id;
    await ws.waitFor((m) => m.type === 'executing' && m.data.node === '1', 'executing node 1');
    const queue = await getJson<{ queue_running: unknown[][] }>(s.url, '/queue');
    expect(queue.queue_running[0]?.[1]).toBe(promptId);
    expect(ws.forPrompt(promptId).map((m) => m.type)).toEqual(['execution_start', 'execution_cached', 'progress_state', 'executing']);
    await postJson(s.url, '/interrupt', { prompt_id: promptId });
    await ws.waitDone(promptId);
    const interrupted = ws.forPrompt(promptId).find((m) => m.type === 'execution_interrupted');
    expect(interrupted?.data).toMatchObject({ node_id: '1', node_type: 'EmptyImage', executed: [] });
    const history = await getJson<Record<string, { status: { status_str: string; messages: unknown[][] } }>>(s.url, `/history/${promptId}`);
    expect(history[promptId]?.status.status_str).toBe('error');
    expect(history[promptId]?.status.messages.at(-1)?.[0]).toBe('execution_interrupted');
    expect(s.stats().faults).toEqual({ stall: 1 });
  });

  it('crash drops every socket (1006), keeps the port closed for the downtime, and forgets queue and history', async () => {
    const clock = new ManualClock();
    const s = await sim({ faults: 'crash=1', crashDowntimeMs: 1_000, clock });
    const clientId = randomUUID();
    const ws = await socket(s, clientId);
    const before = await postJson(s.url, '/prompt', { prompt: simpleWorkflow(), client_id: clientId, prompt_id: 'job-a' });
    expect((before.json as { number: number }).number).toBe(0);
    await waitUntil(() => ws.closed !== undefined, 'the crash');
    expect(ws.closed?.code).toBe(1006);
    expect(await fetchFailure(`${s.url}/prompt`)).toBe('ECONNREFUSED');
    s.setFaults('');
    clock.advance(1_000);
    await waitUntil(async () => (await fetchFailure(`${s.url}/queue`)) === 'no failure', 'the restart');
    expect(await getJson(s.url, '/queue')).toEqual({ queue_running: [], queue_pending: [] });
    expect(await getJson(s.url, '/history/job-a')).toEqual({});
    const after = await postJson(s.url, '/prompt', { prompt: simpleWorkflow(1) });
    expect((after.json as { number: number }).number).toBe(0);
    expect(s.stats().executions['job-a']).toBe(1); // counters outlive the crash
    expect(s.stats().faults).toEqual({ crash: 1 });
  });

  it('disk_full fails SaveImage with OSError [Errno 28]', async () => {
    const s = await sim({ faults: 'disk_full=1' });
    const clientId = randomUUID();
    const ws = await socket(s, clientId);
    const { json } = await postJson(s.url, '/prompt', { prompt: simpleWorkflow(), client_id: clientId });
    const promptId = (json as { prompt_id: string }).prompt_id;
    const err = await ws.waitFor((m) => m.type === 'execution_error', 'execution_error');
    expect(err.data).toMatchObject({ prompt_id: promptId, node_id: '3', node_type: 'SaveImage', exception_type: 'OSError', exception_message: '[Errno 28] No space left on device\n' });
    expect(s.stats().faults).toEqual({ disk_full: 1 });
  });

  it('oom fails the prompt like a CUDA OOM, with ComfyUI\'s tips, at the heaviest node', async () => {
    const s = await sim({ faults: 'oom=1' });
    const clientId = randomUUID();
    const ws = await socket(s, clientId);
    await postJson(s.url, '/prompt', { prompt: sdWorkflow(), client_id: clientId });
    const err = await ws.waitFor((m) => m.type === 'execution_error', 'execution_error');
    expect(err.data.exception_type).toBe('torch.OutOfMemoryError');
    expect(err.data.node_type).toBe('KSampler');
    expect(String(err.data.exception_message)).toMatch(/^CUDA out of memory\. Tried to allocate 2\.00 GiB\. GPU 0 has a total capacity of 24\.00 GiB/);
    expect(String(err.data.exception_message)).toMatch(/\nThis error means you ran out of memory on your GPU\.\n\nTIPS: If the workflow worked before/);
    expect(s.stats().faults).toEqual({ oom: 1 });
  });

  it('missing_model rejects the prompt with value_not_in_list on the loader', async () => {
    const s = await sim({ faults: 'missing_model=1' });
    const r = await postJson(s.url, '/prompt', { prompt: sdWorkflow() });
    expect(r.status).toBe(400);
    const body = r.json as { error: { type: string }; node_errors: Record<string, { errors: Array<{ type: string; details: string }>; class_type: string }> };
    expect(body.error.type).toBe('prompt_outputs_failed_validation');
    expect(body.node_errors['4']?.class_type).toBe('CheckpointLoaderSimple');
    expect(body.node_errors['4']?.errors[0]).toMatchObject({ type: 'value_not_in_list', details: "ckpt_name: 'v1-5-pruned-emaonly.ckpt' not in ['sd_xl_base_1.0.safetensors']" });
    expect(s.stats().faults).toEqual({ missing_model: 1 });
  });

  it('missing_node rejects the prompt as if the node type were not installed', async () => {
    const s = await sim({ faults: 'missing_node=1' });
    const r = await postJson(s.url, '/prompt', { prompt: simpleWorkflow() });
    expect(r.status).toBe(400);
    expect(r.json).toEqual({
      error: { type: 'invalid_prompt', message: 'Cannot execute because node EmptyImage does not exist.', details: "Node ID '#1'", extra_info: {} },
      node_errors: {},
    });
    expect(s.stats().faults).toEqual({ missing_node: 1 });
  });
});

describe('determinism', () => {
  it('replays the same fault sequence for the same seed', async () => {
    const outcomes = async (seed: number) => {
      const s = await sim({ faults: 'http503@/prompt=0.5', seed });
      const codes: number[] = [];
      for (let i = 0; i < 24; i++) codes.push((await postJson(s.url, '/prompt', { prompt: simpleWorkflow(i) })).status);
      return codes;
    };
    const a = await outcomes(7);
    const b = await outcomes(7);
    const c = await outcomes(8);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).toContain(200);
    expect(a).toContain(503);
  });
});
