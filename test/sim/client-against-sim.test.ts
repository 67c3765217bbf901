/**
 * The real protocol client (`ComfyClient`, `ComfySocket`) against the simulator, for every fault
 * kind: each fault surfaces as the right `ComfyRequestError` kind or WebSocket event, with its
 * evidence (status, headers, body, transport code, close code, execution_error payload) intact,
 * and the classifier turns that evidence into the documented error code.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ComfyClient, ComfyRequestError, ComfySocket, outcomeFromHistory } from '../../src/comfy/index.js';
import type { ApiWorkflow, ComfySocketEvent, ExecutionErrorData, WsMessage } from '../../src/comfy/index.js';
import { classify } from '../../src/errors/classify.js';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/index.js';
import { ManualClock, sdWorkflow, simpleWorkflow, waitUntil } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function setup(opts: SimulatorOptions = {}, clientOpts: { requestTimeoutMs?: number } = {}) {
  const sim = await startSimulator({ stepMs: 0, ...opts });
  cleanups.push(() => sim.close());
  const client = new ComfyClient({ baseUrl: sim.url, ...clientOpts });
  cleanups.push(() => client.close());
  return { sim, client };
}

/** A connected ComfySocket that records its events. */
async function connect(sim: Simulator, clientId = randomUUID()) {
  const socket = new ComfySocket({ baseUrl: sim.url, clientId, pingIntervalMs: 0 });
  const events: ComfySocketEvent[] = [];
  socket.on((e) => events.push(e));
  await socket.connect();
  cleanups.push(async () => {
    await socket.close().catch(() => undefined);
  });
  const messages = () => events.flatMap((e) => (e.kind === 'message' ? [e.message] : []));
  const waitMessage = async (pred: (m: WsMessage) => boolean, what: string) => {
    await waitUntil(() => messages().some(pred), what);
    return messages().find(pred) as WsMessage;
  };
  const waitClose = async () => {
    await waitUntil(() => events.some((e) => e.kind === 'close'), 'the socket to close');
    return events.find((e) => e.kind === 'close') as Extract<ComfySocketEvent, { kind: 'close' }>;
  };
  return { socket, clientId, events, messages, waitMessage, waitClose };
}

async function rejection(p: Promise<unknown>): Promise<ComfyRequestError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ComfyRequestError);
    return e as ComfyRequestError;
  }
  throw new Error('expected a rejection');
}

const wf = (w: Record<string, unknown>) => w as unknown as ApiWorkflow;

describe('ComfyClient and ComfySocket against the simulator', () => {
  it('run a prompt end to end: submit, events in order, history outcome, output file', async () => {
    const { sim, client } = await setup();
    const ws = await connect(sim);
    const promptId = randomUUID();
    const res = await client.submitPrompt(wf(simpleWorkflow(3, 'client')), { clientId: ws.clientId, promptId });
    expect(res).toEqual({ prompt_id: promptId, number: 0, node_errors: {} });
    await ws.waitMessage((m) => m.type === 'executing' && m.data.node === null, 'the end marker');
    const types = ws.messages().filter((m) => m.type !== 'status' && m.type !== 'progress_state').map((m) => m.type);
    expect(types).toEqual(['execution_start', 'execution_cached', 'executing', 'executing', 'executing', 'executed', 'execution_success', 'executing']);
    const history = await client.getHistory(promptId);
    const entry = history[promptId];
    expect(entry).toBeDefined();
    const outcome = outcomeFromHistory(entry as NonNullable<typeof entry>);
    expect(outcome?.kind).toBe('success');
    const image = (outcome?.outputs['3']?.images ?? [])[0];
    const file = await client.view({ filename: image?.filename ?? '', subfolder: image?.subfolder ?? '', type: image?.type ?? 'output' });
    expect(file.contentType).toBe('image/png');
    expect(Buffer.from(file.data.subarray(0, 8)).toString('hex')).toBe('89504e470d0a1a0a');
    expect((await client.getSystemStats()).system.comfyui_version).toBe('0.3.64');
    expect(Object.keys(await client.getNodeInfo('KSampler'))).toEqual(['KSampler']);
  });

  it('refuse: transport error ECONNREFUSED -> COMFYUI_CONNECTION_ERROR', async () => {
    const { sim, client } = await setup();
    sim.setFaults('refuse=1');
    const err = await rejection(client.getPromptStatus());
    expect(err).toMatchObject({ kind: 'transport', transportCode: 'ECONNREFUSED' });
    expect(classify(err).code).toBe('COMFYUI_CONNECTION_ERROR');
  });

  it('reset: transport error on submit, yet the prompt ran (reconcile before resubmitting)', async () => {
    const { sim, client } = await setup({ faults: 'reset@POST/prompt=1' });
    const promptId = randomUUID();
    const err = await rejection(client.submitPrompt(wf(simpleWorkflow()), { promptId }));
    expect(err.kind).toBe('transport');
    expect(['ECONNRESET', 'UND_ERR_SOCKET']).toContain(err.transportCode);
    expect(classify(err).code).toBe('COMFYUI_CONNECTION_ERROR');
    await waitUntil(async () => (await client.getHistory(promptId))[promptId] !== undefined, 'the prompt to finish');
    expect(sim.stats().executions[promptId]).toBe(1);
  });

  it('http500: http error with ComfyUI\'s text body -> COMFYUI_SERVER_ERROR', async () => {
    const { client } = await setup({ faults: 'http500@/prompt=1' });
    const err = await rejection(client.submitPrompt(wf(simpleWorkflow())));
    expect(err).toMatchObject({ kind: 'http', status: 500, bodyText: '500 Internal Server Error\n\nServer got itself in trouble' });
    expect(classify(err).code).toBe('COMFYUI_SERVER_ERROR');
  });

  it.each([
    ['http502', 502, 'COMFYUI_SERVER_ERROR'],
    ['http503', 503, 'COMFYUI_OVERLOADED'],
    ['http429', 429, 'COMFYUI_OVERLOADED'],
  ] as const)('%s: http error %i keeps headers and body -> %s', async (kind, status, code) => {
    const { client } = await setup({ faults: `${kind}=1` });
    const err = await rejection(client.getQueue());
    expect(err).toMatchObject({ kind: 'http', status });
    expect(err.bodyText).toContain(`${status}`);
    if (status !== 502) {
      expect(err.headers?.['retry-after']).toBe('1');
      expect(classify(err).retryAfterMs).toBe(1000);
    }
    expect([code, 'COMFYUI_SERVER_ERROR']).toContain(classify(err).code);
    if (status === 429) expect(classify(err).code).toBe('COMFYUI_OVERLOADED');
  });

  it('slow: the client\'s request timeout fires -> COMFYUI_TIMEOUT', async () => {
    const clock = new ManualClock();
    const { client } = await setup({ faults: 'slow=1', slowMs: 60_000, clock }, { requestTimeoutMs: 50 });
    const err = await rejection(client.getQueue());
    expect(err).toMatchObject({ kind: 'timeout', timeoutMs: 50 });
    expect(classify(err).code).toBe('COMFYUI_TIMEOUT');
  });

  it('ws_drop: the socket closes with 1001 and a close frame', async () => {
    const { sim, client } = await setup({ faults: 'ws_drop=1' });
    const ws = await connect(sim);
    await client.submitPrompt(wf(simpleWorkflow()), { clientId: ws.clientId });
    const closed = await ws.waitClose();
    expect(closed).toMatchObject({ code: 1001, byUs: false });
  });

  it('ws_drop_silent: the socket closes with 1006 -> COMFYUI_CONNECTION_ERROR', async () => {
    const { sim, client } = await setup({ faults: 'ws_drop_silent=1' });
    const ws = await connect(sim);
    await client.submitPrompt(wf(simpleWorkflow()), { clientId: ws.clientId });
    const closed = await ws.waitClose();
    expect(closed).toMatchObject({ code: 1006, byUs: false });
    expect(classify({ kind: 'ws_close', code: closed.code }).code).toBe('COMFYUI_CONNECTION_ERROR');
  });

  it('stall: events stop after executing; a scoped interrupt ends it with execution_interrupted', async () => {
    const { sim, client } = await setup({ faults: 'stall=1' });
    const ws = await connect(sim);
    const { prompt_id: promptId } = await client.submitPrompt(wf(simpleWorkflow()), { clientId: ws.clientId });
    await ws.waitMessage((m) => m.type === 'executing' && m.data.node === '1', 'executing');
    expect((await client.getQueue()).queue_running[0]?.[1]).toBe(promptId);
    await client.interrupt(promptId);
    const msg = await ws.waitMessage((m) => m.type === 'execution_interrupted', 'execution_interrupted');
    expect(msg.data).toMatchObject({ prompt_id: promptId, node_id: '1' });
    const entry = (await client.getHistory(promptId))[promptId];
    expect(entry && outcomeFromHistory(entry)?.kind).toBe('interrupted');
  });

  it('crash: WS 1006, then ECONNREFUSED while down, then an empty queue and history', async () => {
    const clock = new ManualClock();
    const { sim, client } = await setup({ faults: 'crash=1', crashDowntimeMs: 1_000, clock });
    const ws = await connect(sim);
    const { prompt_id: promptId } = await client.submitPrompt(wf(simpleWorkflow()), { clientId: ws.clientId });
    expect((await ws.waitClose()).code).toBe(1006);
    const down = await rejection(client.getQueue());
    expect(down).toMatchObject({ kind: 'transport', transportCode: 'ECONNREFUSED' });
    sim.setFaults('');
    clock.advance(1_000);
    await waitUntil(async () => (await client.getPromptStatus().then(() => true, () => false)), 'the restart');
    expect(await client.getQueue()).toEqual({ queue_running: [], queue_pending: [] });
    expect(await client.getHistory(promptId)).toEqual({});
  });

  it('disk_full: execution_error OSError [Errno 28] -> COMFYUI_DISK_FULL', async () => {
    const { sim, client } = await setup({ faults: 'disk_full=1' });
    const ws = await connect(sim);
    await client.submitPrompt(wf(simpleWorkflow()), { clientId: ws.clientId });
    const msg = await ws.waitMessage((m) => m.type === 'execution_error', 'execution_error');
    const data = msg.data as ExecutionErrorData;
    expect(data).toMatchObject({ node_type: 'SaveImage', exception_type: 'OSError' });
    expect(classify({ kind: 'execution_error', data }).code).toBe('COMFYUI_DISK_FULL');
  });

  it('oom: execution_error torch.OutOfMemoryError -> COMFYUI_OOM, node named', async () => {
    const { sim, client } = await setup({ faults: 'oom=1' });
    const ws = await connect(sim);
    await client.submitPrompt(wf(sdWorkflow()), { clientId: ws.clientId });
    const msg = await ws.waitMessage((m) => m.type === 'execution_error', 'execution_error');
    const data = msg.data as ExecutionErrorData;
    const c = classify({ kind: 'execution_error', data });
    expect(c).toMatchObject({ code: 'COMFYUI_OOM', exceptionType: 'torch.OutOfMemoryError', nodeId: data.node_id });
  });

  it('a real OOM from the VRAM model classifies as COMFYUI_OOM too', async () => {
    const { sim, client } = await setup({ vram: '8GiB' });
    const ws = await connect(sim);
    await client.submitPrompt(wf(sdWorkflow({ ckpt: 'sd_xl_base_1.0.safetensors', width: 1024, height: 1024, batch: 8 })), { clientId: ws.clientId });
    const msg = await ws.waitMessage((m) => m.type === 'execution_error', 'execution_error');
    expect(classify({ kind: 'execution_error', data: msg.data }).code).toBe('COMFYUI_OOM');
  });

  it('missing_model: a 400 whose validation names the loader -> COMFYUI_MODEL_MISSING', async () => {
    const { client } = await setup({ faults: 'missing_model=1' });
    const err = await rejection(client.submitPrompt(wf(sdWorkflow())));
    expect(err).toMatchObject({ kind: 'http', status: 400 });
    expect(err.validation?.type).toBe('prompt_outputs_failed_validation');
    expect(err.validation?.nodeErrors[0]).toMatchObject({ nodeId: '4', classType: 'CheckpointLoaderSimple' });
    const c = classify(err);
    expect(c.code).toBe('COMFYUI_MODEL_MISSING');
    expect(c.missingModels?.[0]).toMatchObject({ name: 'v1-5-pruned-emaonly.ckpt' });
  });

  it('missing_node: a 400 invalid_prompt -> COMFYUI_MISSING_NODE', async () => {
    const { client } = await setup({ faults: 'missing_node=1' });
    const err = await rejection(client.submitPrompt(wf(simpleWorkflow())));
    expect(err.validation).toMatchObject({ type: 'invalid_prompt', message: 'Cannot execute because node EmptyImage does not exist.' });
    const c = classify(err);
    expect(c.code).toBe('COMFYUI_MISSING_NODE');
    expect(c.missingNodeTypes).toEqual(['EmptyImage']);
  });
});
