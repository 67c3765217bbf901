/**
 * The one error shape of the HTTP API, `{ error: { code, message, field?, details? } }`, and the
 * single place where thrown values (validation issues, Fastify's own errors, guard and store
 * errors) are turned into it.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_REGISTRY, isErrorCode } from '../errors/codes.js';
import { pathToField, type ValidationIssue } from './validation.js';

/** Stable codes of the API's own errors (ComfyUI error codes pass through as they are). */
export type ApiErrorCode =
  | 'VALIDATION_ERROR'
  | 'INVALID_JSON'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'NOT_FOUND'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNAUTHORIZED'
  | 'RETRY_REFUSED'
  | 'INVALID_STATE'
  | 'SERVICE_UNAVAILABLE'
  | 'STORE_UNAVAILABLE'
  | 'METRICS_DISABLED'
  | 'UPSTREAM_ERROR'
  | 'INTERNAL';

/** An error the API answers with: HTTP status, stable code, and the field at fault when known. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  readonly details: unknown[] | undefined;
  constructor(status: number, code: ApiErrorCode | string, message: string, opts: { field?: string; details?: unknown[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = opts.field;
    this.details = opts.details;
  }

  /** The response body. */
  toBody(): { error: { code: string; message: string; field?: string; details?: unknown[] } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.field !== undefined ? { field: this.field } : {}),
        ...(this.details !== undefined ? { details: this.details } : {}),
      },
    };
  }
}

function issueField(issue: Partial<ValidationIssue>, context: string | undefined): string {
  const keys = issue.params?.keys;
  const path = [...(issue.params?.path ?? (issue.instancePath ?? '').split('/').filter((p) => p !== ''))];
  if (issue.keyword === 'unrecognized_keys' && Array.isArray(keys) && typeof keys[0] === 'string') path.push(keys[0]);
  const field = pathToField(path);
  if (field !== '') return field;
  return context === 'querystring' ? 'query' : (context ?? 'body');
}

function issueMessage(issue: Partial<ValidationIssue>, field: string): string {
  if (issue.keyword === 'unrecognized_keys') return `${field}: is not a known field`;
  return `${field}: ${issue.message ?? 'is invalid'}`;
}

/** Turns a request-validation failure into VALIDATION_ERROR naming the first bad field. */
function fromValidation(err: FastifyError): ApiError {
  const issues = (err.validation ?? []) as Array<Partial<ValidationIssue>>;
  const context = err.validationContext;
  const details = issues.map((i) => {
    const field = issueField(i, context);
    return { field, code: i.keyword ?? 'invalid', message: issueMessage(i, field) };
  });
  const first = details[0];
  return new ApiError(400, 'VALIDATION_ERROR', first?.message ?? err.message, { field: first?.field ?? context ?? 'body', details, cause: err });
}

const GUARD_STATUS: Record<string, [number, ApiErrorCode]> = {
  JOB_NOT_FOUND: [404, 'NOT_FOUND'],
  INVALID_JOB: [400, 'VALIDATION_ERROR'],
  RETRY_REFUSED: [409, 'RETRY_REFUSED'],
  INVALID_STATE: [409, 'INVALID_STATE'],
  GUARD_CLOSED: [503, 'SERVICE_UNAVAILABLE'],
};

const FASTIFY_STATUS: Record<string, [number, ApiErrorCode, string?]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'PAYLOAD_TOO_LARGE'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'UNSUPPORTED_MEDIA_TYPE'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'INVALID_JSON', 'the request body is empty; send a JSON object'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'INVALID_JSON'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'VALIDATION_ERROR'],
};

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface UpstreamFailure {
  kind?: string;
  status?: number;
  server?: string;
  message: string;
}

/** A ComfyUI server's failure while we proxied to it: its 404 is ours, the rest is a bad gateway. */
function fromUpstream(err: UpstreamFailure): ApiError {
  if (err.kind === 'http' && err.status === 404) return new ApiError(404, 'NOT_FOUND', 'the ComfyUI server does not have that file', { cause: err });
  if (err.kind === 'timeout') return new ApiError(504, 'UPSTREAM_ERROR', 'the ComfyUI server did not answer in time', { cause: err });
  // The cause (logged) has the address and the transport error; the client gets the kind only.
  const what = err.kind === 'http' && err.status ? `answered ${err.status}` : err.kind === 'transport' ? 'could not be reached' : 'failed';
  return new ApiError(502, 'UPSTREAM_ERROR', `the ComfyUI server${err.server ? ` ${err.server}` : ''} ${what}`, { cause: err });
}

/**
 * Normalises any thrown value into an ApiError. Errors of other layers are recognised by their
 * stable `code` or `name` (never `instanceof`), because guard, store and client errors may come
 * from another copy of the package.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const fe = err as FastifyError | null;
  if (fe && Array.isArray(fe.validation)) return fromValidation(fe);
  const code = codeOf(err);
  if (code !== undefined) {
    const guard = GUARD_STATUS[code];
    if (guard) {
      const field = (err as { field?: unknown }).field;
      return new ApiError(guard[0], guard[1], messageOf(err), { ...(typeof field === 'string' ? { field } : {}), cause: err });
    }
    const fst = FASTIFY_STATUS[code];
    if (fst) return new ApiError(fst[0], fst[1], fst[2] ?? messageOf(err), { ...(fst[1] === 'INVALID_JSON' ? { field: 'body' } : {}), cause: err });
    if (code === 'STORE_BAD_CURSOR') return new ApiError(400, 'VALIDATION_ERROR', `cursor: ${messageOf(err)}`, { field: 'cursor', cause: err });
    if (code === 'STORE_UNAVAILABLE') return new ApiError(503, 'STORE_UNAVAILABLE', 'The job store is unavailable; try again shortly.', { cause: err });
    if (isErrorCode(code) && code !== 'INTERNAL_ERROR') {
      const info = ERROR_REGISTRY[code];
      return new ApiError(info.httpStatus, code, info.message, { cause: err });
    }
  }
  if ((err as { name?: unknown } | null)?.name === 'ComfyRequestError') return fromUpstream(err as UpstreamFailure);
  // Fastify's own 4xx errors (bad headers, unsupported methods...) keep their status.
  const status = fe?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new ApiError(status, status === 404 ? 'NOT_FOUND' : 'VALIDATION_ERROR', messageOf(err), { cause: err });
  }
  return new ApiError(500, 'INTERNAL', 'Internal error; see the service log.', { cause: err });
}

/** Installs the error and not-found handlers that give every failure the one error shape. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const apiErr = toApiError(err);
    if (apiErr.status >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code: apiErr.code, field: apiErr.field }, apiErr.message);
    void reply.code(apiErr.status).type('application/json; charset=utf-8').send(apiErr.toBody());
  });
  app.setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) => {
    const e = new ApiError(404, 'NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`);
    void reply.code(404).type('application/json; charset=utf-8').send(e.toBody());
  });
}
