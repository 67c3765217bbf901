/**
 * ComfyUI protocol types, as ComfyUI 0.3.64 speaks them (see shared/comfyui-protocol.md).
 * These are the wire shapes; zod schemas in `schemas.ts` validate data against them at the boundary.
 */

/** A link to another node's output: `[source node id, output slot index]`. */
export type NodeLink = [string, number];

/** One input value of an API-format node: a literal or a link. */
export type NodeInputValue = string | number | boolean | null | NodeLink | unknown[] | Record<string, unknown>;

/** One node of an API-format workflow. */
export interface WorkflowNode {
  class_type: string;
  inputs: Record<string, NodeInputValue>;
  _meta?: { title?: string; [k: string]: unknown };
}

/** An API-format workflow ("prompt"): node id -> node. */
export type ApiWorkflow = Record<string, WorkflowNode>;

/** Body of `POST /prompt`. */
export interface PromptRequest {
  prompt: ApiWorkflow;
  client_id?: string;
  prompt_id?: string;
  extra_data?: Record<string, unknown>;
  number?: number;
  front?: boolean;
  partial_execution_targets?: string[];
}

/** One entry of a validation error list. */
export interface NodeValidationError {
  type: string;
  message: string;
  details: string;
  extra_info?: Record<string, unknown>;
}

/** `node_errors[id]` of a `POST /prompt` response. */
export interface NodeErrorEntry {
  errors: NodeValidationError[];
  dependent_outputs: string[];
  class_type: string;
}

/** 200 body of `POST /prompt`. `node_errors` may be non-empty: failing outputs were dropped. */
export interface PromptResponse {
  prompt_id: string;
  number: number;
  node_errors: Record<string, NodeErrorEntry>;
}

/** 400 body of `POST /prompt`. Old servers send `error` as a plain string. */
export interface PromptErrorBody {
  error: { type: string; message: string; details: string; extra_info: Record<string, unknown> } | string;
  node_errors: Record<string, NodeErrorEntry> | unknown[];
}

/** `[number, prompt_id, graph, extra_data, outputs_to_execute]`. */
export type QueueItem = [number, string, ApiWorkflow, Record<string, unknown>, string[]];

export interface QueueState {
  queue_running: QueueItem[];
  queue_pending: QueueItem[];
}

/** An output file reference inside a node's UI output. */
export interface OutputFileRef {
  filename: string;
  subfolder: string;
  type: 'output' | 'temp' | 'input' | string;
}

/** UI output of one node (`images`, `gifs`, `audio`, `text`, ...). */
export type NodeOutput = Record<string, unknown> & { images?: OutputFileRef[] };

export type HistoryMessage = [string, Record<string, unknown>];

export interface HistoryEntry {
  prompt: QueueItem;
  outputs: Record<string, NodeOutput>;
  status?: { status_str: 'success' | 'error' | string; completed: boolean; messages: HistoryMessage[] };
  meta?: Record<string, { node_id: string; display_node: string; parent_node: string | null; real_node_id: string }>;
}

/** `GET /history` and `GET /history/{id}`: prompt id -> entry; `{}` when unknown or unfinished. */
export type HistoryMap = Record<string, HistoryEntry>;

export interface DeviceStats {
  name: string;
  type: string;
  index: number | null;
  vram_total: number;
  vram_free: number;
  torch_vram_total: number;
  torch_vram_free: number;
}

export interface SystemStats {
  system: {
    os: string;
    ram_total?: number;
    ram_free?: number;
    comfyui_version?: string;
    python_version?: string;
    pytorch_version?: string;
    embedded_python?: boolean;
    argv?: string[];
    [k: string]: unknown;
  };
  devices: DeviceStats[];
}

/** Input spec: `["INT", {min,max,...}]`, `[["a","b"], {...}]` (combo), `["COMBO", {options: [...]}]`, or `["IMAGE"]`. */
export type InputSpec = [unknown, Record<string, unknown>?] | unknown[];

export interface NodeDefinition {
  input: { required?: Record<string, InputSpec>; optional?: Record<string, InputSpec>; hidden?: Record<string, unknown> };
  input_order?: { required?: string[]; optional?: string[]; hidden?: string[] };
  output: string[];
  output_is_list: boolean[];
  output_name: string[];
  name: string;
  display_name: string;
  description: string;
  python_module: string;
  category: string;
  output_node: boolean;
  output_tooltips?: Array<string | null>;
  deprecated?: boolean;
  experimental?: boolean;
  api_node?: boolean;
  [k: string]: unknown;
}

export type ObjectInfo = Record<string, NodeDefinition>;

/** Response of `POST /upload/image`. */
export interface UploadResult {
  name: string;
  subfolder: string;
  type: string;
}

// ---------------------------------------------------------------------------
// WebSocket messages
// ---------------------------------------------------------------------------

export interface StatusData {
  status: { exec_info: { queue_remaining: number } };
  sid?: string;
}

export interface ProgressNodeState {
  value: number;
  max: number;
  state: 'running' | 'finished' | string;
  node_id: string;
  prompt_id: string;
  display_node_id?: string | null;
  parent_node_id?: string | null;
  real_node_id?: string | null;
}

export interface ExecutionErrorData {
  prompt_id: string;
  node_id: string;
  node_type: string;
  executed: string[];
  exception_message: string;
  exception_type: string;
  traceback: string[];
  current_inputs: Record<string, unknown> | unknown[];
  current_outputs: unknown[];
  timestamp?: number;
}

export interface ExecutionInterruptedData {
  prompt_id: string;
  node_id: string;
  node_type: string;
  executed: string[];
  timestamp?: number;
}

/** Every WebSocket text message ComfyUI sends, as a discriminated union on `type`. */
export type WsMessage =
  | { type: 'status'; data: StatusData }
  | { type: 'execution_start'; data: { prompt_id: string; timestamp?: number } }
  | { type: 'execution_cached'; data: { nodes: string[]; prompt_id: string; timestamp?: number } }
  | { type: 'executing'; data: { node: string | null; display_node?: string; prompt_id?: string } }
  | { type: 'progress'; data: { value: number; max: number; prompt_id?: string; node?: string | null } }
  | { type: 'progress_state'; data: { prompt_id: string; nodes: Record<string, ProgressNodeState> } }
  | { type: 'executed'; data: { node: string; display_node?: string; output: NodeOutput | null; prompt_id: string } }
  | { type: 'execution_success'; data: { prompt_id: string; timestamp?: number } }
  | { type: 'execution_error'; data: ExecutionErrorData }
  | { type: 'execution_interrupted'; data: ExecutionInterruptedData }
  | { type: 'feature_flags'; data: Record<string, unknown> };

export type WsMessageType = WsMessage['type'];

/**
 * A text message whose type we do not model (custom nodes send their own), or a known type whose
 * payload failed validation. Passed through so nothing is dropped silently.
 */
export interface UnknownWsMessage {
  type: 'unknown';
  /** The `type` field as sent, if there was one. */
  rawType: string | null;
  data: unknown;
  /** Why it is unknown: an unmodelled type, or the validation issue of a known type. */
  reason: 'unmodelled_type' | 'invalid_payload' | 'not_json';
  issue?: string;
}

/** Decoded binary frame (`[u32 BE event type]...`). */
export type BinaryFrame =
  | { kind: 'preview'; eventType: 1; format: 'jpeg' | 'png' | 'unknown'; formatCode: number; image: Uint8Array }
  | {
      kind: 'preview_with_metadata';
      eventType: 4;
      metadata: {
        node_id?: string;
        prompt_id?: string;
        display_node_id?: string;
        parent_node_id?: string | null;
        real_node_id?: string;
        image_type?: string;
        [k: string]: unknown;
      };
      image: Uint8Array;
    }
  | { kind: 'text'; eventType: 3; nodeId: string; text: string }
  | { kind: 'unknown_binary'; eventType: number; bytes: Uint8Array };

/** Terminal outcome of a prompt, as read from history or the event stream. */
export type PromptOutcome =
  | { kind: 'success'; outputs: Record<string, NodeOutput> }
  | { kind: 'error'; error: ExecutionErrorData; outputs: Record<string, NodeOutput> }
  | { kind: 'interrupted'; interrupted: ExecutionInterruptedData; outputs: Record<string, NodeOutput> };
