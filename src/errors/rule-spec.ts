/**
 * A classifier rule as data (the spec users write), apart from its validation and compilation in
 * `rules.ts` so that the built-in table (`default-rules.ts`) and the compiler do not import each other.
 */
import type { ErrorCode } from './codes.js';
import type { EvidenceKind } from './evidence.js';

/** Conditions of one rule. Every present field must hold; omitted fields do not constrain. */
export interface RuleWhen {
  /** Evidence kinds (`execution_error`, `http`, `text`, ...). */
  kind?: EvidenceKind[];
  /** Where it was observed: execution_error, http_response, ws, log, python_exception, client_side, unknown. */
  where?: string[];
  /** Regex on the exception type (e.g. `OutOfMemoryError$`). */
  exceptionType?: string;
  /** Regexes on the evidence text: at least one must match. */
  message?: string[];
  /** Regexes on the evidence text: every one must match. */
  messageAll?: string[];
  /** Regexes on the evidence text: none may match. */
  notMessage?: string[];
  /** HTTP statuses: numbers, or class strings like `"5xx"` or ranges like `"520-527"`. */
  httpStatus?: Array<number | string>;
  /** Whether an HTTP status was observed at all. */
  hasHttpStatus?: boolean;
  /** Node/undici error codes (ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT, ...), exact. */
  transportCode?: string[];
  /** WebSocket close codes: numbers or ranges like `"4000-4999"`. */
  wsCloseCode?: Array<number | string>;
  /** Our timeout phases: request, queue, generation, stall, connect. */
  timeoutPhase?: string[];
  /** Validation `error.type` or `node_errors[].errors[].type` values, exact. */
  validationType?: string[];
  /** Regex on the node's class type. */
  nodeType?: string;
  /** Regex on the validation input name (e.g. `ckpt_name`). */
  input?: string;
  /** Regex on the validation received value (as text). */
  value?: string;
  /** Regex on the HTTP request path. */
  path?: string;
  /** For interrupts: whether this job's owner asked for it. */
  byOwner?: boolean;
}

/** One rule as data. */
export interface RuleSpec {
  /** Stable id, reported as `Classification.rule`. Built-in ids are dotted (`oom.text`). */
  id: string;
  code: ErrorCode;
  when: RuleWhen;
  /** Replaces the registry hint for this rule (config rules only; not scrubbed, you own it). */
  hint?: string;
  /** Overrides the registry's retryable flag for evidence this rule matches. */
  retryable?: boolean;
  /**
   * How sure a match of this rule is (`Classification.confidence`). `low` for rules whose signal is
   * known to be shared with other causes (a generic exception text, a bare status); default `high`.
   */
  confidence?: 'high' | 'low';
  /** Placement of a config rule: before or after a built-in rule id (default: before all of them). */
  before?: string;
  after?: string;
}
