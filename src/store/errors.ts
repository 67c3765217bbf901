/**
 * The one error the stores throw. Driver errors (pg, ioredis, better-sqlite3) are normalised here,
 * once, so callers branch on a stable `code` and never on driver-specific messages.
 */

const kStoreError = Symbol.for('comfyguard.StoreError');

export const STORE_ERROR_CODES = [
  /** The database could not be reached or dropped the connection, after the store's own retries. */
  'STORE_UNAVAILABLE',
  /** `openStore` got a URL it cannot use. */
  'STORE_BAD_URL',
  /** The schema could not be created or migrated. */
  'STORE_MIGRATION_FAILED',
  /** A stored row could not be decoded (bad JSON, missing fields). `jobId` names it. */
  'STORE_CORRUPT_ROW',
  /** A write named a job the store does not hold. */
  'STORE_JOB_NOT_FOUND',
  /** `createJob` with an id that already exists (idempotency keys are not an error). */
  'STORE_DUPLICATE_JOB',
  /** A record or patch that does not match the job model; nothing was written. */
  'STORE_INVALID_JOB',
  /** A `query` cursor that this store did not produce. */
  'STORE_BAD_CURSOR',
  /** Used before `init()` or after `close()`. */
  'STORE_CLOSED',
  /** Any other driver failure. */
  'STORE_ERROR',
] as const;
export type StoreErrorCode = (typeof STORE_ERROR_CODES)[number];

export type StoreBackend = 'memory' | 'sqlite' | 'postgres' | 'redis';

export interface StoreErrorInit {
  backend?: StoreBackend;
  /** The store method that failed, e.g. `transition`. */
  operation?: string;
  jobId?: string;
  cause?: unknown;
}

/** A persistence failure with a stable code, the backend and operation, and the driver's error as `cause`. */
export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly backend: StoreBackend | undefined;
  readonly operation: string | undefined;
  readonly jobId: string | undefined;
  /** True when trying again later may succeed (the database was unreachable). */
  readonly retryable: boolean;

  constructor(code: StoreErrorCode, message: string, init: StoreErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'StoreError';
    this.code = code;
    this.backend = init.backend;
    this.operation = init.operation;
    this.jobId = init.jobId;
    this.retryable = code === 'STORE_UNAVAILABLE';
    Object.defineProperty(this, kStoreError, { value: true });
  }

  /** Cross-realm safe check: store errors cross package copies and worker threads. */
  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[kStoreError] === true;
  }
}

/** True for a StoreError, optionally with the given code. */
export function isStoreError(x: unknown, code?: StoreErrorCode): x is StoreError {
  return x instanceof StoreError && (code === undefined || x.code === code);
}

/** Message of an unknown thrown value, for embedding in our own messages. */
export function describeCause(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
  }
  return String(e);
}

/** Removes the password from a connection URL so it can appear in messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
  }
}
