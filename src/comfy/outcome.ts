/**
 * Reading a prompt's outcome: from its history entry (the source of truth) and from the
 * WebSocket stream (best effort, tells us when to look at history).
 */
import { executionErrorDataSchema, executionInterruptedDataSchema } from './schemas.js';
import type { HistoryEntry, HistoryMessage, PromptOutcome, WsMessage } from './types.js';

const TERMINAL_HISTORY_TYPES = new Set(['execution_success', 'execution_error', 'execution_interrupted']);

/**
 * The terminal outcome recorded in a history entry, or `undefined` when the entry does not say.
 *
 * The outcome is the LAST terminal message in `status.messages`, never `status_str`: a failure
 * raised while staging a node leaves `status_str: "success"` with an `execution_error` message, and
 * error and interrupt share `status_str: "error"`. Servers before 2024-01 have no status block;
 * then outputs are the only evidence of success (no outputs -> undefined).
 *
 * @example
 * const outcome = outcomeFromHistory(history[promptId]);
 * if (outcome?.kind === 'error') console.log(outcome.error.exception_type);
 */
export function outcomeFromHistory(entry: HistoryEntry): PromptOutcome | undefined {
  const outputs = entry.outputs ?? {};
  if (!entry.status) {
    return Object.keys(outputs).length > 0 ? { kind: 'success', outputs } : undefined;
  }
  const last = lastTerminalMessage(entry.status.messages);
  if (!last) return undefined;
  const [type, data] = last;
  // The payload is a free-form record in history; fill the prompt id from the queue tuple if absent.
  const withId = { prompt_id: entry.prompt[1], ...data };
  if (type === 'execution_success') return { kind: 'success', outputs };
  if (type === 'execution_error') {
    const parsed = executionErrorDataSchema.safeParse(withId);
    const error = parsed.success
      ? parsed.data
      : {
          prompt_id: entry.prompt[1],
          node_id: stringOr(data['node_id'], ''),
          node_type: stringOr(data['node_type'], ''),
          executed: [],
          exception_message: stringOr(data['exception_message'], ''),
          exception_type: stringOr(data['exception_type'], ''),
          traceback: [],
          current_inputs: {},
          current_outputs: [],
        };
    return { kind: 'error', error, outputs };
  }
  const parsed = executionInterruptedDataSchema.safeParse(withId);
  const interrupted = parsed.success
    ? parsed.data
    : { prompt_id: entry.prompt[1], node_id: stringOr(data['node_id'], ''), node_type: stringOr(data['node_type'], ''), executed: [] };
  return { kind: 'interrupted', interrupted, outputs };
}

function lastTerminalMessage(messages: HistoryMessage[]): HistoryMessage | undefined {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m && TERMINAL_HISTORY_TYPES.has(m[0])) return m;
  }
  return undefined;
}

function stringOr(v: unknown, fallback: string): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : fallback;
}

/**
 * True when `msg` ends prompt `promptId` on the event stream: `execution_success`,
 * `execution_interrupted`, `execution_error` unless its `exception_type` is `ExecutionBlocked`
 * (execution continues after those), or the end marker `executing {node: null, prompt_id}`.
 * Messages for other prompts are never terminal for this one.
 */
export function isTerminalWsMessage(msg: WsMessage, promptId: string): boolean {
  switch (msg.type) {
    case 'execution_success':
    case 'execution_interrupted':
      return msg.data.prompt_id === promptId;
    case 'execution_error':
      return msg.data.prompt_id === promptId && msg.data.exception_type !== 'ExecutionBlocked';
    case 'executing':
      // `executing {node}` without prompt_id (sent on reconnect) is never the end marker.
      return msg.data.node === null && msg.data.prompt_id === promptId;
    default:
      return false;
  }
}
