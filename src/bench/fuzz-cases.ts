/**
 * Hostile requests for every route of the HTTP service, as fast-check arbitraries, and the check
 * every answer must pass. Shared by the bounded property tests (`test/server/fuzz.test.ts`) and the
 * long fuzz run (`npm run bench -- fuzz`). Development only: fast-check is a dev dependency.
 */
import fc from 'fast-check';
import { request } from 'node:http';
import type { Dispatcher } from '../queue/contract.js';

/** One request as the fuzzer sends it. */
export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** Strings that have broken parsers, patterns and paths before. */
const NASTY = [
  '__proto__',
  'constructor',
  'prototype',
  '',
  ' ',
  '../..',
  '..\\..\\windows',
  '/etc/passwd',
  'C:\\Users\\x',
  '%00',
  'a\nb',
  "5'",
  'Image Save',
  '\u0000',
  '\ud800',
  'x'.repeat(300),
  'sk-abcdefghijklmnopqrstuvwxyz012345',
  'http://user:pass@127.0.0.1:1/x',
  'http://169.254.169.254/latest/meta-data/',
  'http://2130706433/',
  '<svg onload=alert(1)>',
  '${jndi:x}',
  '1e309',
  '-0',
];

/** A string from the nasty list or any string at all. */
export const weirdString: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
);

const json = fc.jsonValue({ maxDepth: 3 });
const anyValue: fc.Arbitrary<unknown> = fc.oneof({ weight: 4, arbitrary: json }, { weight: 1, arbitrary: weirdString });

const inputValue = fc.oneof(json, fc.tuple(weirdString, fc.integer({ min: -2, max: 99 })), weirdString, fc.double());

const node = fc.record(
  {
    class_type: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('KSampler', 'EmptyImage', 'SaveImage', 'CheckpointLoaderSimple', 'VAEDecode', 'My Node', 'Image Save') }, { weight: 2, arbitrary: weirdString }, { weight: 1, arbitrary: json }),
    inputs: fc.oneof({ weight: 5, arbitrary: fc.dictionary(weirdString, inputValue, { maxKeys: 6 }) }, { weight: 1, arbitrary: json }),
    _meta: fc.record({ title: anyValue }, { requiredKeys: [] }),
  },
  { requiredKeys: [] },
);

/**
 * A workflow the guard accepts and runs: a real image graph under arbitrary node ids, sometimes
 * with a node type no server has (the spellings that once looped recovery: "My Node", "Image Save").
 */
const runnableWorkflow: fc.Arbitrary<unknown> = fc
  .record({
    a: fc.oneof(fc.constant('1'), weirdString.filter((s) => s !== '')),
    b: fc.oneof(fc.constant('2'), weirdString.filter((s) => s !== '')),
    extra: fc.option(fc.record({ id: weirdString.filter((s) => s !== ''), type: fc.constantFrom('My Node', 'Image Save', 'a\nb', 'KSampler') }), { nil: null }),
    size: fc.integer({ min: 1, max: 128 }),
    prefix: weirdString,
  })
  .filter(({ a, b, extra }) => a !== b && (!extra || (extra.id !== a && extra.id !== b)))
  .map(({ a, b, extra, size, prefix }) => ({
    [a]: { class_type: 'EmptyImage', inputs: { width: size, height: size, batch_size: 1, color: 0 } },
    [b]: { class_type: 'SaveImage', inputs: { images: [a, 0], filename_prefix: prefix } },
    ...(extra ? { [extra.id]: { class_type: extra.type, inputs: { image: [a, 0] } } } : {}),
  }));

/** An API-format workflow: runnable, well-formed but odd, or not a workflow at all. */
export const workflowArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: runnableWorkflow },
  { weight: 6, arbitrary: fc.dictionary(weirdString, node, { minKeys: 0, maxKeys: 6 }) },
  { weight: 1, arbitrary: json },
  { weight: 1, arbitrary: fc.record({ nodes: fc.array(json, { maxLength: 2 }), links: fc.array(json, { maxLength: 2 }) }) },
);

const url = fc.oneof(fc.webUrl({ withQueryParameters: true, withFragments: true }), weirdString, fc.constantFrom(...NASTY.filter((s) => s.startsWith('http'))));

const jobOptions = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record(
      {
        maxRetries: fc.oneof(fc.integer({ min: -5, max: 200 }), anyValue),
        timeoutMs: fc.oneof(fc.integer(), anyValue),
        generationTimeoutMs: fc.integer({ min: -1, max: 10_000_000_000 }),
        requestTimeoutMs: fc.integer(),
        stallTimeoutMs: fc.integer(),
        recovery: fc.dictionary(fc.oneof(weirdString, fc.constantFrom('COMFYUI_OOM', 'COMFYUI_MODEL_MISSING')), fc.oneof(fc.array(fc.constantFrom('retry', 'reduce_batch', 'failover', 'nope')), json), { maxKeys: 3 }),
        fallbackModels: fc.oneof(fc.array(weirdString, { maxLength: 4 }), json),
        fallbackWorkflows: fc.array(workflowArb, { maxLength: 2 }),
        priority: fc.oneof(fc.integer(), fc.double(), anyValue),
        idempotencyKey: weirdString,
        webhookUrl: url,
        allowDegradation: anyValue,
        serverTags: fc.array(weirdString, { maxLength: 3 }),
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: json },
);

const jobParams = fc.oneof(
  fc.record(
    { width: fc.oneof(fc.integer(), anyValue), height: fc.integer({ min: -10, max: 100_000 }), seed: fc.oneof(fc.integer(), fc.double()), steps: fc.integer(), cfg: fc.double(), denoise: fc.double(), prompt: weirdString, ckpt_name: weirdString, batch_size: fc.integer() },
    { requiredKeys: [] },
  ),
  fc.dictionary(weirdString, anyValue, { maxKeys: 4 }),
  json,
);

/** A submission the guard accepts, so jobs really run (with odd ids, unknown node types, priorities, retries). */
const acceptedSubmit = fc.record(
  { workflow: runnableWorkflow, options: fc.record({ maxRetries: fc.integer({ min: 0, max: 3 }), priority: fc.integer({ min: -5, max: 5 }), idempotencyKey: fc.string({ minLength: 1, maxLength: 8 }) }, { requiredKeys: [] }) },
  { requiredKeys: ['workflow'] },
);

const submitBody = fc.oneof(
  { weight: 2, arbitrary: acceptedSubmit },
  { weight: 3, arbitrary: fc.record({ workflow: workflowArb, params: jobParams, options: jobOptions, extra: anyValue }, { requiredKeys: ['workflow'] }) },
);

const promptBody = fc.record(
  {
    prompt: fc.oneof(runnableWorkflow, workflowArb),
    client_id: fc.oneof(weirdString, json),
    prompt_id: fc.oneof(weirdString, fc.integer(), json),
    extra_data: fc.oneof(fc.dictionary(weirdString, json, { maxKeys: 3 }), json),
    number: fc.oneof(fc.double(), json),
    front: anyValue,
    partial_execution_targets: fc.oneof(fc.array(weirdString, { maxLength: 3 }), json),
  },
  { requiredKeys: [] },
);

const enc = (s: string): string => {
  try {
    return encodeURIComponent(s);
  } catch {
    // Lone surrogates cannot be encoded; send their replacement.
    return encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '\ufffd'));
  }
};

/** A path segment: encoded, or one of the encodings routers have choked on. */
const segment = fc.oneof({ weight: 8, arbitrary: weirdString.map(enc) }, { weight: 1, arbitrary: fc.uuid() }, { weight: 1, arbitrary: fc.constantFrom('%E0%A4%A', '%', '..%2F..', '%2e%2e', 'a%00b', '%C0%AF') });

const query = (keys: string[]): fc.Arbitrary<string> =>
  fc.dictionary(fc.oneof(fc.constantFrom(...keys), weirdString), fc.oneof(weirdString, fc.integer().map(String)), { maxKeys: 3 }).map((q) => {
    const parts = Object.entries(q).map(([k, v]) => `${enc(k)}=${enc(v)}`);
    return parts.length > 0 ? `?${parts.join('&')}` : '';
  });

/** How a body is written: usually JSON, sometimes broken, deep or empty. */
function encodeBody(value: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 10, arbitrary: value.map((v) => JSON.stringify(v) ?? 'null') },
    { weight: 1, arbitrary: value.chain((v) => fc.nat({ max: 200 }).map((n) => (JSON.stringify(v) ?? '').slice(0, n))) },
    { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
    { weight: 1, arbitrary: fc.integer({ min: 10, max: 3_000 }).map((d) => `{"workflow":${'['.repeat(d)}${']'.repeat(d)}}`) },
    { weight: 1, arbitrary: fc.constant('') },
  );
}

const contentType = fc.oneof(
  { weight: 12, arbitrary: fc.constant('application/json') },
  { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'APPLICATION/JSON', '', 'x/y') },
);

function post(path: fc.Arbitrary<string>, body: fc.Arbitrary<unknown>, method = 'POST'): fc.Arbitrary<FuzzRequest> {
  return fc.record({ path, body: encodeBody(body), type: contentType }).map(({ path: p, body: b, type }): FuzzRequest => ({
    method,
    path: p,
    headers: type === '' ? {} : { 'content-type': type },
    body: b,
  }));
}

function get(path: fc.Arbitrary<string>): fc.Arbitrary<FuzzRequest> {
  return path.map((p) => ({ method: 'GET', path: p, headers: {} }));
}

/** Requests to the job API. */
export const jobApiRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
  { weight: 6, arbitrary: post(fc.constant('/api/jobs'), submitBody) },
  { weight: 1, arbitrary: post(segment.map((id) => `/api/jobs/${id}/retry`), fc.oneof(fc.record({ force: anyValue }, { requiredKeys: [] }), json)) },
  { weight: 1, arbitrary: post(fc.tuple(segment, query(['force'])).map(([id, q]) => `/api/jobs/${id}/retry${q}`), json) },
  { weight: 1, arbitrary: post(segment.map((id) => `/api/jobs/${id}/cancel`), json) },
  { weight: 1, arbitrary: get(query(['status', 'limit', 'cursor', 'include']).map((q) => `/api/jobs${q}`)) },
  { weight: 1, arbitrary: get(fc.tuple(segment, query(['include'])).map(([id, q]) => `/api/jobs/${id}${q}`)) },
  { weight: 1, arbitrary: get(segment.map((id) => `/api/jobs/${id}/events`)).map((r) => ({ ...r, headers: { ...r.headers, 'x-fuzz-sse': '1' } })) },
  { weight: 1, arbitrary: query(['olderThanHours']).map((q) => ({ method: 'DELETE', path: `/api/jobs${q}`, headers: {} })) },
  { weight: 1, arbitrary: get(fc.oneof(fc.constant('/api/stats'), query(['hours']).map((q) => `/api/stats/detailed${q}`), fc.constantFrom('/api/health', '/api/health/comfyui'))) },
  { weight: 1, arbitrary: get(fc.tuple(segment, fc.oneof(fc.constantFrom('output', 'temp', 'input'), segment), segment, query(['subfolder'])).map(([s, t, f, q]) => `/api/outputs/${s}/${t}/${f}${q}`)) },
);

/** Requests to the ComfyUI-compatible endpoint. */
export const comfyRequest: fc.Arbitrary<FuzzRequest> = fc.oneof(
  { weight: 5, arbitrary: post(fc.tuple(fc.constant('/comfy/prompt'), query(['clientId'])).map(([p, q]) => p + q), promptBody) },
  { weight: 1, arbitrary: post(fc.constant('/comfy/queue'), fc.record({ delete: fc.oneof(fc.array(fc.oneof(weirdString, fc.integer()), { maxLength: 3 }), json), clear: anyValue }, { requiredKeys: [] })) },
  { weight: 1, arbitrary: post(query(['clientId']).map((q) => `/comfy/interrupt${q}`), fc.oneof(fc.record({ prompt_id: anyValue }, { requiredKeys: [] }), json)) },
  { weight: 1, arbitrary: post(fc.constantFrom('/comfy/history', '/comfy/free'), json) },
  { weight: 1, arbitrary: get(fc.oneof(query(['max_items', 'offset']).map((q) => `/comfy/history${q}`), segment.map((id) => `/comfy/history/${id}`), fc.constantFrom('/comfy/queue', '/comfy/prompt'))) },
  { weight: 1, arbitrary: get(query(['filename', 'subfolder', 'type']).map((q) => `/comfy/view${q}`)) },
);

/** Any request the fuzzer sends. */
export const anyRequest: fc.Arbitrary<FuzzRequest> = fc.oneof({ weight: 3, arbitrary: jobApiRequest }, { weight: 2, arbitrary: comfyRequest });

/** What came back (or did not). */
export interface FuzzOutcome {
  status: number;
  body: string;
  /** No full answer within the time limit. */
  hung: boolean;
  /** The connection failed (reset, refused): a crash or a refused request. */
  error: string | null;
}

/** Sends one request over a fresh connection; an SSE stream is cut after its first bytes. */
export function send(base: string, r: FuzzRequest, timeoutMs = 10_000): Promise<FuzzOutcome> {
  const u = new URL(base);
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: FuzzOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(o);
    };
    const { 'x-fuzz-sse': sse, ...headers } = r.headers;
    let req: ReturnType<typeof request>;
    try {
      req = request({ host: u.hostname, port: u.port, method: r.method, path: r.path, headers: { ...headers, ...(r.body !== undefined ? { 'content-length': String(Buffer.byteLength(r.body)) } : {}) }, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          // A live event stream never ends by itself: its first event is the answer.
          if (sse && res.statusCode === 200) {
            finish({ status: 200, body: Buffer.concat(chunks).toString('utf8'), hung: false, error: null });
            req.destroy();
          }
        });
        res.on('end', () => finish({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), hung: false, error: null }));
        res.on('error', (e) => finish({ status: res.statusCode ?? 0, body: '', hung: false, error: e.message }));
      });
    } catch (e) {
      // Node refuses to send it (an invalid header or path): not the service's doing.
      resolve({ status: -1, body: '', hung: false, error: `not sent: ${(e as Error).message}` });
      return;
    }
    const timer = setTimeout(() => {
      finish({ status: 0, body: '', hung: true, error: null });
      req.destroy();
    }, timeoutMs);
    req.on('error', (e) => finish({ status: 0, body: '', hung: false, error: e.message }));
    if (r.body !== undefined) req.write(r.body);
    req.end();
  });
}

/** 5xx codes that report a ComfyUI server's failure (the fuzzer's servers may be down), not ours. */
const UPSTREAM_CODES = new Set(['UPSTREAM_ERROR', 'UPSTREAM_TIMEOUT']);

/** True for a 502/504 that names a ComfyUI server's failure: a correct answer, counted apart from 5xx of our own. */
export function isUpstreamFailure(o: FuzzOutcome): boolean {
  if (o.status !== 502 && o.status !== 504) return false;
  try {
    const b = JSON.parse(o.body) as { error?: { code?: unknown } };
    return typeof b.error?.code === 'string' && UPSTREAM_CODES.has(b.error.code);
  } catch {
    return false;
  }
}

/** The problems with an answer: a 5xx of our own, a hang, a dropped connection, or an error without the one shape. Empty when fine. */
export function problemsOf(o: FuzzOutcome): string[] {
  if (o.status === -1) return [];
  const out: string[] = [];
  if (o.hung) out.push('hang');
  else if (o.error !== null) out.push(`connection: ${o.error}`);
  else if (o.status >= 500 && !isUpstreamFailure(o)) out.push(`status ${o.status}`);
  if (!o.hung && o.error === null && o.status >= 400) {
    try {
      const b = JSON.parse(o.body) as { error?: { code?: unknown; message?: unknown } };
      if (typeof b.error?.code !== 'string' || typeof b.error.message !== 'string') out.push('error without {error:{code,message}}');
      if (/Maximum call stack|at .*\.js:\d+|\/opt\/|node_modules/.test(o.body)) out.push('internal detail in the answer');
    } catch {
      out.push('error body is not JSON');
    }
  }
  return out;
}

/**
 * A dispatcher that accepts jobs and never runs them: the fuzzer exercises the service and the
 * guard's intake (validation, the store) without starting work on a ComfyUI server.
 */
export function parkedDispatcher(): Dispatcher {
  const waiting = new Set<string>();
  return {
    kind: 'in-process',
    start: async () => undefined,
    enqueue: async (id) => void waiting.add(id),
    enqueueMany: async (items) => {
      for (const { id } of items) waiting.add(id);
    },
    remove: async (id) => waiting.delete(id),
    counts: async () => ({ waiting: waiting.size, active: 0 }),
    onIdle: async () => undefined,
    close: async () => waiting.clear(),
  };
}
