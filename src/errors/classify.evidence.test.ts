/**
 * Every evidence kind, with the real shapes recorded from ComfyUI 0.3.64 (test/comfy/captures, a
 * vendored copy of ../shared/comfyui-captures) and the ComfyRequestError the protocol client throws.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ComfyRequestError } from '../comfy/errors.js';
import { classify } from './classify.js';
import { ComfyGuardError } from './guard-error.js';

interface CaptureEvent {
  kind: string;
  method?: string;
  path?: string;
  label?: string;
  status?: number;
  response_body?: unknown;
  response_body_text?: string;
  error?: { name: string; message: string; cause_code?: string; cause_message?: string };
  data?: { type: string; data: unknown };
  code?: number;
  reason?: string;
}

function capture(name: string): CaptureEvent[] {
  const json = JSON.parse(readFileSync(new URL(`../../test/comfy/captures/${name}.json`, import.meta.url), 'utf8')) as { events: CaptureEvent[] };
  return json.events;
}

const httpErrors = (name: string) => capture(name).filter((e) => e.kind === 'http' && (e.status ?? 0) >= 400);
const wsMessages = (name: string, type: string) => capture(name).filter((e) => e.kind === 'ws' && e.data?.type === type);

describe('captured ComfyUI responses', () => {
  it('classifies each captured POST /prompt 400 by its validation body', () => {
    const expected: Array<[string, string[]]> = [
      ['invalid_missing_node', ['COMFYUI_MISSING_NODE', 'COMFYUI_WORKFLOW_ERROR']],
      ['invalid_value_not_in_list', ['COMFYUI_MODEL_MISSING', 'COMFYUI_INVALID_PARAMETERS']],
      ['invalid_out_of_range', Array(6).fill('COMFYUI_INVALID_PARAMETERS') as string[]],
      ['invalid_missing_input', ['COMFYUI_INVALID_PARAMETERS', 'COMFYUI_WORKFLOW_ERROR', 'COMFYUI_WORKFLOW_ERROR', 'COMFYUI_WORKFLOW_ERROR']],
      ['invalid_no_outputs', ['COMFYUI_WORKFLOW_ERROR', 'COMFYUI_WORKFLOW_ERROR']],
      ['partial_targets', ['COMFYUI_WORKFLOW_ERROR', 'COMFYUI_WORKFLOW_ERROR']],
    ];
    for (const [file, codes] of expected) {
      const got = httpErrors(file).map((e) => classify({ kind: 'validation', body: e.response_body }).code);
      expect(got, file).toEqual(codes);
      // The same responses as HTTP evidence (what a client that kept status and body passes on).
      const viaHttp = httpErrors(file).map((e) => classify({ kind: 'http', status: e.status!, body: e.response_body, method: e.method!, path: e.path! }).code);
      expect(viaHttp, `${file} as http`).toEqual(codes);
    }
  });

  it('names the node, input and model of the captured missing checkpoint', () => {
    const [missing] = httpErrors('invalid_value_not_in_list');
    const c = classify({ kind: 'validation', body: missing!.response_body });
    expect(c).toMatchObject({ code: 'COMFYUI_MODEL_MISSING', nodeId: '1', nodeType: 'CheckpointLoaderSimple' });
    expect(c.missingModels).toEqual([{ name: 'missing_model.safetensors', folder: 'checkpoints', nodeId: '1', input: 'ckpt_name' }]);
    expect(c.message).toMatch(/missing_model\.safetensors/);
  });

  it('classifies the malformed-body text 500s as server errors and the no_prompt 400s as workflow errors', () => {
    const got = httpErrors('invalid_body').map((e) =>
      classify({ kind: 'http', status: e.status!, method: e.method!, path: e.path!, ...(e.response_body_text ? { bodyText: e.response_body_text } : { body: e.response_body }) }).code,
    );
    expect(got).toEqual(['COMFYUI_SERVER_ERROR', 'COMFYUI_SERVER_ERROR', 'COMFYUI_WORKFLOW_ERROR', 'COMFYUI_WORKFLOW_ERROR', 'COMFYUI_SERVER_ERROR']);
  });

  it('classifies the captured WebSocket execution_error payloads (runtime error and CPU OOM)', () => {
    for (const e of wsMessages('exec_error_runtime', 'execution_error')) {
      const c = classify({ kind: 'execution_error', data: e.data!.data });
      expect(c).toMatchObject({ code: 'COMFYUI_GENERATION_ERROR', nodeId: '2', nodeType: 'ImageToMask', exceptionType: 'IndexError', retryable: true });
      expect(c.message).toMatch(/index 3 is out of bounds/);
      expect(c.message).not.toMatch(/execution\.py|File "/);
    }
    const [oom] = wsMessages('exec_error_oom', 'execution_error');
    expect(classify({ kind: 'execution_error', data: oom!.data!.data })).toMatchObject({ code: 'COMFYUI_OOM', category: 'recoverable', nodeType: 'EmptyImage' });
  });

  it('classifies the captured interrupts as interruptions', () => {
    const events = wsMessages('interrupted', 'execution_interrupted');
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) expect(classify({ kind: 'interrupted', data: e.data!.data, byOwner: false })).toMatchObject({ code: 'COMFYUI_INTERRUPTED', nodeType: 'ImageBlur' });
  });

  it('classifies the captured history entries by their last message, not status_str', () => {
    const entries = capture('history_errored').filter((e) => e.kind === 'http' && (e.label === 'errored' || e.label === 'interrupted'));
    const got = entries.map((e) => classify({ kind: 'history', entry: e.response_body }).code);
    expect(got).toEqual(['COMFYUI_GENERATION_ERROR', 'COMFYUI_GENERATION_ERROR', 'COMFYUI_OOM', 'COMFYUI_INTERRUPTED', 'COMFYUI_INTERRUPTED']);
    // A staging error can leave status_str "success" with an execution_error last (comfyui-protocol.md 4).
    const lying = { status: { status_str: 'success', completed: true, messages: [['execution_start', {}], ['execution_error', { exception_type: 'graph.DependencyCycleError', exception_message: 'Dependency cycle detected', node_id: '4', node_type: 'Reroute', traceback: [] }]] }, outputs: {} };
    expect(classify({ kind: 'history', entry: lying })).toMatchObject({ code: 'COMFYUI_WORKFLOW_ERROR', evidenceKind: 'history' });
  });

  it('classifies the restart capture: the 1006 close and every refused request are connection errors', () => {
    const events = capture('server_restart');
    const closes = events.filter((e) => e.kind === 'ws_close' && e.code === 1006);
    expect(closes.length).toBeGreaterThan(0);
    for (const e of closes) expect(classify({ kind: 'ws_close', code: e.code!, reason: e.reason ?? '' }).code).toBe('COMFYUI_CONNECTION_ERROR');
    const refused = events.filter((e) => e.kind === 'http' && e.error);
    expect(refused.length).toBeGreaterThan(0);
    for (const e of refused) {
      const err = new TypeError(e.error!.message, { cause: Object.assign(new Error(e.error!.cause_message), { code: e.error!.cause_code }) });
      expect(classify({ kind: 'thrown', error: err }).code).toBe('COMFYUI_CONNECTION_ERROR');
      expect(classify({ kind: 'transport', code: e.error!.cause_code!, message: e.error!.cause_message! }).code).toBe('COMFYUI_CONNECTION_ERROR');
    }
  });
});

describe('ComfyRequestError (what the protocol client throws)', () => {
  const base = { server: 'gpu-1', method: 'POST', path: '/prompt' };
  it.each<[string, ConstructorParameters<typeof ComfyRequestError>[0], string]>([
    ['transport refused', { ...base, kind: 'transport', message: 'connect ECONNREFUSED', transportCode: 'ECONNREFUSED' }, 'COMFYUI_CONNECTION_ERROR'],
    ['transport without a code', { ...base, kind: 'transport', message: 'fetch failed' }, 'COMFYUI_CONNECTION_ERROR'],
    ['our request timeout', { ...base, kind: 'timeout', message: 'timed out after 30000 ms', timeoutMs: 30_000 }, 'COMFYUI_TIMEOUT'],
    ['caller abort', { ...base, kind: 'aborted', message: 'aborted' }, 'COMFYUI_INTERRUPTED'],
    ['abort by a timeout signal', { ...base, kind: 'aborted', message: 'aborted', cause: new DOMException('timeout', 'TimeoutError') }, 'COMFYUI_TIMEOUT'],
    ['http 403 (origin check)', { ...base, kind: 'http', message: 'HTTP 403', status: 403, bodyText: '' }, 'COMFYUI_AUTH_ERROR'],
    ['http 413', { ...base, kind: 'http', message: 'HTTP 413', status: 413, bodyText: 'Maximum request body size 104857600 exceeded' }, 'COMFYUI_INVALID_PARAMETERS'],
    ['http 429', { ...base, kind: 'http', message: 'HTTP 429', status: 429, headers: { 'retry-after': '7' } }, 'COMFYUI_OVERLOADED'],
    ['http 503', { ...base, kind: 'http', message: 'HTTP 503', status: 503, bodyText: 'Service Unavailable' }, 'COMFYUI_SERVER_ERROR'],
    [
      'http 400 validation',
      { ...base, kind: 'http', message: 'HTTP 400', status: 400, body: { error: { type: 'prompt_no_outputs', message: 'Prompt has no outputs', details: '', extra_info: {} }, node_errors: {} } },
      'COMFYUI_WORKFLOW_ERROR',
    ],
    ['invalid response', { ...base, kind: 'invalid_response', message: 'body did not match', status: 200, bodyText: '<html>' }, 'COMFYUI_SERVER_ERROR'],
    ['websocket close', { ...base, kind: 'websocket', message: 'closed', wsCloseCode: 1006, wsCloseReason: '' }, 'COMFYUI_CONNECTION_ERROR'],
    ['websocket upgrade refused (as ComfySocket reports it)', { ...base, path: '/ws', kind: 'http', message: 'WebSocket upgrade refused: HTTP 403', status: 403, bodyText: '' }, 'COMFYUI_AUTH_ERROR'],
    ['websocket handshake refused (ws library text)', { ...base, kind: 'websocket', message: 'Unexpected server response: 403' }, 'COMFYUI_AUTH_ERROR'],
  ])('%s', (_name, init, code) => {
    const err = new ComfyRequestError(init);
    expect(classify(err).code).toBe(code);
    expect(classify({ kind: 'thrown', error: err }).code).toBe(code);
    // Wrapped by someone else: the ComfyRequestError in the cause chain is what counts.
    expect(classify(new Error('submit failed', { cause: err })).code).toBe(code);
  });

  it('keeps Retry-After from the error headers', () => {
    const err = new ComfyRequestError({ kind: 'http', message: 'HTTP 429', status: 429, headers: { 'retry-after': '7' } });
    expect(classify(err).retryAfterMs).toBe(7000);
  });
});

describe('other evidence kinds', () => {
  it('passes a ComfyGuardError through with its own code, even as the cause of a wrapper', () => {
    const g = new ComfyGuardError('COMFYUI_DISK_FULL', { server: 'gpu-1' });
    expect(classify(g)).toMatchObject({ code: 'COMFYUI_DISK_FULL', category: 'fatal', rule: 'passthrough.guard-error' });
    expect(classify(new Error('wrapped', { cause: g })).code).toBe('COMFYUI_DISK_FULL');
  });

  it('uses the structured timeout phase: stall is STALLED, the others TIMEOUT', () => {
    expect(classify({ kind: 'timeout', phase: 'stall' }).code).toBe('COMFYUI_STALLED');
    for (const phase of ['request', 'queue', 'generation', 'connect'] as const) expect(classify({ kind: 'timeout', phase }).code).toBe('COMFYUI_TIMEOUT');
  });

  it('classifies WebSocket close codes', () => {
    expect(classify({ kind: 'ws_close', code: 1006 }).code).toBe('COMFYUI_CONNECTION_ERROR');
    expect(classify({ kind: 'ws_close', code: 1008, reason: 'policy' }).code).toBe('COMFYUI_AUTH_ERROR');
    expect(classify({ kind: 'ws_close', code: 1011 }).code).toBe('COMFYUI_SERVER_ERROR');
    expect(classify({ kind: 'ws_close', code: 1013 }).code).toBe('COMFYUI_OVERLOADED');
    expect(classify({ kind: 'ws_close', code: 1009 }).code).toBe('COMFYUI_INVALID_PARAMETERS');
  });

  it('treats a text-kind line and a bare corpus-style object the same', () => {
    const line = { id: 'x', where: 'execution_error', exception_type: 'torch.OutOfMemoryError', message: 'Allocation on device', http_status: null };
    expect(classify(line).code).toBe('COMFYUI_OOM');
    expect(classify({ kind: 'text', where: 'execution_error', exceptionType: 'torch.OutOfMemoryError', message: 'Allocation on device' }).code).toBe('COMFYUI_OOM');
    expect(classify('CUDA error: an illegal memory access was encountered').code).toBe('COMFYUI_GPU_FAULT');
  });

  it('classifies a text line that carries its validation body by the body', () => {
    const body = { error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} }, node_errors: { '2': { class_type: 'LoraLoader', dependent_outputs: [], errors: [{ type: 'value_not_in_list', message: 'Value not in list', details: "lora_name: 'x.safetensors' not in []", extra_info: { input_name: 'lora_name', received_value: 'x.safetensors' } }] } } };
    const c = classify({ kind: 'text', where: 'http_response', message: 'Bad Request', httpStatus: 400, body });
    expect(c).toMatchObject({ code: 'COMFYUI_MODEL_MISSING', missingModels: [{ name: 'x.safetensors', folder: 'loras', nodeId: '2', input: 'lora_name' }] });
  });

  it('accepts a 200 response with node_errors (partially accepted prompt) as validation evidence', () => {
    const body = { prompt_id: 'p', number: 1, node_errors: { '5': { class_type: 'SaveImage', dependent_outputs: ['5'], errors: [{ type: 'required_input_missing', message: 'Required input is missing', details: 'images', extra_info: { input_name: 'images' } }] } } };
    // The attempt runner wraps such bodies as a validation failure of the dropped outputs.
    const c = classify({ kind: 'validation', body: { error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} }, node_errors: body.node_errors } });
    expect(c).toMatchObject({ code: 'COMFYUI_INVALID_PARAMETERS', nodeErrors: [{ nodeId: '5', input: 'images', type: 'required_input_missing' }] });
  });
});
