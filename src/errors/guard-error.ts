/**
 * ComfyGuardError: the one error comfyguard reports. It carries a stable code, its category and
 * retryability, a user-safe message and hint, where it happened, the raw evidence and the cause.
 */
import type { Classification } from './classification.js';
import { ERROR_REGISTRY, isErrorCode, type ErrorCategory, type ErrorCode } from './codes.js';
import { safeServerName, scrubText } from './scrub.js';

const kComfyGuardError = Symbol.for('comfyguard.ComfyGuardError');

export interface ComfyGuardErrorOptions {
  /** User-safe message; scrubbed again anyway. @default the registry message */
  message?: string;
  /** @default the registry hint */
  hint?: string;
  /** @default the registry's retryable flag */
  retryable?: boolean;
  server?: string;
  promptId?: string;
  nodeId?: string;
  nodeType?: string;
  /** What was observed (raw; kept for logs, never rendered). */
  evidence?: unknown;
  cause?: unknown;
  classification?: Classification;
}

/** The user-safe JSON form: no evidence, no cause, no stack. */
export interface ComfyGuardErrorJSON {
  name: 'ComfyGuardError';
  code: ErrorCode;
  category: ErrorCategory;
  message: string;
  hint: string;
  retryable: boolean;
  nodeId?: string;
  nodeType?: string;
  server?: string;
}

/**
 * A classified comfyguard failure.
 * @example throw new ComfyGuardError('COMFYUI_SERVER_ERROR', { server: 'gpu-1', cause })
 */
export class ComfyGuardError extends Error {
  readonly code: ErrorCode;
  readonly category: ErrorCategory;
  readonly retryable: boolean;
  readonly hint: string;
  readonly server: string | undefined;
  readonly promptId: string | undefined;
  readonly nodeId: string | undefined;
  readonly nodeType: string | undefined;
  readonly evidence: unknown;
  /** The full classification when this error came from `classify`. */
  readonly classification: Classification | undefined;

  constructor(code: ErrorCode, opts: ComfyGuardErrorOptions = {}) {
    const safeCode: ErrorCode = isErrorCode(code) ? code : 'INTERNAL_ERROR';
    const info = ERROR_REGISTRY[safeCode];
    super(opts.message !== undefined ? scrubText(opts.message) || info.message : info.message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ComfyGuardError';
    this.code = safeCode;
    this.category = info.category;
    this.retryable = opts.retryable ?? info.retryable;
    this.hint = opts.hint ?? info.hint;
    this.server = opts.server;
    this.promptId = opts.promptId;
    this.nodeId = opts.nodeId;
    this.nodeType = opts.nodeType;
    this.evidence = opts.evidence;
    this.classification = opts.classification;
    Object.defineProperty(this, kComfyGuardError, { value: true });
  }

  /** Cross-realm safe check: errors cross package copies, worker threads and the job store. */
  static override [Symbol.hasInstance](x: unknown): boolean {
    return isComfyGuardError(x);
  }

  /** Builds the error for a classification. */
  static fromClassification(c: Classification, ctx: { server?: string; promptId?: string; cause?: unknown; evidence?: unknown } = {}): ComfyGuardError {
    return new ComfyGuardError(c.code, {
      message: c.message,
      hint: c.hint,
      retryable: c.retryable,
      classification: c,
      ...(ctx.server !== undefined ? { server: ctx.server } : {}),
      ...(ctx.promptId !== undefined ? { promptId: ctx.promptId } : {}),
      ...(c.nodeId !== undefined ? { nodeId: c.nodeId } : {}),
      ...(c.nodeType !== undefined ? { nodeType: c.nodeType } : {}),
      ...(ctx.evidence !== undefined ? { evidence: ctx.evidence } : {}),
      ...(ctx.cause !== undefined ? { cause: ctx.cause } : {}),
    });
  }

  /** User-safe JSON: code, category, message, hint, retryable and where (server only by a plain name). */
  toJSON(): ComfyGuardErrorJSON {
    const server = safeServerName(this.server);
    return {
      name: 'ComfyGuardError',
      code: this.code,
      category: this.category,
      message: this.message,
      hint: this.hint,
      retryable: this.retryable,
      ...(this.nodeId !== undefined ? { nodeId: this.nodeId } : {}),
      ...(this.nodeType !== undefined ? { nodeType: this.nodeType } : {}),
      ...(server !== undefined ? { server } : {}),
    };
  }
}

/** True for a ComfyGuardError from any copy of comfyguard (Symbol.for marker, not bare instanceof). */
export function isComfyGuardError(x: unknown): x is ComfyGuardError {
  if (typeof x !== 'object' || x === null) return false;
  try {
    return (x as Record<symbol, unknown>)[kComfyGuardError] === true;
  } catch {
    return false;
  }
}
