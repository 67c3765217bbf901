/**
 * zod schemas for every REST response and WebSocket message in `types.ts`, typed against those
 * interfaces so the two cannot drift. Lenient where real servers vary (extra keys pass through,
 * timestamps and descriptive fields optional), strict on the fields decisions are made from
 * (prompt ids, node ids, exception type and message, queue counts, output_node).
 */
import { z } from 'zod';
import type {
  ApiWorkflow,
  DeviceStats,
  ExecutionErrorData,
  ExecutionInterruptedData,
  HistoryEntry,
  HistoryMap,
  HistoryMessage,
  NodeDefinition,
  NodeErrorEntry,
  NodeInputValue,
  NodeOutput,
  NodeValidationError,
  ObjectInfo,
  OutputFileRef,
  ProgressNodeState,
  PromptResponse,
  QueueItem,
  QueueState,
  StatusData,
  SystemStats,
  UploadResult,
  WorkflowNode,
  WsMessage,
  WsMessageType,
} from './types.js';

type DataOf<K extends WsMessageType> = Extract<WsMessage, { type: K }>['data'];

/** Node ids are strings on the wire; a few tools send numbers, which the server `str()`s. */
const nodeId: z.ZodType<string, unknown> = z.union([z.string(), z.number().transform(String)]);
const record = z.record(z.string(), z.unknown());
const optionalTimestamp = z.number().optional();

// ---------------------------------------------------------------------------
// Workflow
// ---------------------------------------------------------------------------

const nodeInputValue: z.ZodType<NodeInputValue> = z.union([
  z.string(),
  z.number(),
  z.boolean(),
  z.null(),
  z.array(z.unknown()),
  record,
]);

/** One API-format node. `class_type` is required (the server rejects nodes without it). */
export const workflowNodeSchema: z.ZodType<WorkflowNode> = z.looseObject({
  class_type: z.string(),
  inputs: z.record(z.string(), nodeInputValue),
  _meta: z.looseObject({ title: z.string().optional() }).optional(),
});

/** An API-format workflow: node id -> node. */
export const apiWorkflowSchema: z.ZodType<ApiWorkflow> = z.record(z.string(), workflowNodeSchema);

// ---------------------------------------------------------------------------
// POST /prompt
// ---------------------------------------------------------------------------

export const nodeValidationErrorSchema: z.ZodType<NodeValidationError> = z.looseObject({
  type: z.string(),
  message: z.string(),
  details: z.string().catch(''),
  extra_info: record.optional(),
});

export const nodeErrorEntrySchema: z.ZodType<NodeErrorEntry> = z.looseObject({
  errors: z.array(nodeValidationErrorSchema),
  dependent_outputs: z.array(nodeId).catch([]),
  class_type: z.string().catch(''),
});

/** Old servers send `[]` for "no node errors". */
const nodeErrorsSchema: z.ZodType<Record<string, NodeErrorEntry>> = z.preprocess(
  (v) => (Array.isArray(v) && v.length === 0 ? {} : v),
  z.record(z.string(), nodeErrorEntrySchema),
);

export const promptResponseSchema: z.ZodType<PromptResponse> = z.looseObject({
  prompt_id: nodeId,
  number: z.number(),
  node_errors: nodeErrorsSchema.optional().transform((v) => v ?? {}),
});

// ---------------------------------------------------------------------------
// Queue and history
// ---------------------------------------------------------------------------

/** `[number, prompt_id, graph, extra_data, outputs]`; extra trailing elements from newer servers are dropped. */
export const queueItemSchema: z.ZodType<QueueItem> = z.preprocess(
  (v) => (Array.isArray(v) && v.length > 5 ? v.slice(0, 5) : v),
  z.tuple([z.number(), nodeId, apiWorkflowSchema, record, z.array(nodeId)]),
);

export const queueStateSchema: z.ZodType<QueueState> = z.looseObject({
  queue_running: z.array(queueItemSchema),
  queue_pending: z.array(queueItemSchema),
});

export const outputFileRefSchema: z.ZodType<OutputFileRef> = z.looseObject({
  filename: z.string(),
  subfolder: z.string().catch(''),
  type: z.string().catch('output'),
});

export const nodeOutputSchema: z.ZodType<NodeOutput> = z.looseObject({
  images: z.array(outputFileRefSchema).optional(),
});

const historyMessageSchema: z.ZodType<HistoryMessage> = z.tuple([z.string(), record]);

export const historyEntrySchema: z.ZodType<HistoryEntry> = z.looseObject({
  prompt: queueItemSchema,
  outputs: z.record(z.string(), nodeOutputSchema),
  status: z
    .looseObject({
      status_str: z.string(),
      completed: z.boolean(),
      messages: z.array(historyMessageSchema),
    })
    .optional(),
  meta: z
    .record(
      z.string(),
      z.looseObject({
        node_id: nodeId,
        display_node: nodeId,
        parent_node: nodeId.nullable().catch(null),
        real_node_id: nodeId,
      }),
    )
    .optional(),
});

export const historyMapSchema: z.ZodType<HistoryMap> = z.record(z.string(), historyEntrySchema);

// ---------------------------------------------------------------------------
// Server information
// ---------------------------------------------------------------------------

const deviceStatsSchema: z.ZodType<DeviceStats> = z.looseObject({
  name: z.string(),
  type: z.string(),
  index: z.number().nullable().catch(null),
  vram_total: z.number(),
  vram_free: z.number(),
  torch_vram_total: z.number().catch(0),
  torch_vram_free: z.number().catch(0),
});

export const systemStatsSchema: z.ZodType<SystemStats> = z.looseObject({
  system: z.looseObject({
    os: z.string().catch(''),
    ram_total: z.number().optional(),
    ram_free: z.number().optional(),
    comfyui_version: z.string().optional(),
    python_version: z.string().optional(),
    pytorch_version: z.string().optional(),
    embedded_python: z.boolean().optional(),
    argv: z.array(z.string()).optional(),
  }),
  devices: z.array(deviceStatsSchema),
});

const inputSpecMap = z.record(z.string(), z.array(z.unknown()));

export const nodeDefinitionSchema: z.ZodType<NodeDefinition> = z.looseObject({
  input: z.looseObject({
    required: inputSpecMap.optional(),
    optional: inputSpecMap.optional(),
    hidden: record.optional(),
  }),
  input_order: z
    .looseObject({
      required: z.array(z.string()).optional(),
      optional: z.array(z.string()).optional(),
      hidden: z.array(z.string()).optional(),
    })
    .optional(),
  output: z.array(z.string()),
  output_is_list: z.array(z.boolean()).catch([]),
  output_name: z.array(z.string()).catch([]),
  name: z.string(),
  display_name: z.string().catch(''),
  description: z.string().catch(''),
  python_module: z.string().catch(''),
  category: z.string().catch(''),
  output_node: z.boolean(),
  // V3 nodes send null for outputs without a tooltip.
  output_tooltips: z.array(z.string().nullable()).optional(),
  deprecated: z.boolean().optional(),
  experimental: z.boolean().optional(),
  api_node: z.boolean().optional(),
});

/** `GET /object_info` and `GET /object_info/{class}` (`{}` for an unknown class). */
export const objectInfoSchema: z.ZodType<ObjectInfo> = z.record(z.string(), nodeDefinitionSchema);

export const promptStatusSchema: z.ZodType<{ exec_info: { queue_remaining: number } }> = z.looseObject({
  exec_info: z.looseObject({ queue_remaining: z.number() }),
});

export const stringListSchema: z.ZodType<string[]> = z.array(z.string());

export const uploadResultSchema: z.ZodType<UploadResult> = z.looseObject({
  name: z.string(),
  subfolder: z.string().catch(''),
  type: z.string().catch('input'),
});

/** `GET /features` (0.3.45+). */
export interface ServerFeatures {
  supports_preview_metadata?: boolean;
  max_upload_size?: number;
  [k: string]: unknown;
}

export const serverFeaturesSchema: z.ZodType<ServerFeatures> = z.looseObject({
  supports_preview_metadata: z.boolean().optional(),
  max_upload_size: z.number().optional(),
});

// ---------------------------------------------------------------------------
// WebSocket messages (the `data` of each known type)
// ---------------------------------------------------------------------------

const statusDataSchema: z.ZodType<StatusData> = z.looseObject({
  status: z.looseObject({ exec_info: z.looseObject({ queue_remaining: z.number() }) }),
  sid: z.string().optional(),
});

const progressNodeStateSchema: z.ZodType<ProgressNodeState> = z.looseObject({
  value: z.number(),
  max: z.number(),
  state: z.string(),
  node_id: nodeId,
  prompt_id: z.string(),
  display_node_id: nodeId.nullable().optional(),
  parent_node_id: nodeId.nullable().optional(),
  real_node_id: nodeId.nullable().optional(),
});

/**
 * Terminal payloads must not turn into "unknown" over a missing detail field: only what a decision
 * reads (prompt, node, exception type and message) is required; the rest defaults.
 */
export const executionErrorDataSchema: z.ZodType<ExecutionErrorData> = z.looseObject({
  prompt_id: z.string(),
  node_id: nodeId,
  node_type: z.string().catch(''),
  executed: z.array(nodeId).catch([]),
  exception_message: z.string(),
  exception_type: z.string(),
  traceback: z.array(z.string()).catch([]),
  current_inputs: z.union([record, z.array(z.unknown())]).catch({}),
  current_outputs: z.array(z.unknown()).catch([]),
  timestamp: optionalTimestamp,
});

export const executionInterruptedDataSchema: z.ZodType<ExecutionInterruptedData> = z.looseObject({
  prompt_id: z.string(),
  node_id: nodeId,
  node_type: z.string().catch(''),
  executed: z.array(nodeId).catch([]),
  timestamp: optionalTimestamp,
});

const promptEventSchema = z.looseObject({ prompt_id: z.string(), timestamp: optionalTimestamp });

/** Schema of the `data` of every modelled WebSocket message type. */
export const wsDataSchemas: { readonly [K in WsMessageType]: z.ZodType<DataOf<K>> } = {
  status: statusDataSchema,
  execution_start: promptEventSchema,
  execution_cached: z.looseObject({
    nodes: z.array(nodeId),
    prompt_id: z.string(),
    timestamp: optionalTimestamp,
  }),
  executing: z.looseObject({
    node: nodeId.nullable(),
    display_node: nodeId.optional(),
    prompt_id: z.string().optional(),
  }),
  progress: z.looseObject({
    value: z.number(),
    max: z.number(),
    prompt_id: z.string().optional(),
    node: nodeId.nullable().optional(),
  }),
  progress_state: z.looseObject({
    prompt_id: z.string(),
    nodes: z.record(z.string(), progressNodeStateSchema),
  }),
  executed: z.looseObject({
    node: nodeId,
    display_node: nodeId.optional(),
    output: nodeOutputSchema.nullable(),
    prompt_id: z.string(),
  }),
  execution_success: promptEventSchema,
  execution_error: executionErrorDataSchema,
  execution_interrupted: executionInterruptedDataSchema,
  feature_flags: record,
};

/** True when `type` is one of the WebSocket message types we model. */
export function isModelledWsType(type: string): type is WsMessageType {
  return Object.prototype.hasOwnProperty.call(wsDataSchemas, type);
}

/** One-line rendering of a zod error: the first issues with their paths. */
export function describeIssues(error: z.ZodError, max = 3): string {
  const parts = error.issues.slice(0, max).map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`);
  const more = error.issues.length > max ? ` (+${error.issues.length - max} more)` : '';
  return parts.join('; ') + more;
}
