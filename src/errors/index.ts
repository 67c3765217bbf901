/**
 * Error taxonomy and classifier: codes and their registry, ComfyGuardError, the evidence model,
 * `classify`, and rules as data (`compileRules`).
 */
export { ERROR_CATEGORIES, ERROR_CODES, ERROR_REGISTRY, isErrorCode } from './codes.js';
export type { ErrorCategory, ErrorCode, ErrorCodeInfo } from './codes.js';
export { classify, toComfyGuardError } from './classify.js';
export type { Classification, ClassifiedNodeError, ClassifyOptions } from './classify.js';
export { ComfyGuardError, isComfyGuardError } from './guard-error.js';
export type { ComfyGuardErrorJSON, ComfyGuardErrorOptions } from './guard-error.js';
export { EVIDENCE_KINDS, TIMEOUT_PHASES } from './evidence.js';
export type { Evidence, EvidenceKind, TimeoutPhase } from './evidence.js';
export { ClassifierRules, ClassifierRulesError, builtinRules, compileRules } from './rules.js';
export type { RuleSpec, RuleWhen, RulesConfig } from './rules.js';
export { DEFAULT_RULES } from './default-rules.js';
export { scrubText } from './scrub.js';
export { classifyMissingCapability } from './capability.js';
export type { MissingCapability } from './capability.js';
