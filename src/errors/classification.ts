/**
 * The classifier's verdict as a type, apart from `classify` itself so that `ComfyGuardError` (which
 * carries one) and the classifier (which builds errors) do not import each other.
 */
import type { ErrorCategory, ErrorCode } from './codes.js';
import type { EvidenceKind, ValidationNodeError } from './evidence.js';

/** One node error of a `POST /prompt` validation failure. */
export type ClassifiedNodeError = ValidationNodeError;

/** The verdict on one failure: data for decisions, words (already rendered and scrubbed) for people. */
export interface Classification {
  code: ErrorCode;
  category: ErrorCategory;
  retryable: boolean;
  /** User-safe: no stack traces, paths, hosts, IPs or tokens. */
  message: string;
  /** What to do next, user-safe. */
  hint: string;
  nodeId?: string;
  nodeType?: string;
  exceptionType?: string;
  /** From Retry-After (seconds or HTTP date) or a "retry after N" phrase. */
  retryAfterMs?: number;
  /** For validation: every bad node and input. */
  nodeErrors?: ClassifiedNodeError[];
  /** For MODEL_MISSING: the missing model name(s) and folder when known. */
  missingModels?: Array<{ name: string; folder?: string; nodeId?: string; input?: string }>;
  /** For MISSING_NODE: the missing class types. */
  missingNodeTypes?: string[];
  /**
   * How sure the verdict is. `high`: a structured signal or a rule whose evidence is specific to the
   * code. `low`: nothing specific matched (the fallback), or the deciding rule is one whose signal is
   * shared with other causes (rules marked `confidence: 'low'`). Recovery gives a low-confidence
   * permanent verdict one retry instead of failing at once (src/recovery/decide.ts).
   */
  confidence: 'high' | 'low';
  /** Id of the matching rule (for debugging and tuning). */
  rule: string;
  /** The kind of evidence classified (`none` for garbage). */
  evidenceKind: EvidenceKind | 'none';
}
