/**
 * A guard job seen through ComfyUI's eyes: queue tuples, history entries and WebSocket messages in
 * the shapes stock ComfyUI clients parse (see shared/comfyui-protocol.md §1, §3, §4).
 */
import type { ApiWorkflow, HistoryEntry, NodeOutput, QueueItem, WsMessage } from '../../comfy/types.js';
import type { JobRecord } from '../../jobs/types.js';
import type { CompatEntry } from './registry.js';

/** Nodes no other node reads from: the workflow's outputs, without needing `/object_info`. */
export function sinkNodes(workflow: ApiWorkflow): string[] {
  const read = new Set<string>();
  for (const node of Object.values(workflow)) {
    for (const v of Object.values(node.inputs ?? {})) {
      if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'number') read.add(v[0]);
    }
  }
  return Object.keys(workflow).filter((id) => !read.has(id));
}

/** `[number, prompt_id, prompt, extra_data, outputs_to_execute]`. */
export function queueItem(job: JobRecord, entry: CompatEntry): QueueItem {
  return [entry.number, entry.promptId, job.workflow, entry.clientId ? { client_id: entry.clientId } : {}, sinkNodes(job.workflow)];
}

/** The job's output files grouped per node, as ComfyUI's UI outputs (`{ images: [...] }`). */
export function nodeOutputs(job: JobRecord): Record<string, NodeOutput> {
  const out: Record<string, NodeOutput> = {};
  for (const o of job.outputs) {
    const node = (out[o.node] ??= { images: [] });
    node.images!.push({ filename: o.filename, subfolder: o.subfolder ?? '', type: o.type });
  }
  return out;
}

/** comfyguard's own facts about a finished job, sent as an extra `comfyguard` field ComfyUI clients ignore. */
export function comfyguardInfo(job: JobRecord): Record<string, unknown> {
  const last = job.attempts.at(-1);
  const changes = last?.changes ?? [];
  return {
    job_id: job.id,
    attempts: job.attempts.length,
    recovered: job.status === 'completed' && job.attempts.length > 1,
    // The result differs from what was asked for: degraded quality or inputs a recovery changed.
    degraded: job.degraded || changes.length > 0 ? { level: job.degraded?.level ?? null, factor: job.degraded?.factor ?? null, changes } : null,
  };
}

/**
 * The terminal message of a job, as ComfyUI writes it last in the history and sends on the socket.
 * `raw` is ComfyUI's own terminal message of the final attempt, when there was one: its words are
 * kept and comfyguard's code, category and hint ride along as extra fields.
 */
export function terminalMessage(job: JobRecord, promptId: string, raw?: WsMessage): WsMessage {
  const timestamp = job.endedAt ?? job.updatedAt;
  const extra = { comfyguard: comfyguardInfo(job) };
  if (job.status === 'completed') {
    const data = raw?.type === 'execution_success' ? raw.data : { timestamp };
    return { type: 'execution_success', data: { ...data, prompt_id: promptId, ...extra } };
  }
  if (job.status === 'cancelled') {
    const data = raw?.type === 'execution_interrupted' ? raw.data : { node_id: '', node_type: '', executed: [], timestamp };
    return { type: 'execution_interrupted', data: { ...data, prompt_id: promptId, ...extra } };
  }
  const err = job.error;
  const guardFields = {
    code: err?.code ?? (job.status === 'timed_out' ? 'COMFYUI_TIMEOUT' : 'INTERNAL_ERROR'),
    category: err?.category ?? null,
    hint: err?.hint ?? null,
  };
  if (raw?.type === 'execution_error') {
    return { type: 'execution_error', data: { ...raw.data, prompt_id: promptId, ...guardFields, ...extra } };
  }
  // No ComfyUI error to relay (a crash, a timeout, a failure before the prompt ran): comfyguard's words.
  return {
    type: 'execution_error',
    data: {
      prompt_id: promptId,
      node_id: err?.nodeId ?? '',
      node_type: err?.nodeType ?? '',
      executed: [],
      exception_type: guardFields.code,
      exception_message: err ? `${err.message}\n${err.hint}` : `The job ended as ${job.status}.`,
      traceback: [],
      current_inputs: {},
      current_outputs: [],
      timestamp,
      ...guardFields,
      ...extra,
    },
  };
}

/** A history entry (`/history/{id}`) for a terminal job. */
export function historyEntry(job: JobRecord, entry: CompatEntry, raw?: WsMessage): HistoryEntry {
  const start = job.startedAt ?? job.createdAt;
  const last = terminalMessage(job, entry.promptId, raw);
  const outputs = nodeOutputs(job);
  const meta: NonNullable<HistoryEntry['meta']> = {};
  for (const node of Object.keys(outputs)) meta[node] = { node_id: node, display_node: node, parent_node: null, real_node_id: node };
  return {
    prompt: queueItem(job, entry),
    outputs,
    status: {
      status_str: job.status === 'completed' ? 'success' : 'error',
      completed: job.status === 'completed',
      messages: [
        ['execution_start', { prompt_id: entry.promptId, timestamp: start }],
        ['execution_cached', { nodes: [], prompt_id: entry.promptId, timestamp: start }],
        [last.type, last.data as unknown as Record<string, unknown>],
      ],
    },
    meta,
  };
}
