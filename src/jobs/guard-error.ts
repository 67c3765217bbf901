/**
 * Errors of the guard's own API (bad input, unknown job, refused action, closed guard): a stable
 * code, and the field at fault when there is one.
 */

/** Error codes of the guard's own API. */
export type GuardErrorCode = 'JOB_NOT_FOUND' | 'INVALID_JOB' | 'RETRY_REFUSED' | 'INVALID_STATE' | 'GUARD_CLOSED';

/** An error of the guard's API: a stable code, and the field at fault when there is one. */
export class GuardError extends Error {
  readonly code: GuardErrorCode;
  readonly field: string | undefined;
  constructor(code: GuardErrorCode, message: string, opts: { field?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GuardError';
    this.code = code;
    this.field = opts.field;
  }
}
