import type {
  ApiWorkflow,
  BinaryFrame,
  HistoryMap,
  ObjectInfo,
  PromptResponse,
  QueueState,
  SystemStats,
  UnknownWsMessage,
  UploadResult,
  WsMessage,
} from './types.js';

/** Per-call options: every call is bounded and abortable. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Overrides the client's request timeout for this call. */
  timeoutMs?: number;
}

export interface SubmitOptions extends CallOptions {
  clientId?: string;
  /** Client-chosen id (servers >= 0.3.45). Choose and persist it before submitting. */
  promptId?: string;
  extraData?: Record<string, unknown>;
  partialExecutionTargets?: string[];
  number?: number;
  front?: boolean;
}

/** Options for one ComfyUI server connection. */
export interface ComfyClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:8188`. */
  baseUrl: string;
  /** Name used in errors and logs. @default the URL's host */
  name?: string;
  /** Extra headers for every request (auth tokens for hosted pods). Never sent: Origin. */
  headers?: Record<string, string>;
  /** Request timeout. @default 30_000 */
  requestTimeoutMs?: number;
}

/** The REST surface of one ComfyUI server. Every method throws only ComfyRequestError. */
export interface ComfyApi {
  readonly baseUrl: string;
  readonly name: string;
  submitPrompt(workflow: ApiWorkflow, opts?: SubmitOptions): Promise<PromptResponse>;
  getQueue(opts?: CallOptions): Promise<QueueState>;
  deleteFromQueue(promptIds: string[], opts?: CallOptions): Promise<void>;
  clearQueue(opts?: CallOptions): Promise<void>;
  getHistory(promptId: string, opts?: CallOptions): Promise<HistoryMap>;
  getAllHistory(query?: { maxItems?: number; offset?: number }, opts?: CallOptions): Promise<HistoryMap>;
  deleteHistory(promptIds: string[], opts?: CallOptions): Promise<void>;
  clearHistory(opts?: CallOptions): Promise<void>;
  /** Global interrupt when `promptId` is omitted; scoped (0.3.57+) otherwise. */
  interrupt(promptId?: string, opts?: CallOptions): Promise<void>;
  free(what: { unloadModels?: boolean; freeMemory?: boolean }, opts?: CallOptions): Promise<void>;
  getSystemStats(opts?: CallOptions): Promise<SystemStats>;
  getObjectInfo(opts?: CallOptions): Promise<ObjectInfo>;
  /** `{}` for an unknown class (as the server answers). */
  getNodeInfo(classType: string, opts?: CallOptions): Promise<ObjectInfo>;
  getModelFolders(opts?: CallOptions): Promise<string[]>;
  getModels(folder: string, opts?: CallOptions): Promise<string[]>;
  getPromptStatus(opts?: CallOptions): Promise<{ exec_info: { queue_remaining: number } }>;
  view(file: { filename: string; subfolder?: string; type?: string }, opts?: CallOptions): Promise<{ contentType: string; data: Uint8Array }>;
  uploadImage(file: { name: string; data: Uint8Array; contentType?: string }, params?: { type?: string; subfolder?: string; overwrite?: boolean }, opts?: CallOptions): Promise<UploadResult>;
  /**
   * A request to a route ComfyUI itself does not have (a custom node's, e.g. one that deletes
   * output files), with the server's headers and timeout; a non-2xx answer throws `kind: 'http'`.
   */
  send(request: RouteRequest, opts?: CallOptions): Promise<RouteResponse>;
  close(): Promise<void>;
}

/** A request to a custom route: `path` may carry a query string. */
export interface RouteRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  /** Sent as `application/json`. */
  json?: unknown;
}

/** A custom route's answer (2xx only). */
export interface RouteResponse {
  status: number;
  contentType: string;
  /** The body as text, cut at 64 KiB. */
  text: string;
}

/** Events of a ComfyUI WebSocket connection. */
export type ComfySocketEvent =
  /** The socket is open; `reconnect` is true when it replaces a dropped one (reconcile in-flight prompts). */
  | { kind: 'open'; clientId: string; reconnect?: boolean }
  | { kind: 'message'; message: WsMessage }
  | { kind: 'unknown'; message: UnknownWsMessage }
  | { kind: 'binary'; frame: BinaryFrame }
  | { kind: 'close'; code: number; reason: string; /** true when we closed it */ byUs: boolean }
  | { kind: 'error'; error: Error };
