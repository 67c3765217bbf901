import type { NodeErrorEntry, PromptErrorBody } from './types.js';

const kComfyRequestError = Symbol.for('comfyguard.ComfyRequestError');

/** What went wrong at the protocol level, before any classification. */
export type ComfyRequestErrorKind =
  /** The server answered with a non-2xx status. `status`, `headers`, `body`/`bodyText` are set. */
  | 'http'
  /** No response: refused, reset, DNS, TLS... `transportCode` holds the Node error code. */
  | 'transport'
  /** Our request timeout fired. */
  | 'timeout'
  /** The caller's AbortSignal fired. */
  | 'aborted'
  /** A 2xx response whose body did not match the protocol schema. */
  | 'invalid_response'
  /** WebSocket failure: connect error or close. `wsCloseCode`/`wsCloseReason` are set when closed. */
  | 'websocket';

export interface ComfyRequestErrorInit {
  kind: ComfyRequestErrorKind;
  message: string;
  server?: string;
  method?: string;
  path?: string;
  status?: number;
  headers?: Record<string, string>;
  /** Parsed JSON body, when the body was JSON. */
  body?: unknown;
  /** Raw text of the body (truncated to 64 KiB), when it was not JSON or for the record. */
  bodyText?: string;
  /** Node/undici error code: ECONNREFUSED, ECONNRESET, ENOTFOUND, UND_ERR_SOCKET, ... */
  transportCode?: string;
  wsCloseCode?: number;
  wsCloseReason?: string;
  timeoutMs?: number;
  cause?: unknown;
}

/**
 * The one error the protocol client throws. It keeps every piece of evidence the classifier
 * needs: status, headers, parsed body, transport code, and the original cause.
 */
export class ComfyRequestError extends Error {
  readonly kind: ComfyRequestErrorKind;
  readonly server: string | undefined;
  readonly method: string | undefined;
  readonly path: string | undefined;
  readonly status: number | undefined;
  readonly headers: Record<string, string> | undefined;
  readonly body: unknown;
  readonly bodyText: string | undefined;
  readonly transportCode: string | undefined;
  readonly wsCloseCode: number | undefined;
  readonly wsCloseReason: string | undefined;
  readonly timeoutMs: number | undefined;

  constructor(init: ComfyRequestErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'ComfyRequestError';
    this.kind = init.kind;
    this.server = init.server;
    this.method = init.method;
    this.path = init.path;
    this.status = init.status;
    this.headers = init.headers;
    this.body = init.body;
    this.bodyText = init.bodyText;
    this.transportCode = init.transportCode;
    this.wsCloseCode = init.wsCloseCode;
    this.wsCloseReason = init.wsCloseReason;
    this.timeoutMs = init.timeoutMs;
    Object.defineProperty(this, kComfyRequestError, { value: true });
  }

  /** Cross-realm safe check (errors cross package copies and the job store). */
  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[kComfyRequestError] === true;
  }

  /** The structured `POST /prompt` validation body, when this is one (400 with `error` + `node_errors`). */
  get validation(): PromptValidation | undefined {
    return parsePromptValidation(this.body);
  }
}

/** A `POST /prompt` validation failure, node by node. */
export interface PromptValidation {
  type: string;
  message: string;
  details: string;
  nodeErrors: Array<{ nodeId: string; classType: string; dependentOutputs: string[]; errors: NodeErrorEntry['errors'] }>;
}

/** Reads a validation body (new object form and the pre-2025 string form); undefined if it is not one. */
export function parsePromptValidation(body: unknown): PromptValidation | undefined {
  if (typeof body !== 'object' || body === null || !('error' in body)) return undefined;
  const b = body as PromptErrorBody;
  const nodeErrors: PromptValidation['nodeErrors'] = [];
  if (b.node_errors && !Array.isArray(b.node_errors) && typeof b.node_errors === 'object') {
    for (const [nodeId, entry] of Object.entries(b.node_errors)) {
      if (!entry || typeof entry !== 'object') continue;
      nodeErrors.push({
        nodeId,
        classType: typeof entry.class_type === 'string' ? entry.class_type : '',
        dependentOutputs: Array.isArray(entry.dependent_outputs) ? entry.dependent_outputs.map(String) : [],
        errors: Array.isArray(entry.errors) ? entry.errors : [],
      });
    }
  }
  if (typeof b.error === 'string') return { type: 'legacy', message: b.error, details: '', nodeErrors };
  if (typeof b.error !== 'object' || b.error === null) return undefined;
  return {
    type: String(b.error.type ?? ''),
    message: String(b.error.message ?? ''),
    details: String(b.error.details ?? ''),
    nodeErrors,
  };
}
