/**
 * Evidence: every failure comfyguard can observe, and its normalisation into flat `Facts` that the
 * rule table matches on. Normalisation is total: garbage, cycles, throwing getters and huge texts
 * all become some `Facts`; nothing here throws on purpose.
 */
import { capText, numProp, prop, safeErrorMessage, safeErrorName, safeStringify, strProp } from './text.js';

/** Every kind of evidence `classify` understands. */
export const EVIDENCE_KINDS = [
  'transport',
  'http',
  'validation',
  'execution_error',
  'ws_close',
  'timeout',
  'history',
  'interrupted',
  'text',
  'thrown',
] as const;
export type EvidenceKind = (typeof EVIDENCE_KINDS)[number];

/** Phases of our own timeouts: `stall` is classified STALLED, the others TIMEOUT. */
export const TIMEOUT_PHASES = ['request', 'queue', 'generation', 'stall', 'connect'] as const;
export type TimeoutPhase = (typeof TIMEOUT_PHASES)[number];

/** Anything comfyguard can observe going wrong. `classify` also accepts thrown values and garbage. */
export type Evidence =
  /** No response: ECONNREFUSED, ECONNRESET, DNS, TLS, undici socket errors. */
  | { kind: 'transport'; code?: string; message?: string; cause?: unknown }
  /** A non-2xx response (or a 2xx whose body was not what the protocol promises). */
  | { kind: 'http'; status: number; headers?: Record<string, string>; body?: unknown; bodyText?: string; method?: string; path?: string }
  /** A `POST /prompt` 400 body: `{error, node_errors}` (object or legacy string form). */
  | { kind: 'validation'; body: unknown }
  /** The WebSocket or history `execution_error` payload. */
  | { kind: 'execution_error'; data: unknown }
  | { kind: 'ws_close'; code: number; reason?: string }
  /** A timeout of ours. `stall` = accepted but no progress; `queue` = waited too long in line. */
  | { kind: 'timeout'; phase: TimeoutPhase; ms?: number; detail?: string }
  /** A `/history/{id}` entry of a prompt that did not succeed. */
  | { kind: 'history'; entry: unknown }
  /** `execution_interrupted`; `byOwner` when this job's owner asked for it (not an error then). */
  | { kind: 'interrupted'; data?: unknown; byOwner?: boolean }
  /** Free text in the corpus format (`where`, `exception_type`, `message`, `http_status`). */
  | { kind: 'text'; where?: string; exceptionType?: string | null; message: string; httpStatus?: number | null; body?: unknown }
  /** Anything thrown: a ComfyRequestError, a Node error, a string... */
  | { kind: 'thrown'; error: unknown };

/** Where a piece of evidence was observed (the corpus' `where`, or derived from the evidence kind). */
export type Where = 'execution_error' | 'http_response' | 'ws' | 'log' | 'python_exception' | 'client_side' | 'unknown';

/** One flat record the rules match on. Strings are '' when unknown, so matching needs no null checks. */
export interface Facts {
  kind: EvidenceKind;
  where: string;
  /** The text rules scan (capped to 64 KiB head + 16 KiB tail). */
  text: string;
  exceptionType: string;
  httpStatus: number | undefined;
  transportCode: string;
  wsCloseCode: number | undefined;
  timeoutPhase: string;
  byOwner: boolean | undefined;
  nodeId: string;
  nodeType: string;
  /** Validation: the top-level `error.type` or a node error's `type`. */
  validationType: string;
  /** Validation: the input name of a node error. */
  input: string;
  /** Validation: the received value of a node error, as text. */
  value: string;
  method: string;
  path: string;
}

/** One node error of a validation body, flattened. */
export interface ValidationNodeError {
  nodeId: string;
  classType: string;
  input?: string;
  type: string;
  message: string;
  details: string;
  receivedValue?: unknown;
  /** The values ComfyUI allows for the input (`input_config[0]` of a list input), when it sent them. */
  allowed?: string[];
}

/** The normalised observation: one or more candidate `Facts` plus structured extras for the result. */
export interface Observation {
  /** The evidence kind as given (a history entry stays `history` even though its facts are the inner error). */
  evidenceKind: EvidenceKind | 'none';
  /** Candidates; the classification is the earliest rule matching any of them. */
  facts: Facts[];
  nodeErrors?: ValidationNodeError[];
  headers?: Record<string, string>;
  /** A ComfyGuardError found in the evidence: its code is kept as is. */
  passthrough?: unknown;
}

const kComfyRequestError = Symbol.for('comfyguard.ComfyRequestError');
const kComfyGuardError = Symbol.for('comfyguard.ComfyGuardError');

function hasSymbol(x: unknown, sym: symbol): boolean {
  if (typeof x !== 'object' || x === null) return false;
  try {
    return (x as Record<symbol, unknown>)[sym] === true;
  } catch {
    return false;
  }
}

/** Blank facts of a kind. */
export function blankFacts(kind: EvidenceKind, where: string, text: string): Facts {
  return {
    kind,
    where,
    text: capText(text),
    exceptionType: '',
    httpStatus: undefined,
    transportCode: '',
    wsCloseCode: undefined,
    timeoutPhase: '',
    byOwner: undefined,
    nodeId: '',
    nodeType: '',
    validationType: '',
    input: '',
    value: '',
    method: '',
    path: '',
  };
}

const KNOWN_WHERE = new Set(['execution_error', 'http_response', 'ws', 'log', 'python_exception', 'client_side']);

function normWhere(w: unknown): string {
  return typeof w === 'string' && KNOWN_WHERE.has(w) ? w : 'unknown';
}

function headersOf(h: unknown): Record<string, string> | undefined {
  if (typeof h !== 'object' || h === null) return undefined;
  const out: Record<string, string> = {};
  let keys: string[];
  try {
    keys = Object.keys(h).slice(0, 200);
  } catch {
    return undefined;
  }
  for (const k of keys) {
    const v = prop(h, k);
    if (typeof v === 'string') out[k.toLowerCase()] = v;
    else if (Array.isArray(v) && typeof v[0] === 'string') out[k.toLowerCase()] = v[0];
  }
  return out;
}

function prefixType(exceptionType: string, message: string): string {
  if (exceptionType === '' || message.includes(exceptionType)) return message;
  return `${exceptionType}: ${message}`;
}

/** Parses a validation body leniently (object and legacy string `error`); undefined when it is not one. */
export function readValidationBody(body: unknown): { type: string; message: string; details: string; extra: unknown; nodeErrors: ValidationNodeError[] } | undefined {
  const parsed = typeof body === 'string' ? tryJson(body) : body;
  const error = prop(parsed, 'error');
  if (error === undefined) return undefined;
  const nodeErrors: ValidationNodeError[] = [];
  const ne = prop(parsed, 'node_errors');
  if (typeof ne === 'object' && ne !== null && !Array.isArray(ne)) {
    let ids: string[] = [];
    try {
      ids = Object.keys(ne).slice(0, 500);
    } catch {
      ids = [];
    }
    for (const nodeId of ids) {
      const entry = prop(ne, nodeId);
      const classType = strProp(entry, 'class_type') ?? '';
      const errors = prop(entry, 'errors');
      if (!Array.isArray(errors)) continue;
      for (const e of errors.slice(0, 100)) {
        const extra = prop(e, 'extra_info');
        const input = strProp(extra, 'input_name');
        const received = prop(extra, 'received_value');
        const allowed = allowedValues(prop(extra, 'input_config'));
        nodeErrors.push({
          nodeId,
          classType,
          ...(input !== undefined ? { input } : {}),
          type: strProp(e, 'type') ?? '',
          message: strProp(e, 'message') ?? '',
          details: strProp(e, 'details') ?? '',
          ...(received !== undefined ? { receivedValue: received } : {}),
          ...(allowed ? { allowed } : {}),
        });
      }
    }
  }
  if (typeof error === 'string') return { type: 'legacy', message: error, details: '', extra: undefined, nodeErrors };
  if (typeof error !== 'object' || error === null) return undefined;
  return {
    type: strProp(error, 'type') ?? '',
    message: strProp(error, 'message') ?? '',
    details: strProp(error, 'details') ?? '',
    extra: prop(error, 'extra_info'),
    nodeErrors,
  };
}

function tryJson(s: string): unknown {
  const t = s.trimStart();
  if (!t.startsWith('{') || s.length > 4 * 1024 * 1024) return undefined;
  try {
    return JSON.parse(s) as unknown;
  } catch {
    return undefined;
  }
}

/** The input name a node error is about: `extra_info.input_name`, else the start of `details`. */
function inputOf(e: ValidationNodeError): string {
  if (e.input) return e.input;
  const m = /^([\w.-]+)(?::|,|$)/.exec(e.details);
  return m?.[1] ?? '';
}

function valueText(v: unknown, details: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  // `details` of value_not_in_list is "<input>: '<value>' not in [...]".
  const m = /^[\w.-]+:\s*'([^'\n]*)'/.exec(details);
  return m?.[1] ?? '';
}

function validationObservation(body: unknown, where: string): Observation | undefined {
  const v = readValidationBody(body);
  if (!v) return undefined;
  const facts: Facts[] = [];
  for (const e of v.nodeErrors) {
    const f = blankFacts('validation', where, e.details ? `${e.message}: ${e.details}` : e.message);
    f.validationType = e.type;
    f.nodeId = e.nodeId;
    f.nodeType = e.classType;
    f.input = inputOf(e);
    f.value = valueText(e.receivedValue, e.details);
    facts.push(f);
  }
  const top = blankFacts('validation', where, v.details ? `${v.message}: ${v.details}` : v.message);
  top.validationType = v.type;
  // The post-2026 `missing_node_type` carries the node in extra_info.
  top.nodeType = strProp(v.extra, 'class_type') ?? strProp(v.extra, 'node_type') ?? '';
  top.nodeId = strProp(v.extra, 'node_id') ?? '';
  facts.push(top);
  return { evidenceKind: 'validation', facts, nodeErrors: v.nodeErrors };
}

function executionFacts(kind: 'execution_error', data: unknown): Facts {
  const type = strProp(data, 'exception_type') ?? '';
  const message = strProp(data, 'exception_message') ?? (typeof data === 'string' ? data : '');
  const tb = prop(data, 'traceback');
  let trace = '';
  if (Array.isArray(tb)) {
    // The last frames are where the failure is; the first ones are always execution.py.
    const frames = tb.slice(-12).filter((x): x is string => typeof x === 'string');
    trace = frames.join('').slice(-16_384);
  }
  const f = blankFacts(kind, 'execution_error', `${prefixType(type, message.trim())}${trace ? `\n${trace}` : ''}`);
  f.exceptionType = type;
  f.nodeId = strProp(data, 'node_id') ?? '';
  f.nodeType = strProp(data, 'node_type') ?? '';
  return f;
}

function interruptedFacts(data: unknown, byOwner: boolean | undefined): Facts {
  const f = blankFacts('interrupted', 'execution_error', 'execution_interrupted');
  f.nodeId = strProp(data, 'node_id') ?? '';
  f.nodeType = strProp(data, 'node_type') ?? '';
  f.byOwner = byOwner;
  return f;
}

function historyObservation(entry: unknown): Observation {
  // Accept both `{<id>: entry}` (what /history/{id} returns) and a bare entry.
  let e = entry;
  if (prop(e, 'status') === undefined && typeof e === 'object' && e !== null) {
    try {
      const vals = Object.values(e);
      if (vals.length === 1 && prop(vals[0], 'status') !== undefined) e = vals[0];
    } catch {
      // keep e
    }
  }
  const status = prop(e, 'status');
  const messages = prop(status, 'messages');
  if (Array.isArray(messages)) {
    // The outcome is the last terminal message; status_str can lie (comfyui-protocol.md 4).
    for (let i = messages.length - 1; i >= 0; i--) {
      const m: unknown = messages[i];
      if (!Array.isArray(m)) continue;
      const [type, data] = m as [unknown, unknown];
      if (type === 'execution_error') return { evidenceKind: 'history', facts: [executionFacts('execution_error', data)] };
      if (type === 'execution_interrupted') return { evidenceKind: 'history', facts: [interruptedFacts(data, undefined)] };
      if (type === 'execution_success') {
        const outputs = prop(e, 'outputs');
        let empty = true;
        try {
          empty = typeof outputs !== 'object' || outputs === null || Object.keys(outputs).length === 0;
        } catch {
          empty = true;
        }
        const text = empty ? 'The prompt finished but no outputs were produced.' : 'The prompt finished with outputs.';
        return { evidenceKind: 'history', facts: [blankFacts('history', 'execution_error', text)] };
      }
    }
  }
  const statusStr = strProp(status, 'status_str') ?? '';
  return { evidenceKind: 'history', facts: [blankFacts('history', 'execution_error', `history status ${statusStr}: ${safeStringify(e, 4096)}`)] };
}

/** Walks an error's `cause` chain (bounded, cycle-safe) into text, the first errno-like code and an HTTP status. */
function errorChain(err: unknown): { text: string; code: string; status: number | undefined; type: string; guard?: unknown; request?: unknown } {
  const lines: string[] = [];
  let code = '';
  let status: number | undefined;
  let guard: unknown;
  let request: unknown;
  const seen = new Set<unknown>();
  let cur: unknown = err;
  for (let depth = 0; depth < 8 && cur !== undefined && cur !== null && !seen.has(cur); depth++) {
    seen.add(cur);
    if (hasSymbol(cur, kComfyGuardError)) {
      guard = cur;
      break;
    }
    if (hasSymbol(cur, kComfyRequestError)) {
      request = cur;
      break;
    }
    if (typeof cur === 'object') {
      const name = safeErrorName(cur);
      const message = safeErrorMessage(cur);
      lines.push(depth === 0 ? `${name}: ${message}` : `caused by: ${name}: ${message}`);
      const c = strProp(cur, 'code');
      if (!code && c && /^[A-Z][A-Z0-9_]{2,}$/.test(c)) code = c;
      const s = numProp(cur, 'status') ?? numProp(cur, 'statusCode');
      if (status === undefined && s !== undefined && s >= 100 && s <= 599) status = s;
      // AggregateError (e.g. happy-eyeballs connect failures) keeps the real causes in `errors`.
      const errors = prop(cur, 'errors');
      if (Array.isArray(errors)) {
        for (const sub of errors.slice(0, 4)) {
          const sc = strProp(sub, 'code');
          if (!code && sc && /^[A-Z][A-Z0-9_]{2,}$/.test(sc)) code = sc;
          lines.push(`caused by: ${safeErrorName(sub)}: ${safeErrorMessage(sub)}`);
        }
      }
      cur = prop(cur, 'cause');
    } else {
      lines.push(depth === 0 ? String(cur) : `caused by: ${String(cur)}`);
      break;
    }
  }
  const type = typeof err === 'object' && err !== null ? safeErrorName(err) : '';
  return { text: lines.join('\n'), code, status, type, guard, request };
}

function fromRequestError(e: unknown): Observation {
  const kind = strProp(e, 'kind') ?? '';
  const message = safeErrorMessage(e);
  switch (kind) {
    case 'http':
    case 'invalid_response':
      return observe({
        kind: 'http',
        status: numProp(e, 'status') ?? 0,
        headers: headersOf(prop(e, 'headers')) ?? {},
        body: prop(e, 'body'),
        bodyText: strProp(e, 'bodyText') ?? message,
        method: strProp(e, 'method') ?? '',
        path: strProp(e, 'path') ?? '',
      });
    case 'timeout':
      return observe({ kind: 'timeout', phase: 'request', ...(numProp(e, 'timeoutMs') !== undefined ? { ms: numProp(e, 'timeoutMs') } : {}) });
    case 'aborted': {
      // Aborted by a signal whose reason is itself a verdict (a guard error or a timeout): use that.
      const cause = prop(e, 'cause');
      if (hasSymbol(cause, kComfyGuardError)) return { evidenceKind: 'thrown', facts: [], passthrough: cause };
      if (safeErrorName(cause) === 'TimeoutError') return observe({ kind: 'timeout', phase: 'request' });
      return observe({ kind: 'interrupted', byOwner: true });
    }
    case 'websocket': {
      const closeCode = numProp(e, 'wsCloseCode');
      if (closeCode !== undefined) return observe({ kind: 'ws_close', code: closeCode, reason: strProp(e, 'wsCloseReason') ?? '' });
      return observe({ kind: 'transport', code: strProp(e, 'transportCode') ?? '', message, cause: prop(e, 'cause') });
    }
    default:
      return observe({ kind: 'transport', code: strProp(e, 'transportCode') ?? '', message, cause: prop(e, 'cause') });
  }
}

function thrownObservation(err: unknown): Observation {
  if (hasSymbol(err, kComfyGuardError)) return { evidenceKind: 'thrown', facts: [], passthrough: err };
  if (hasSymbol(err, kComfyRequestError)) return fromRequestError(err);
  if (typeof err === 'string') {
    return { evidenceKind: 'thrown', facts: [blankFacts('thrown', 'client_side', err)] };
  }
  if (typeof err !== 'object' || err === null) {
    return { evidenceKind: 'thrown', facts: [blankFacts('thrown', 'client_side', String(err))] };
  }
  const chain = errorChain(err);
  if (chain.guard !== undefined) return { evidenceKind: 'thrown', facts: [], passthrough: chain.guard };
  if (chain.request !== undefined) return fromRequestError(chain.request);
  const f = blankFacts('thrown', 'client_side', chain.text || safeStringify(err, 4096));
  f.exceptionType = chain.type;
  f.transportCode = chain.code;
  f.httpStatus = chain.status;
  return { evidenceKind: 'thrown', facts: [f] };
}

function textObservation(x: unknown): Observation {
  const message = strProp(x, 'message') ?? '';
  const exceptionType = strProp(x, 'exceptionType') ?? strProp(x, 'exception_type') ?? '';
  const where = normWhere(prop(x, 'where'));
  const body = prop(x, 'body');
  const bodyText = body === undefined || body === null ? '' : `\n${safeStringify(body, 16_384)}`;
  const f = blankFacts('text', where, prefixType(exceptionType, message) + bodyText);
  f.exceptionType = exceptionType;
  const status = numProp(x, 'httpStatus') ?? numProp(x, 'http_status');
  if (status !== undefined && status >= 100 && status <= 599) f.httpStatus = status;
  const obs: Observation = { evidenceKind: 'text', facts: [f] };
  if (body !== undefined) {
    const v = validationObservation(body, where === 'unknown' ? 'http_response' : where);
    if (v) {
      obs.facts.push(...v.facts);
      obs.nodeErrors = v.nodeErrors;
    }
  }
  return obs;
}

/**
 * Normalises any input into an Observation. Accepts Evidence objects, ComfyRequestError /
 * ComfyGuardError (also inside a `cause` chain), other thrown values, corpus lines and garbage.
 */
export function observe(input: unknown): Observation {
  if (input === null || input === undefined) return { evidenceKind: 'none', facts: [blankFacts('thrown', 'unknown', String(input))] };
  if (typeof input === 'string') return { evidenceKind: 'text', facts: [blankFacts('text', 'unknown', input)] };
  if (typeof input !== 'object') return thrownObservation(input);
  if (hasSymbol(input, kComfyGuardError) || hasSymbol(input, kComfyRequestError) || input instanceof Error) return thrownObservation(input);
  const kind = prop(input, 'kind');
  switch (kind) {
    case 'transport': {
      const chain = errorChain(prop(input, 'cause'));
      const code = strProp(input, 'code') || chain.code;
      const message = strProp(input, 'message') ?? '';
      const f = blankFacts('transport', 'client_side', [code, message, chain.text].filter((s) => s !== '').join('\n'));
      f.transportCode = code;
      f.exceptionType = chain.type;
      return { evidenceKind: 'transport', facts: [f] };
    }
    case 'http': {
      const status = numProp(input, 'status');
      const headers = headersOf(prop(input, 'headers'));
      const body = prop(input, 'body');
      const bodyText = strProp(input, 'bodyText');
      if (status === 400 || status === undefined) {
        const v = validationObservation(body ?? bodyText, 'http_response');
        if (v) return { ...v, evidenceKind: 'http', ...(headers ? { headers } : {}) };
      }
      const text = [bodyText, body === undefined || body === null || typeof body === 'string' ? (body ?? '') : safeStringify(body, 16_384)]
        .filter((s): s is string => typeof s === 'string' && s !== '')
        .join('\n');
      const f = blankFacts('http', 'http_response', text);
      f.httpStatus = status;
      f.method = strProp(input, 'method') ?? '';
      f.path = strProp(input, 'path') ?? '';
      return { evidenceKind: 'http', facts: [f], ...(headers ? { headers } : {}) };
    }
    case 'validation':
      return validationObservation(prop(input, 'body'), 'http_response') ?? {
        evidenceKind: 'validation',
        facts: [blankFacts('validation', 'http_response', safeStringify(prop(input, 'body'), 16_384))],
      };
    case 'execution_error':
      return { evidenceKind: 'execution_error', facts: [executionFacts('execution_error', prop(input, 'data'))] };
    case 'ws_close': {
      const code = numProp(input, 'code');
      const reason = strProp(input, 'reason') ?? '';
      const f = blankFacts('ws_close', 'ws', `WebSocket closed with code ${code ?? 'unknown'}${reason ? `: ${reason}` : ''}`);
      f.wsCloseCode = code;
      return { evidenceKind: 'ws_close', facts: [f] };
    }
    case 'timeout': {
      const phase = strProp(input, 'phase') ?? 'request';
      const detail = strProp(input, 'detail') ?? '';
      const f = blankFacts('timeout', 'client_side', `${phase} timeout${detail ? `: ${detail}` : ''}`);
      f.timeoutPhase = phase;
      return { evidenceKind: 'timeout', facts: [f] };
    }
    case 'history':
      return historyObservation(prop(input, 'entry'));
    case 'interrupted': {
      const byOwner = prop(input, 'byOwner');
      return { evidenceKind: 'interrupted', facts: [interruptedFacts(prop(input, 'data'), typeof byOwner === 'boolean' ? byOwner : undefined)] };
    }
    case 'text':
      return textObservation(input);
    case 'thrown':
      return thrownObservation(prop(input, 'error'));
    default:
      break;
  }
  // Not tagged: a corpus-style line, or an error-like object from another realm.
  if (typeof prop(input, 'message') === 'string') {
    if (prop(input, 'where') !== undefined || prop(input, 'exception_type') !== undefined || prop(input, 'http_status') !== undefined) {
      return textObservation(input);
    }
    return thrownObservation(input);
  }
  return { evidenceKind: 'none', facts: [blankFacts('thrown', 'unknown', safeStringify(input, 4096))] };
}

/** A list input's choices: `input_config` is `[[choice, …], {options}]`; strings only, bounded. */
function allowedValues(config: unknown): string[] | undefined {
  if (!Array.isArray(config) || !Array.isArray(config[0])) return undefined;
  const list = (config[0] as unknown[]).slice(0, 5_000).filter((v): v is string => typeof v === 'string');
  return list;
}
