/**
 * `classify`: any failure comfyguard can observe -> one Classification (code, category,
 * retryability, user-safe message and hint, and the details recovery needs). Total: it accepts
 * garbage and never throws.
 */
import { systemClock, type Clock } from '../util/clock.js';
import type { Classification } from './classification.js';
import { ERROR_REGISTRY, isErrorCode, type ErrorCode } from './codes.js';
import { CODES_WITH_EXCEPTION_DETAIL, exceptionTypeOf, missingModelsOf, missingNodeTypesOf, nodeOf, retryAfterOf } from './details.js';
import { observe, type Facts } from './evidence.js';
import { ComfyGuardError, isComfyGuardError } from './guard-error.js';
import { render } from './render.js';
import { builtinRules, ClassifierRules } from './rules.js';
import { safeErrorMessage, safeErrorName, strProp } from './text.js';

export type { ClassifiedNodeError, Classification } from './classification.js';

export interface ClassifyOptions {
  /** A table from `compileRules` (compile configuration once, up front; anything else is ignored). @default the built-in rules */
  rules?: ClassifierRules;
  /** Names used in hints ("install X on server Y"); only plain names are ever shown. */
  context?: { server?: string; promptId?: string };
  /** For Retry-After HTTP dates. @default systemClock */
  clock?: Clock;
  /**
   * Render the message and hint with the evidence's details (node, model, module, the scrubbed
   * exception line). `false` gives the registry's words only: for hot paths that need just the
   * decision (counting by code, the CLI's JSON lines). @default true
   */
  render?: boolean;
}

function fromGuardError(e: ComfyGuardError): Classification {
  if (e.classification && e.classification.code === e.code) return { ...e.classification };
  const code: ErrorCode = isErrorCode(e.code) ? e.code : 'INTERNAL_ERROR';
  return {
    code,
    category: ERROR_REGISTRY[code].category,
    retryable: typeof e.retryable === 'boolean' ? e.retryable : ERROR_REGISTRY[code].retryable,
    message: typeof e.message === 'string' && e.message ? e.message : ERROR_REGISTRY[code].message,
    hint: typeof e.hint === 'string' ? e.hint : ERROR_REGISTRY[code].hint,
    ...(typeof e.nodeId === 'string' ? { nodeId: e.nodeId } : {}),
    ...(typeof e.nodeType === 'string' ? { nodeType: e.nodeType } : {}),
    confidence: 'high',
    rule: 'passthrough.guard-error',
    evidenceKind: 'thrown',
  };
}

function classifierFailure(err: unknown): Classification {
  // Only reachable through a bug in this module; still answer with data, never throw.
  const info = ERROR_REGISTRY.INTERNAL_ERROR;
  return {
    code: 'INTERNAL_ERROR',
    category: info.category,
    retryable: info.retryable,
    message: info.message,
    hint: info.hint,
    exceptionType: safeErrorName(err),
    confidence: 'low',
    rule: `classifier.failure: ${safeErrorMessage(err).slice(0, 200)}`,
    evidenceKind: 'none',
  };
}

const TRANSIENT_CODES: ReadonlySet<ErrorCode> = new Set(['COMFYUI_OVERLOADED', 'COMFYUI_SERVER_ERROR', 'COMFYUI_CONNECTION_ERROR', 'COMFYUI_TIMEOUT', 'COMFYUI_GENERATION_ERROR']);

function classifyUnsafe(evidence: unknown, opts: ClassifyOptions): Classification {
  const obs = observe(evidence);
  if (obs.passthrough !== undefined && isComfyGuardError(obs.passthrough)) return fromGuardError(obs.passthrough);
  const table = opts.rules instanceof ClassifierRules ? opts.rules : builtinRules();

  let best = -1;
  let winner: Facts | undefined;
  let winnerAt = -1;
  for (const f of obs.facts) {
    const idx = table.firstMatch(f, best < 0 ? undefined : best);
    if (idx >= 0 && (best < 0 || idx < best)) {
      best = idx;
      winner = f;
      winnerAt = table.lastMatchIndex;
    }
  }
  const rule = best >= 0 ? table.rules[best] : undefined;
  const facts = winner ?? obs.facts[0];
  const code: ErrorCode = rule?.code ?? (facts?.kind === 'thrown' ? 'INTERNAL_ERROR' : 'COMFYUI_GENERATION_ERROR');
  const info = ERROR_REGISTRY[code];

  const node = facts ? nodeOf(facts) : {};
  const exceptionType = facts ? exceptionTypeOf(facts) : undefined;
  const nodeErrors = obs.nodeErrors?.map((e) => ({ ...e }));
  const missingModels =
    code === 'COMFYUI_MODEL_MISSING' ? missingModelsOf(obs.facts, obs.nodeErrors, (f) => table.rules[table.firstMatch(f)]?.code === 'COMFYUI_MODEL_MISSING') : undefined;
  const missingNodeTypes = code === 'COMFYUI_MISSING_NODE' ? missingNodeTypesOf(obs.facts) : undefined;
  const clock = opts.clock ?? systemClock;
  const retryAfterMs = TRANSIENT_CODES.has(code) ? retryAfterOf(obs.headers, facts?.text ?? '', () => clock.now()) : undefined;

  const text = facts?.text ?? '';
  const server = opts.context?.server;
  const result: Classification = {
    code,
    category: info.category,
    retryable: rule?.retryable ?? info.retryable,
    message: '',
    hint: '',
    confidence: rule?.confidence ?? 'low',
    rule: rule?.id ?? 'fallback.none',
    evidenceKind: obs.evidenceKind,
  };
  if (node.nodeId !== undefined) result.nodeId = node.nodeId;
  if (node.nodeType !== undefined) result.nodeType = node.nodeType;
  if (exceptionType !== undefined) result.exceptionType = exceptionType;
  if (retryAfterMs !== undefined) result.retryAfterMs = retryAfterMs;
  if (nodeErrors && nodeErrors.length > 0) result.nodeErrors = nodeErrors;
  if (missingModels && missingModels.length > 0) result.missingModels = missingModels;
  if (missingNodeTypes && missingNodeTypes.length > 0) result.missingNodeTypes = missingNodeTypes;

  // For validation, name the nodes whose errors carry this code (a body can mix codes).
  const relevantErrorsOf = () =>
    nodeErrors && facts?.kind === 'validation'
      ? nodeErrors.filter((e) => {
          const f = obs.facts.find((x) => x.nodeId === e.nodeId && x.validationType === e.type);
          return f !== undefined && table.rules[table.firstMatch(f)]?.code === code;
        })
      : nodeErrors;

  // Words are rendered last, from the data above (STYLE.md: render messages last).
  const words$ = (): { message: string; hint: string } =>
    render({
      code,
      ruleHint: rule?.hint,
      nodeId: node.nodeId,
      nodeType: node.nodeType,
      exceptionType,
      text,
      nodeErrors: relevantErrorsOf(),
      missingModels,
      missingNodeTypes,
      retryAfterMs,
      httpStatus: facts?.httpStatus,
      transportCode: facts?.transportCode,
      timeoutPhase: facts?.timeoutPhase,
      server,
      withExceptionDetail: CODES_WITH_EXCEPTION_DETAIL.has(code),
      matchIndex: rule && CODES_WITH_EXCEPTION_DETAIL.has(code) ? (winnerAt >= 0 ? winnerAt : undefined) : undefined,
    });
  if (opts.render === false) {
    result.message = info.message;
    result.hint = rule?.hint ?? info.hint;
  } else {
    const w = words$();
    result.message = w.message;
    result.hint = w.hint;
  }
  return result;
}

/**
 * Classifies any failure: an Evidence object, a ComfyRequestError, any thrown value, or garbage.
 * Never throws. The first matching rule of the table decides (see default-rules.ts for the order).
 * @example classify({ kind: 'execution_error', data: wsMessage.data }).code // 'COMFYUI_OOM'
 */
export function classify(evidence: unknown, opts: ClassifyOptions = {}): Classification {
  try {
    return classifyUnsafe(evidence, opts);
  } catch (err) {
    return classifierFailure(err);
  }
}

/**
 * Normalises any thrown value into a ComfyGuardError, once, at a boundary. A ComfyGuardError is
 * returned as is; anything else is classified and keeps the original as `cause` and `evidence`.
 * @example catch (e) { throw toComfyGuardError(e, { server: 'gpu-1' }) }
 */
export function toComfyGuardError(err: unknown, ctx: { server?: string; promptId?: string; rules?: ClassifierRules } = {}): ComfyGuardError {
  if (isComfyGuardError(err)) return err;
  const server = ctx.server ?? strProp(err, 'server');
  const c = classify(err, {
    ...(ctx.rules ? { rules: ctx.rules } : {}),
    context: { ...(server !== undefined ? { server } : {}), ...(ctx.promptId !== undefined ? { promptId: ctx.promptId } : {}) },
  });
  return ComfyGuardError.fromClassification(c, {
    ...(server !== undefined ? { server } : {}),
    ...(ctx.promptId !== undefined ? { promptId: ctx.promptId } : {}),
    cause: err,
    evidence: err,
  });
}
