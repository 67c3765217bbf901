/**
 * `ComfyClient`: the typed REST client for one ComfyUI server (undici `request` over one keep-alive
 * Agent). Every call is bounded by a timeout (injected Clock) combined with the caller's signal,
 * validates its response with zod, and fails only with `ComfyRequestError` carrying the evidence a
 * classifier needs: status, headers, parsed body or text, transport code, and the cause.
 */
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import type { z } from 'zod';
import type { CallOptions, ComfyApi, ComfyClientOptions, RouteRequest, RouteResponse, SubmitOptions } from './api.js';
import { ComfyRequestError, parsePromptValidation } from './errors.js';
import {
  describeIssues,
  historyMapSchema,
  objectInfoSchema,
  promptResponseSchema,
  promptStatusSchema,
  queueStateSchema,
  serverFeaturesSchema,
  stringListSchema,
  systemStatsSchema,
  uploadResultSchema,
  type ServerFeatures,
} from './schemas.js';
import { messageOf, transportCodeOf } from './transport.js';
import type { ApiWorkflow, HistoryMap, ObjectInfo, PromptRequest, PromptResponse, QueueState, SystemStats, UploadResult } from './types.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

/** Text bodies kept on errors are cut here so a huge HTML page cannot bloat the job store. */
const MAX_BODY_TEXT = 64 * 1024;

/** Options of `ComfyClient` beyond the shared `ComfyClientOptions`. */
export interface ComfyClientInit extends ComfyClientOptions {
  /** Time source for request timeouts. @default systemClock */
  clock?: Clock;
  /** Maximum keep-alive connections to this server. @default 8 */
  maxConnections?: number;
  /** How long an idle keep-alive socket is kept. @default 4_000 */
  keepAliveTimeoutMs?: number;
}

type Expect = 'json' | 'empty' | 'bytes';

interface CallSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  body?: Buffer;
  contentType?: string;
  expect: Expect;
  opts: CallOptions | undefined;
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  contentType: string;
  data: Buffer;
}

/** Why our own controller aborted a request. */
type AbortWhy = 'timeout' | 'aborted' | 'closed';

/**
 * A client for one ComfyUI server.
 *
 * @example
 * const client = new ComfyClient({ baseUrl: 'http://127.0.0.1:8188', headers: { authorization: 'Bearer …' } });
 * try {
 *   const { prompt_id } = await client.submitPrompt(workflow, { clientId, promptId: randomUUID() });
 * } catch (err) {
 *   if (err instanceof ComfyRequestError && err.validation) console.log(err.validation.nodeErrors);
 * } finally {
 *   await client.close();
 * }
 */
export class ComfyClient implements ComfyApi {
  readonly baseUrl: string;
  readonly name: string;
  readonly #origin: URL;
  /** Path prefix of the base URL (hosted pods behind a proxy path, or ComfyUI's own `/api`). */
  readonly #basePath: string;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #timeoutMs: number;
  readonly #clock: Clock;
  readonly #agent: Agent;
  readonly #inflight = new Set<AbortController>();
  #closing: Promise<void> | undefined;

  constructor(init: ComfyClientInit) {
    let url: URL;
    try {
      url = new URL(init.baseUrl);
    } catch (cause) {
      throw new TypeError(`ComfyClient: baseUrl "${init.baseUrl}" is not a valid URL`, { cause });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`ComfyClient: baseUrl must be http(s), got "${url.protocol}"`);
    }
    const timeout = init.requestTimeoutMs ?? 30_000;
    if (!Number.isFinite(timeout) || timeout <= 0) throw new TypeError('ComfyClient: requestTimeoutMs must be a positive number');
    this.#origin = url;
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.baseUrl = url.href.replace(/\/+$/, '');
    this.name = init.name ?? url.host;
    this.#headers = Object.freeze(withoutOrigin(init.headers ?? {}));
    this.#timeoutMs = timeout;
    this.#clock = init.clock ?? systemClock;
    // Our timeout bounds the whole call; undici's own header/body timers would only race it.
    this.#agent = new Agent({
      connections: init.maxConnections ?? 8,
      keepAliveTimeout: init.keepAliveTimeoutMs ?? 4_000,
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  }

  /** `POST /prompt`. A 200 with non-empty `node_errors` is returned; a 400 throws with `err.validation`. */
  async submitPrompt(workflow: ApiWorkflow, opts: SubmitOptions = {}): Promise<PromptResponse> {
    const body: PromptRequest = { prompt: workflow };
    if (opts.clientId !== undefined) body.client_id = opts.clientId;
    if (opts.promptId !== undefined) body.prompt_id = opts.promptId;
    if (opts.extraData !== undefined) body.extra_data = opts.extraData;
    if (opts.partialExecutionTargets !== undefined) body.partial_execution_targets = opts.partialExecutionTargets;
    if (opts.number !== undefined) body.number = opts.number;
    if (opts.front !== undefined) body.front = opts.front;
    return this.#json({ method: 'POST', path: '/prompt', json: body, expect: 'json', opts }, promptResponseSchema);
  }

  /** `GET /queue`. */
  getQueue(opts?: CallOptions): Promise<QueueState> {
    return this.#json({ method: 'GET', path: '/queue', expect: 'json', opts }, queueStateSchema);
  }

  /** `POST /queue {delete}`: removes pending prompts (always 200; verify with getQueue). */
  async deleteFromQueue(promptIds: string[], opts?: CallOptions): Promise<void> {
    await this.#call({ method: 'POST', path: '/queue', json: { delete: promptIds }, expect: 'empty', opts });
  }

  /** `POST /queue {clear: true}`: removes every pending prompt, everyone's. */
  async clearQueue(opts?: CallOptions): Promise<void> {
    await this.#call({ method: 'POST', path: '/queue', json: { clear: true }, expect: 'empty', opts });
  }

  /** `GET /history/{id}`: `{}` when unknown, pending or running. */
  getHistory(promptId: string, opts?: CallOptions): Promise<HistoryMap> {
    return this.#json({ method: 'GET', path: `/history/${encodeURIComponent(promptId)}`, expect: 'json', opts }, historyMapSchema);
  }

  /** `GET /history?max_items&offset` (offset needs 0.3.60+). Without a query: everything, which can be large. */
  getAllHistory(query: { maxItems?: number; offset?: number } = {}, opts?: CallOptions): Promise<HistoryMap> {
    return this.#json(
      { method: 'GET', path: '/history', query: { max_items: query.maxItems, offset: query.offset }, expect: 'json', opts },
      historyMapSchema,
    );
  }

  /** `POST /history {delete}`. */
  async deleteHistory(promptIds: string[], opts?: CallOptions): Promise<void> {
    await this.#call({ method: 'POST', path: '/history', json: { delete: promptIds }, expect: 'empty', opts });
  }

  /** `POST /history {clear: true}`. */
  async clearHistory(opts?: CallOptions): Promise<void> {
    await this.#call({ method: 'POST', path: '/history', json: { clear: true }, expect: 'empty', opts });
  }

  /** `POST /interrupt`: global without `promptId`, scoped to that prompt (0.3.57+) with it. Always 200. */
  async interrupt(promptId?: string, opts?: CallOptions): Promise<void> {
    const json = promptId === undefined ? {} : { prompt_id: promptId };
    await this.#call({ method: 'POST', path: '/interrupt', json, expect: 'empty', opts });
  }

  /** `POST /free`: unload models and/or drop the node cache (applied between prompts). */
  async free(what: { unloadModels?: boolean; freeMemory?: boolean }, opts?: CallOptions): Promise<void> {
    const json = { unload_models: what.unloadModels === true, free_memory: what.freeMemory === true };
    await this.#call({ method: 'POST', path: '/free', json, expect: 'empty', opts });
  }

  /** `GET /system_stats`: version, RAM/VRAM, launch flags. */
  getSystemStats(opts?: CallOptions): Promise<SystemStats> {
    return this.#json({ method: 'GET', path: '/system_stats', expect: 'json', opts }, systemStatsSchema);
  }

  /** `GET /object_info`: every node definition (expensive on the server; cache it). */
  getObjectInfo(opts?: CallOptions): Promise<ObjectInfo> {
    return this.#json({ method: 'GET', path: '/object_info', expect: 'json', opts }, objectInfoSchema);
  }

  /** `GET /object_info/{class}`: `{}` for an unknown class. */
  getNodeInfo(classType: string, opts?: CallOptions): Promise<ObjectInfo> {
    return this.#json({ method: 'GET', path: `/object_info/${encodeURIComponent(classType)}`, expect: 'json', opts }, objectInfoSchema);
  }

  /** `GET /models`: the model folder names. */
  getModelFolders(opts?: CallOptions): Promise<string[]> {
    return this.#json({ method: 'GET', path: '/models', expect: 'json', opts }, stringListSchema);
  }

  /** `GET /models/{folder}`: file names (server path separators); an unknown folder is an HTTP 404 error. */
  getModels(folder: string, opts?: CallOptions): Promise<string[]> {
    return this.#json({ method: 'GET', path: `/models/${encodeURIComponent(folder)}`, expect: 'json', opts }, stringListSchema);
  }

  /** `GET /prompt`: `{exec_info: {queue_remaining}}`, the cheapest liveness probe. */
  getPromptStatus(opts?: CallOptions): Promise<{ exec_info: { queue_remaining: number } }> {
    return this.#json({ method: 'GET', path: '/prompt', expect: 'json', opts }, promptStatusSchema);
  }

  /** `GET /features` (0.3.45+; older servers answer 404). Not part of `ComfyApi`. */
  getFeatures(opts?: CallOptions): Promise<ServerFeatures> {
    return this.#json({ method: 'GET', path: '/features', expect: 'json', opts }, serverFeaturesSchema);
  }

  /** `GET /view`: downloads an output, input or temp file. */
  async view(
    file: { filename: string; subfolder?: string; type?: string },
    opts?: CallOptions,
  ): Promise<{ contentType: string; data: Uint8Array }> {
    const res = await this.#call({
      method: 'GET',
      path: '/view',
      query: { filename: file.filename, subfolder: file.subfolder ?? '', type: file.type ?? 'output' },
      expect: 'bytes',
      opts,
    });
    return { contentType: res.contentType, data: new Uint8Array(res.data.buffer, res.data.byteOffset, res.data.byteLength) };
  }

  /** `POST /upload/image` (multipart). Use the returned `name`: the server renames on clashes. */
  uploadImage(
    file: { name: string; data: Uint8Array; contentType?: string },
    params: { type?: string; subfolder?: string; overwrite?: boolean } = {},
    opts?: CallOptions,
  ): Promise<UploadResult> {
    const form = multipart([
      { name: 'image', filename: file.name, contentType: file.contentType ?? 'application/octet-stream', data: file.data },
      ...(params.type !== undefined ? [{ name: 'type', data: params.type }] : []),
      ...(params.subfolder !== undefined ? [{ name: 'subfolder', data: params.subfolder }] : []),
      ...(params.overwrite !== undefined ? [{ name: 'overwrite', data: params.overwrite ? 'true' : 'false' }] : []),
    ]);
    return this.#json(
      { method: 'POST', path: '/upload/image', body: form.body, contentType: form.contentType, expect: 'json', opts },
      uploadResultSchema,
    );
  }

  /** A custom route (not ComfyUI's own API): the answer's status and text; non-2xx throws `kind: 'http'`. */
  async send(req: RouteRequest, opts?: CallOptions): Promise<RouteResponse> {
    if (!req.path.startsWith('/')) throw new TypeError(`ComfyClient.send: path must start with "/", got ${JSON.stringify(req.path)}`);
    const res = await this.#call({ method: req.method, path: req.path, ...(req.json !== undefined ? { json: req.json } : {}), expect: 'bytes', opts });
    return { status: res.status, contentType: res.contentType, text: truncate(res.data.toString('utf8')) };
  }

  /** Aborts in-flight calls (kind `aborted`) and closes the keep-alive sockets. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const ac of this.#inflight) ac.abort('closed' satisfies AbortWhy);
      await this.#agent.close();
    })();
    return this.#closing;
  }

  async #json<T>(spec: CallSpec, schema: z.ZodType<T>): Promise<T> {
    const res = await this.#call(spec);
    const text = res.data.toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (cause) {
      throw this.#error(spec, {
        kind: 'invalid_response',
        message: `response is not JSON (${res.contentType || 'no content type'})`,
        status: res.status,
        headers: res.headers,
        bodyText: truncate(text),
        cause,
      });
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw this.#error(spec, {
        kind: 'invalid_response',
        message: `response does not match the protocol: ${describeIssues(parsed.error)}`,
        status: res.status,
        headers: res.headers,
        body: value,
        bodyText: truncate(text),
        cause: parsed.error,
      });
    }
    return parsed.data;
  }

  async #call(spec: CallSpec): Promise<RawResponse> {
    const { opts } = spec;
    if (this.#closing) throw this.#error(spec, { kind: 'aborted', message: 'client is closed' });
    if (opts?.signal?.aborted) throw this.#error(spec, { kind: 'aborted', message: 'aborted before sending', cause: opts.signal.reason });
    const timeoutMs = opts?.timeoutMs ?? this.#timeoutMs;
    const ac = new AbortController();
    const onCallerAbort = () => ac.abort('aborted' satisfies AbortWhy);
    opts?.signal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer: TimerHandle = this.#clock.setTimeout(() => ac.abort('timeout' satisfies AbortWhy), timeoutMs);
    this.#inflight.add(ac);

    const url = new URL(`${this.#basePath}${spec.path}`, this.#origin);
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { ...this.#headers };
    let body: string | Buffer | undefined;
    if (spec.json !== undefined) {
      body = JSON.stringify(spec.json);
      headers['content-type'] = 'application/json';
    } else if (spec.body !== undefined) {
      body = spec.body;
      if (spec.contentType) headers['content-type'] = spec.contentType;
    }

    try {
      const res = await request(url, { method: spec.method, headers, body, signal: ac.signal, dispatcher: this.#agent });
      const data = Buffer.from(await res.body.arrayBuffer());
      const resHeaders = flattenHeaders(res.headers);
      const contentType = resHeaders['content-type'] ?? '';
      if (res.statusCode < 200 || res.statusCode >= 300) throw this.#httpError(spec, res.statusCode, resHeaders, contentType, data);
      return { status: res.statusCode, headers: resHeaders, contentType, data };
    } catch (err) {
      if (err instanceof ComfyRequestError) throw err;
      const why = ac.signal.aborted ? (ac.signal.reason as AbortWhy) : undefined;
      if (why === 'timeout') {
        throw this.#error(spec, { kind: 'timeout', message: `no complete response within ${timeoutMs} ms`, timeoutMs, cause: err });
      }
      if (why === 'aborted') throw this.#error(spec, { kind: 'aborted', message: 'aborted by the caller', cause: opts?.signal?.reason ?? err });
      if (why === 'closed') throw this.#error(spec, { kind: 'aborted', message: 'client closed during the call', cause: err });
      const transportCode = transportCodeOf(err);
      if (transportCode === 'UND_ERR_HEADERS_TIMEOUT' || transportCode === 'UND_ERR_BODY_TIMEOUT' || transportCode === 'UND_ERR_CONNECT_TIMEOUT') {
        throw this.#error(spec, { kind: 'timeout', message: messageOf(err), transportCode, timeoutMs, cause: err });
      }
      throw this.#error(spec, { kind: 'transport', message: messageOf(err), transportCode, cause: err });
    } finally {
      this.#clock.clearTimeout(timer);
      opts?.signal?.removeEventListener('abort', onCallerAbort);
      this.#inflight.delete(ac);
    }
  }

  #httpError(spec: CallSpec, status: number, headers: Record<string, string>, contentType: string, data: Buffer): ComfyRequestError {
    const text = data.toString('utf8');
    let body: unknown;
    const trimmed = text.trimStart();
    if (contentType.includes('json') || trimmed.startsWith('{') || trimmed.startsWith('[')) {
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
    }
    const validation = parsePromptValidation(body);
    const summary = validation
      ? `${validation.type}: ${validation.message}`
      : (text.split('\n').find((l) => l.trim() !== '') ?? '').slice(0, 200) || '(empty body)';
    return this.#error(spec, {
      kind: 'http',
      message: `HTTP ${status} ${summary}`,
      status,
      headers,
      body,
      bodyText: truncate(text),
    });
  }

  #error(spec: CallSpec, init: Omit<ConstructorParameters<typeof ComfyRequestError>[0], 'server' | 'method' | 'path'>): ComfyRequestError {
    return new ComfyRequestError({
      ...init,
      message: `${this.name} ${spec.method} ${spec.path}: ${init.message}`,
      server: this.name,
      method: spec.method,
      path: spec.path,
    });
  }
}

function withoutOrigin(headers: Record<string, string>): Record<string, string> {
  // ComfyUI answers a bare 403 when Origin differs from a loopback Host; a server-side client never needs it.
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() !== 'origin') out[k.toLowerCase()] = v;
  return out;
}

function flattenHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function truncate(text: string): string {
  return text.length > MAX_BODY_TEXT ? text.slice(0, MAX_BODY_TEXT) : text;
}

type Part = { name: string; data: string } | { name: string; filename: string; contentType: string; data: Uint8Array };

/** A multipart/form-data body; built by hand so the bytes are exactly what we intend. */
function multipart(parts: Part[]): { body: Buffer; contentType: string } {
  const boundary = `----comfyguard${randomBytes(12).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disposition =
      'filename' in p
        ? `form-data; name="${quote(p.name)}"; filename="${quote(p.filename)}"\r\nContent-Type: ${p.contentType}`
        : `form-data; name="${quote(p.name)}"`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\n\r\n`, 'utf8'));
    chunks.push(typeof p.data === 'string' ? Buffer.from(p.data, 'utf8') : Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength));
    chunks.push(Buffer.from('\r\n', 'utf8'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'utf8'));
  return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
}

function quote(s: string): string {
  return s.replace(/["\r\n\\]/g, (c) => (c === '"' ? '%22' : c === '\\' ? '\\\\' : ' '));
}
