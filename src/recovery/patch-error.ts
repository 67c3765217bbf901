/**
 * The one error the workflow patcher throws. It names the parameter and, for type errors, the
 * expected type, so the engine can turn it into COMFYUI_INVALID_PARAMETERS with a clear message.
 */

const kPatchError = Symbol.for('comfyguard.PatchError');

export type PatchErrorCode =
  /** The parameter name is neither a named parameter nor a `<nodeId>.<input>` address. */
  | 'UNKNOWN_PARAM'
  /** The parameter is known but no node of the workflow takes it. */
  | 'PARAM_NOT_APPLICABLE'
  /** The value has the wrong type or is out of range. */
  | 'PARAM_INVALID_TYPE'
  /** A patcher function was called with a bad argument (e.g. a scale factor outside (0, 1]). */
  | 'INVALID_ARGUMENT';

export interface PatchErrorInit {
  param?: string;
  expected?: string;
  received?: unknown;
}

/** A parameter that cannot be applied to a workflow, with the parameter and expectation named. */
export class PatchError extends Error {
  readonly code: PatchErrorCode;
  readonly param: string | undefined;
  readonly expected: string | undefined;
  readonly received: unknown;

  constructor(code: PatchErrorCode, message: string, init: PatchErrorInit = {}) {
    super(message);
    this.name = 'PatchError';
    this.code = code;
    this.param = init.param;
    this.expected = init.expected;
    this.received = init.received;
    Object.defineProperty(this, kPatchError, { value: true });
  }

  /** Identifies patch errors across package copies and workers, not only by prototype. */
  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[kPatchError] === true;
  }
}

/** True for a PatchError (by marker, so it works across module copies). */
export function isPatchError(x: unknown): x is PatchError {
  return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[kPatchError] === true;
}
