/**
 * The one error shape of the HTTP API, `{ error: { code, message, field?, details? } }`, and the
 * single place where thrown values (validation issues, Fastify's own errors, guard and store
 * errors) are turned into it.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_REGISTRY, isErrorCode } from '../errors/codes.js';
import { scrubText, safeServerName } from '../errors/scrub.js';
import { isServiceErrorCode, renderServiceMessage, SERVICE_ERRORS, type ServiceErrorCode } from '../errors/service-codes.js';
import { pathToField, type ValidationIssue } from './validation.js';

/** Stable codes of the API's answers: the service registry's (ComfyUI error codes pass through as they are). */
export type ApiErrorCode = ServiceErrorCode;

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

/** Fastify's own error codes, as the service's codes. */
const FASTIFY_CODES: Record<string, [ServiceErrorCode, string?]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ['PAYLOAD_TOO_LARGE'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ['UNSUPPORTED_MEDIA_TYPE'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['VALIDATION_ERROR', 'the Content-Length header does not match the body'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['INVALID_JSON', 'the request body is empty; send a JSON object'],
  FST_ERR_CTP_INVALID_JSON_BODY: ['INVALID_JSON'],
  FST_ERR_BAD_URL: ['VALIDATION_ERROR', 'the URL is not valid (bad percent-encoding)'],
  FST_ERR_ASYNC_CONSTRAINT: ['VALIDATION_ERROR'],
};

/** By HTTP status, for Fastify and Node errors that carry only a status. */
const STATUS_CODES: Record<number, ServiceErrorCode> = {
  400: 'VALIDATION_ERROR',
  401: 'UNAUTHORIZED',
  403: 'ORIGIN_NOT_ALLOWED',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  408: 'REQUEST_TIMEOUT',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  431: 'HEADERS_TOO_LARGE',
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

/**
 * A ComfyUI server's failure while we proxied to it: its 4xx is its answer (a 404 is "no such
 * file", a 400 a bad request), the rest is a bad gateway. The message never names the server's
 * address; the cause (logged) has it.
 */
function fromUpstream(err: UpstreamFailure): ApiError {
  if (err.kind === 'http' && err.status === 404) return new ApiError(404, 'NOT_FOUND', 'the ComfyUI server does not have that file', { cause: err });
  if (err.kind === 'http' && err.status !== undefined && err.status >= 400 && err.status < 500) {
    return new ApiError(400, 'VALIDATION_ERROR', `the ComfyUI server refused the request (${err.status})`, { cause: err });
  }
  if (err.kind === 'timeout') return lookup('UPSTREAM_TIMEOUT', err);
  const what = err.kind === 'http' && err.status ? `answered ${err.status}` : err.kind === 'transport' ? 'could not be reached' : 'failed';
  const name = safeServerName(err.server);
  return new ApiError(502, 'UPSTREAM_ERROR', `the ComfyUI server${name ? ` ${name}` : ''} ${what}`, { cause: err });
}

/** The answer for a registered service code: status and public code by lookup, the message scrubbed or from the template. */
function lookup(code: ServiceErrorCode, err: unknown, override?: string): ApiError {
  const entry = SERVICE_ERRORS[code];
  const e = (err ?? {}) as { field?: unknown; jobId?: unknown };
  const field = typeof e.field === 'string' ? e.field : undefined;
  const own = messageOf(err);
  const message = override ?? (entry.expose && own !== '' ? scrubText(own) : renderServiceMessage(entry.message, { ...(typeof e.jobId === 'string' ? { id: e.jobId } : {}) }));
  return new ApiError(entry.httpStatus, entry.answer, message, { ...(field !== undefined ? { field } : {}), cause: err });
}

/**
 * Normalises any thrown value into an ApiError. Errors of other layers are recognised by their
 * stable `code` or `name` (never `instanceof`), because guard, store and client errors may come
 * from another copy of the package; the status and public code come from the registries.
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const fe = err as FastifyError | null;
  if (fe && Array.isArray(fe.validation)) return fromValidation(fe);
  const code = codeOf(err);
  if (code !== undefined) {
    const fst = Object.hasOwn(FASTIFY_CODES, code) ? FASTIFY_CODES[code] : undefined;
    if (fst) {
      const e = lookup(fst[0], err, fst[1] ?? messageOf(err));
      return fst[0] === 'INVALID_JSON' ? new ApiError(e.status, e.code, e.message, { field: 'body', cause: err }) : e;
    }
    if (code === 'STORE_BAD_CURSOR') return new ApiError(400, 'VALIDATION_ERROR', `cursor: ${scrubText(messageOf(err))}`, { field: 'cursor', cause: err });
    if (isServiceErrorCode(code)) return lookup(code, err);
    if (isErrorCode(code) && code !== 'INTERNAL_ERROR') {
      const info = ERROR_REGISTRY[code];
      return new ApiError(info.httpStatus, code, info.message, { cause: err });
    }
  }
  if ((err as { name?: unknown } | null)?.name === 'ComfyRequestError') return fromUpstream(err as UpstreamFailure);
  // Fastify's and Node's own 4xx errors (bad headers, unsupported methods...) keep their status.
  const status = fe?.statusCode ?? (fe as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const known = STATUS_CODES[status];
    if (known) return lookup(known, err, status === 404 || status === 400 || status === 405 ? scrubText(messageOf(err)) : undefined);
    return new ApiError(status, 'VALIDATION_ERROR', scrubText(messageOf(err)), { cause: err });
  }
  return lookup('INTERNAL', err);
}

/** The answer body; a 5xx names the request id the service log has the details under. */
export function errorBody(e: ApiError, requestId: string): ReturnType<ApiError['toBody']> {
  const body = e.toBody();
  if (e.status >= 500) body.error.message = `${body.error.message} (request id ${requestId})`;
  return body;
}

/** Installs the error and not-found handlers that give every failure the one error shape; 5xx are logged with the request id. */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const apiErr = toApiError(err);
    if (apiErr.status >= 500) req.log.error({ err, reqId: req.id, code: apiErr.code, url: req.url.split('?')[0] }, 'request failed');
    else req.log.info({ code: apiErr.code, field: apiErr.field }, apiErr.message);
    void reply.code(apiErr.status).type('application/json; charset=utf-8').send(errorBody(apiErr, req.id));
  });
  app.setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) => {
    const e = new ApiError(404, 'NOT_FOUND', `no route ${req.method} ${(req.url.split('?')[0] ?? '').slice(0, 200)}`);
    void reply.code(404).type('application/json; charset=utf-8').send(e.toBody());
  });
}
