/**
 * The registry of comfyguard's own error codes (everything that is not a ComfyUI failure, which
 * `codes.ts` holds): API, guard, store, queue, outbound, configuration and CLI errors. Each code
 * maps to the HTTP status the API answers with, a category, the code the client sees and a message
 * template. The HTTP layer answers by looking a thrown error's `code` up here; a test keeps this
 * table, the codes raised in the source and the README in step. Codes are stable and never reused.
 */

/**
 * client: the request is wrong; auth: who is asking is not allowed; not_found; conflict: the
 * resource's state forbids it; limit: a size, depth, time or count bound; unavailable: try again
 * later; upstream: a ComfyUI server failed; internal: a bug or damaged data of ours; config: a
 * setting is wrong (raised at start-up, never answered over HTTP).
 */
export const SERVICE_ERROR_CATEGORIES = ['client', 'auth', 'not_found', 'conflict', 'limit', 'unavailable', 'upstream', 'internal', 'config'] as const;
export type ServiceErrorCategory = (typeof SERVICE_ERROR_CATEGORIES)[number];

/** Which part of comfyguard raises the code. */
export type ServiceErrorLayer = 'api' | 'guard' | 'store' | 'queue' | 'recovery' | 'outbound' | 'config' | 'cli';

export interface ServiceErrorInfo {
  layer: ServiceErrorLayer;
  category: ServiceErrorCategory;
  /** HTTP status when this code ends a request (config and CLI codes: 500, they never should). */
  httpStatus: number;
  /** The code the client sees; internal codes of other layers answer with a public one. */
  answer: string;
  /** Message template; `{name}` placeholders are filled from the error's fields. */
  message: string;
  /** Whether the thrown error's own (scrubbed) message is shown instead of the template. */
  expose: boolean;
}

function info(layer: ServiceErrorLayer, category: ServiceErrorCategory, httpStatus: number, message: string, opts: { answer?: string; expose?: boolean } = {}) {
  return { layer, category, httpStatus, message, ...opts };
}

const TABLE = {
  // ---- the API's own answers
  VALIDATION_ERROR: info('api', 'client', 400, 'The request is not valid: {field}.', { expose: true }),
  INVALID_JSON: info('api', 'client', 400, 'The request body is not valid JSON.', { expose: true }),
  BODY_TOO_DEEP: info('api', 'limit', 400, 'The request body is nested deeper than {limit} levels.', { expose: true }),
  FORBIDDEN_KEY: info('api', 'client', 400, 'The request body has a "__proto__" or "constructor.prototype" key, which is refused.'),
  UNAUTHORIZED: info('api', 'auth', 401, 'This endpoint needs an API key: send "Authorization: Bearer <key>".', { expose: true }),
  ORIGIN_NOT_ALLOWED: info('api', 'auth', 403, 'Requests from this web page are not allowed; add its origin to the allowed origins.', { expose: true }),
  HOST_NOT_ALLOWED: info('api', 'auth', 403, 'This service does not answer to that host name; add it to the allowed hosts.', { expose: true }),
  NOT_FOUND: info('api', 'not_found', 404, 'Not found.', { expose: true }),
  METHOD_NOT_ALLOWED: info('api', 'client', 405, 'That method is not allowed here.', { expose: true }),
  METRICS_DISABLED: info('api', 'not_found', 404, 'Metrics are not enabled on this service.', { expose: true }),
  REQUEST_TIMEOUT: info('api', 'limit', 408, 'The request took too long to arrive.'),
  PROMPT_ID_TAKEN: info('api', 'conflict', 409, 'That prompt_id is already in use; choose another or let comfyguard choose.', { expose: true }),
  PAYLOAD_TOO_LARGE: info('api', 'limit', 413, 'The request body is larger than {limit} bytes.', { expose: true }),
  WORKFLOW_TOO_LARGE: info('api', 'limit', 413, 'The workflow has more than {limit} nodes.', { expose: true }),
  URI_TOO_LONG: info('api', 'limit', 414, 'The URL is too long.'),
  UNSUPPORTED_MEDIA_TYPE: info('api', 'client', 415, 'Send the body as application/json.', { expose: true }),
  HEADERS_TOO_LARGE: info('api', 'limit', 431, 'The request headers are too large.'),
  NOT_IMPLEMENTED: info('api', 'unavailable', 501, 'This guard does not offer that operation.', { expose: true }),
  SERVICE_UNAVAILABLE: info('api', 'unavailable', 503, 'comfyguard is shutting down or not ready; try again shortly.'),
  UPSTREAM_ERROR: info('api', 'upstream', 502, 'The ComfyUI server failed to answer.', { expose: true }),
  UPSTREAM_TIMEOUT: info('api', 'upstream', 504, 'The ComfyUI server did not answer in time.'),
  INTERNAL: info('api', 'internal', 500, 'Internal error; the service log has the details under this request id.'),

  // ---- the guard (src/jobs)
  JOB_NOT_FOUND: info('guard', 'not_found', 404, 'No job with that id.', { answer: 'NOT_FOUND', expose: true }),
  INVALID_JOB: info('guard', 'client', 400, 'The job is not valid.', { answer: 'VALIDATION_ERROR', expose: true }),
  RETRY_REFUSED: info('guard', 'conflict', 409, 'Retrying will not fix this error; force the retry to try anyway.', { expose: true }),
  INVALID_STATE: info('guard', 'conflict', 409, 'The job is not in a state that allows this.', { expose: true }),
  GUARD_CLOSED: info('guard', 'unavailable', 503, 'comfyguard is shutting down; try again shortly.', { answer: 'SERVICE_UNAVAILABLE' }),

  // ---- the stores (src/store/errors.ts)
  STORE_UNAVAILABLE: info('store', 'unavailable', 503, 'The job store is unavailable; try again shortly.'),
  STORE_BAD_CURSOR: info('store', 'client', 400, 'cursor: is not a cursor this service produced.', { answer: 'VALIDATION_ERROR' }),
  STORE_CORRUPT_ROW: info('store', 'internal', 409, 'The stored job cannot be read; list damaged jobs with GET /api/jobs/corrupt and remove it with DELETE /api/jobs/{id}.', { answer: 'CORRUPT_RECORD' }),
  CORRUPT_RECORD: info('store', 'internal', 409, 'The stored job cannot be read; list damaged jobs with GET /api/jobs/corrupt and remove it with DELETE /api/jobs/{id}.'),
  STORE_JOB_NOT_FOUND: info('store', 'not_found', 404, 'No job with that id.', { answer: 'NOT_FOUND' }),
  STORE_CLOSED: info('store', 'unavailable', 503, 'comfyguard is shutting down; try again shortly.', { answer: 'SERVICE_UNAVAILABLE' }),
  STORE_DUPLICATE_JOB: info('store', 'internal', 500, 'Internal error; the service log has the details under this request id.', { answer: 'INTERNAL' }),
  STORE_INVALID_JOB: info('store', 'internal', 500, 'Internal error; the service log has the details under this request id.', { answer: 'INTERNAL' }),
  STORE_ERROR: info('store', 'internal', 500, 'Internal error; the service log has the details under this request id.', { answer: 'INTERNAL' }),
  STORE_BAD_URL: info('store', 'config', 500, 'The store URL cannot be used.'),
  STORE_MIGRATION_FAILED: info('store', 'config', 500, 'The store schema could not be created or migrated.'),

  // ---- the queue
  DISPATCHER_UNAVAILABLE: info('queue', 'unavailable', 503, 'The job queue is unavailable; try again shortly.', { answer: 'SERVICE_UNAVAILABLE' }),

  // ---- recovery's workflow patcher (reach the API as INVALID_JOB)
  UNKNOWN_PARAM: info('recovery', 'client', 400, 'params: {param} fits no node of the workflow.', { answer: 'VALIDATION_ERROR', expose: true }),
  PARAM_NOT_APPLICABLE: info('recovery', 'client', 400, 'params: {param} cannot be applied to this workflow.', { answer: 'VALIDATION_ERROR', expose: true }),
  PARAM_INVALID_TYPE: info('recovery', 'client', 400, 'params: {param} has the wrong type.', { answer: 'VALIDATION_ERROR', expose: true }),
  INVALID_ARGUMENT: info('recovery', 'client', 400, 'An argument of the workflow patch is not valid.', { answer: 'VALIDATION_ERROR', expose: true }),

  // ---- outbound requests (src/util/outbound.ts)
  OUTBOUND_REFUSED: info('outbound', 'client', 400, 'That URL is refused: {reason}.', { answer: 'VALIDATION_ERROR', expose: true }),

  // ---- configuration, raised at start-up
  CONFIG_ERROR: info('config', 'config', 500, 'A setting is not valid: {source}.'),
  SERVICE_CONFIG_ERROR: info('config', 'config', 500, 'The HTTP service cannot start with these settings.'),
  SIM_CONFIG_ERROR: info('config', 'config', 500, 'The simulator cannot start with these settings.'),
  PORT_IN_USE: info('config', 'config', 500, 'The port is taken.'),
  STACK_START_ERROR: info('config', 'config', 500, 'comfyguard could not start: {message}'),
  INVALID_RECOVERY_POLICY: info('config', 'config', 500, 'The recovery policy is not valid.'),
  COMFYGUARD_INVALID_CLASSIFIER_RULES: info('config', 'config', 500, 'The classifier rules are not valid.'),
  ERR_COMFYGUARD_INVALID_POLICY: info('config', 'config', 500, 'A resilience policy is not valid.'),
  ERR_COMFYGUARD_CAPABILITIES: info('config', 'config', 500, 'A server capability declaration is not valid.'),

  // ---- the command line
  USAGE_ERROR: info('cli', 'config', 500, 'The command line is not valid.'),
} satisfies Record<string, Omit<ServiceErrorInfo, 'answer' | 'expose'> & { answer?: string; expose?: boolean }>;

export type ServiceErrorCode = keyof typeof TABLE;

/** Every service error code with its status, category, public code and message template. */
export const SERVICE_ERRORS: Readonly<Record<ServiceErrorCode, Readonly<ServiceErrorInfo>>> = Object.freeze(
  Object.fromEntries(
    Object.entries(TABLE).map(([code, i]) => [code, Object.freeze({ answer: code, expose: false, ...i } as ServiceErrorInfo)]),
  ) as Record<ServiceErrorCode, ServiceErrorInfo>,
);

/** Every service error code. */
export const SERVICE_ERROR_CODES = Object.freeze(Object.keys(TABLE) as ServiceErrorCode[]);

/** True for a code of this registry. */
export function isServiceErrorCode(x: unknown): x is ServiceErrorCode {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(TABLE, x);
}

/** Fills `{name}` placeholders of a template; placeholders without a value stay as they are. */
export function renderServiceMessage(template: string, fields: Record<string, unknown> = {}): string {
  return template.replace(/\{(\w+)\}/g, (m, k: string) => {
    const v = fields[k];
    return typeof v === 'string' || typeof v === 'number' ? String(v) : m;
  });
}
