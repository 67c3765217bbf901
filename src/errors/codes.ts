/**
 * The one registry of error codes (DESIGN.md "Error taxonomy"). Codes are stable and never reused;
 * a test keeps this registry, the `ErrorCode` union and the README's error table in sync.
 */

/** transient: retry as is; recoverable: retry after a change; permanent: fail now; fatal: stop and alert. */
export const ERROR_CATEGORIES = ['transient', 'recoverable', 'permanent', 'fatal'] as const;
export type ErrorCategory = (typeof ERROR_CATEGORIES)[number];

/** Every error code, stable and never reused. */
export const ERROR_CODES = [
  'COMFYUI_CONNECTION_ERROR',
  'COMFYUI_TIMEOUT',
  'COMFYUI_SERVER_ERROR',
  'COMFYUI_OVERLOADED',
  'COMFYUI_STALLED',
  'COMFYUI_INTERRUPTED',
  'COMFYUI_OOM',
  'COMFYUI_MODEL_MISSING',
  'COMFYUI_MISSING_NODE',
  'COMFYUI_DEPENDENCY_ERROR',
  'COMFYUI_GPU_FAULT',
  'COMFYUI_GENERATION_ERROR',
  'COMFYUI_OUTPUT_ERROR',
  'COMFYUI_INVALID_PARAMETERS',
  'COMFYUI_WORKFLOW_ERROR',
  'COMFYUI_AUTH_ERROR',
  'COMFYUI_DISK_FULL',
  'INTERNAL_ERROR',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorCodeInfo {
  category: ErrorCategory;
  /** Whether comfyguard retries it at all (in some form) by default. */
  retryable: boolean;
  /** HTTP status comfyguard's API uses when this code ends a request. */
  httpStatus: number;
  /** User-safe message: no paths, hosts, tokens or stack traces. */
  message: string;
  /** What to do next. */
  hint: string;
  /** The default action, as DESIGN.md states it. */
  action: string;
}

/** Category, retryability, HTTP status, user message, hint and default action of every code. */
export const ERROR_REGISTRY: Readonly<Record<ErrorCode, ErrorCodeInfo>> = Object.freeze({
  COMFYUI_CONNECTION_ERROR: {
    category: 'transient',
    retryable: true,
    httpStatus: 502,
    message: 'The ComfyUI server could not be reached or dropped the connection.',
    hint: 'Check that the server is running and reachable; comfyguard retries and fails over to another server.',
    action: 'reconcile, retry with backoff, fail over',
  },
  COMFYUI_TIMEOUT: {
    category: 'transient',
    retryable: true,
    httpStatus: 504,
    message: 'The ComfyUI server did not answer or finish in time.',
    hint: 'The server may be overloaded or the job too heavy; raise the timeout or add capacity.',
    action: 'reconcile; resume or resubmit',
  },
  COMFYUI_SERVER_ERROR: {
    category: 'transient',
    retryable: true,
    httpStatus: 502,
    message: 'The ComfyUI server (or a proxy in front of it) returned a server error.',
    hint: 'Usually temporary; if it repeats, check the server log for the cause.',
    action: 'retry with backoff, fail over',
  },
  COMFYUI_OVERLOADED: {
    category: 'transient',
    retryable: true,
    httpStatus: 503,
    message: 'The ComfyUI server (or a service a node calls) is overloaded or rate-limited this request.',
    hint: 'comfyguard backs off and routes elsewhere; add capacity if this is frequent.',
    action: 'back off (Retry-After), route elsewhere',
  },
  COMFYUI_STALLED: {
    category: 'transient',
    retryable: true,
    httpStatus: 504,
    message: 'The job stopped making progress on the ComfyUI server.',
    hint: 'The server may be hung or its worker dead; comfyguard interrupts it and resubmits elsewhere.',
    action: 'interrupt, resubmit elsewhere',
  },
  COMFYUI_INTERRUPTED: {
    category: 'transient',
    retryable: true,
    httpStatus: 409,
    message: 'The job was interrupted on the ComfyUI server by someone else.',
    hint: 'comfyguard resubmits it; find out who interrupts jobs on a shared server.',
    action: 'resubmit',
  },
  COMFYUI_OOM: {
    category: 'recoverable',
    retryable: true,
    httpStatus: 507,
    message: 'The GPU ran out of memory while running the workflow.',
    hint: 'Free VRAM, use a bigger GPU, or lower the batch size, resolution or steps.',
    action: 'free memory, fail over, tiled VAE, reduce batch, resolution, steps',
  },
  COMFYUI_MODEL_MISSING: {
    category: 'recoverable',
    retryable: true,
    httpStatus: 424,
    message: 'A model file the workflow needs is not on the server.',
    hint: 'Install the model on the server, or give fallback models.',
    action: 'route to a server that has it, else the fallback model chain',
  },
  COMFYUI_MISSING_NODE: {
    category: 'recoverable',
    retryable: true,
    httpStatus: 424,
    message: 'The workflow uses a node type the server does not have.',
    hint: 'Install the custom node on the server, or route the job to a server that has it.',
    action: 'route to a server that has the node, else permanent',
  },
  COMFYUI_DEPENDENCY_ERROR: {
    category: 'recoverable',
    retryable: true,
    httpStatus: 424,
    message: "The server's environment cannot run this workflow (a missing or broken library or custom node).",
    hint: "Fix the server's Python environment (missing module, failed custom node import, CUDA/torch mismatch).",
    action: 'block this (server, workflow) pair, route elsewhere, else permanent',
  },
  COMFYUI_GPU_FAULT: {
    category: 'recoverable',
    retryable: true,
    httpStatus: 502,
    message: 'The GPU on the server hit a fault that needs a restart of the server.',
    hint: 'Restart the ComfyUI server; comfyguard marks it unhealthy and fails over.',
    action: 'mark the server unhealthy, alert, fail over',
  },
  COMFYUI_GENERATION_ERROR: {
    category: 'transient',
    retryable: true,
    httpStatus: 500,
    message: 'A node failed while running the workflow.',
    hint: 'comfyguard retries once; if it fails again, check the failing node and its inputs.',
    action: 'retry once, then fail',
  },
  COMFYUI_OUTPUT_ERROR: {
    category: 'permanent',
    retryable: false,
    httpStatus: 500,
    message: 'The workflow produced no output, or the output could not be saved.',
    hint: 'Check that the workflow has an output node and that the server can write its output folder.',
    action: 'fail',
  },
  COMFYUI_INVALID_PARAMETERS: {
    category: 'permanent',
    retryable: false,
    httpStatus: 422,
    message: 'A node input or the request itself is invalid (out of range, wrong type, not allowed, or too large).',
    hint: 'Fix the named input of the named node (range, type or allowed values), or send a smaller request.',
    action: 'fail with the node and input named',
  },
  COMFYUI_WORKFLOW_ERROR: {
    category: 'permanent',
    retryable: false,
    httpStatus: 422,
    message: 'The workflow graph is not valid.',
    hint: 'Export the workflow in API format and check its links and output nodes.',
    action: 'fail',
  },
  COMFYUI_AUTH_ERROR: {
    category: 'permanent',
    retryable: false,
    httpStatus: 502,
    message: 'The ComfyUI server, its proxy, or a service a node calls refused the credentials.',
    hint: 'Check the token or headers configured for this server (and do not send an Origin header), or the API key the node needs.',
    action: 'fail, alert: configuration is wrong',
  },
  COMFYUI_DISK_FULL: {
    category: 'fatal',
    retryable: false,
    httpStatus: 507,
    message: 'The server ran out of disk space.',
    hint: 'Free disk space on the server; comfyguard marks it unhealthy until then.',
    action: 'abort, mark the server unhealthy, alert',
  },
  INTERNAL_ERROR: {
    category: 'permanent',
    retryable: false,
    httpStatus: 500,
    message: 'comfyguard hit an internal error.',
    hint: 'This is a bug in comfyguard; please report it with the log.',
    action: 'fail, log with the stack',
  },
});

/** True for a known code string. */
export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && (ERROR_CODES as readonly string[]).includes(x);
}
