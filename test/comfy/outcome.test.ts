import { describe, expect, it } from 'vitest';
import { parseWsMessage } from '../../src/comfy/messages.js';
import { isTerminalWsMessage, outcomeFromHistory } from '../../src/comfy/outcome.js';
import { historyMapSchema } from '../../src/comfy/schemas.js';
import type { HistoryEntry, WsMessage } from '../../src/comfy/types.js';
import { httpExchanges, loadCapture, wsScript } from '../support/capture-server.js';

/** The validated history entry recorded for `GET /history/{id}` under `label` (or the first). */
function recordedEntry(capture: string, label?: string): HistoryEntry {
  const e = httpExchanges(loadCapture(capture), { method: 'GET', path: /^\/history\/[^?]/, ...(label ? { label } : {}) })[0];
  if (!e) throw new Error(`no history entry in ${capture}`);
  const map = historyMapSchema.parse(e.response_body);
  const entry = Object.values(map)[0];
  if (!entry) throw new Error(`empty history in ${capture}`);
  return entry;
}

function known(value: unknown): WsMessage {
  const m = parseWsMessage(value);
  if (m.type === 'unknown') throw new Error(`not a known message: ${m.issue}`);
  return m;
}

describe('outcomeFromHistory', () => {
  it('reads success with the outputs from a recorded entry', () => {
    const entry = recordedEntry('ok_simple');
    const outcome = outcomeFromHistory(entry);
    expect(outcome?.kind).toBe('success');
    expect(outcome?.outputs['3']?.images?.[0]?.filename).toBe('capture_ok_00001_.png');
  });

  it('reads a recorded execution error with its exception details', () => {
    const outcome = outcomeFromHistory(recordedEntry('history_errored', 'errored'));
    expect(outcome?.kind).toBe('error');
    if (outcome?.kind !== 'error') return;
    expect(outcome.error).toMatchObject({ node_id: '2', node_type: 'ImageToMask', exception_type: 'IndexError' });
    expect(outcome.error.exception_message).toBe('index 3 is out of bounds for dimension 3 with size 3\n');
    expect(outcome.error.traceback.length).toBeGreaterThan(0);
  });

  it('reads a recorded interruption, although its status_str is "error" like a failure', () => {
    const entry = recordedEntry('interrupted');
    expect(entry.status?.status_str).toBe('error');
    const outcome = outcomeFromHistory(entry);
    expect(outcome).toMatchObject({ kind: 'interrupted', interrupted: { node_id: '12', node_type: 'ImageBlur' } });
  });

  it('decides from the last message, not status_str (a staging error says "success")', () => {
    const ok = recordedEntry('ok_simple');
    const lying: HistoryEntry = {
      ...ok,
      status: {
        status_str: 'success',
        completed: true,
        messages: [
          ['execution_start', { prompt_id: ok.prompt[1], timestamp: 1 }],
          ['execution_error', { prompt_id: ok.prompt[1], node_id: '5', node_type: 'X', exception_message: 'Dependency cycle detected', exception_type: 'graph.DependencyCycleError', traceback: [], current_inputs: [], current_outputs: [], executed: [] }],
        ],
      },
    };
    expect(outcomeFromHistory(lying)).toMatchObject({ kind: 'error', error: { exception_type: 'graph.DependencyCycleError', current_inputs: [] } });
  });

  it('without a status block (old servers) decides from outputs; with no terminal message it does not guess', () => {
    const ok = recordedEntry('ok_simple');
    const { status: _status, ...noStatus } = ok;
    expect(outcomeFromHistory(noStatus)?.kind).toBe('success');
    expect(outcomeFromHistory({ ...noStatus, outputs: {} })).toBeUndefined();
    expect(outcomeFromHistory({ ...ok, status: { status_str: 'success', completed: true, messages: [['execution_start', {}]] } })).toBeUndefined();
  });

  it('still reports an error whose recorded payload lacks detail fields', () => {
    const ok = recordedEntry('ok_simple');
    const sparse: HistoryEntry = { ...ok, status: { status_str: 'error', completed: false, messages: [['execution_error', { exception_type: 'RuntimeError' }]] } };
    expect(outcomeFromHistory(sparse)).toMatchObject({ kind: 'error', error: { prompt_id: ok.prompt[1], exception_type: 'RuntimeError', exception_message: '' } });
  });
});

describe('isTerminalWsMessage', () => {
  it('finds exactly the terminal events of recorded runs', () => {
    for (const name of ['ok_simple', 'exec_error_runtime', 'interrupted']) {
      const frames = wsScript(loadCapture(name)).flatMap((e) => (e.kind === 'ws' ? [known(e.data)] : []));
      const promptIds = new Set(frames.flatMap((m) => ('prompt_id' in m.data && typeof m.data.prompt_id === 'string' ? [m.data.prompt_id] : [])));
      for (const id of promptIds) {
        const terminal = frames.filter((m) => isTerminalWsMessage(m, id)).map((m) => (m.type === 'executing' ? 'end_marker' : m.type));
        expect(terminal.at(-1)).toBe('end_marker');
        expect(terminal.length).toBe(2);
        expect(['execution_success', 'execution_error', 'execution_interrupted']).toContain(terminal[0]);
      }
    }
  });

  it('ignores ExecutionBlocked errors, other prompts, and executing without prompt_id', () => {
    const blocked = known({ type: 'execution_error', data: { prompt_id: 'p', node_id: '3', node_type: 'X', executed: [], exception_message: 'Execution Blocked: no', exception_type: 'ExecutionBlocked', traceback: [], current_inputs: [], current_outputs: [] } });
    expect(isTerminalWsMessage(blocked, 'p')).toBe(false);
    expect(isTerminalWsMessage(known({ type: 'execution_success', data: { prompt_id: 'other' } }), 'p')).toBe(false);
    expect(isTerminalWsMessage(known({ type: 'executing', data: { node: null } }), 'p')).toBe(false);
    expect(isTerminalWsMessage(known({ type: 'executing', data: { node: '11' } }), 'p')).toBe(false);
    expect(isTerminalWsMessage(known({ type: 'executing', data: { node: null, prompt_id: 'p' } }), 'p')).toBe(true);
  });
});
