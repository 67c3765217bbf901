/**
 * The recovery policy: for each error code, the ordered list of strategies to try. It is plain data
 * (so it can be stored with a job and rebuilt after a restart), compiled from validated overrides.
 * `decideNext` (decide.ts) walks it to choose the next attempt.
 */
import { ERROR_CODES, isErrorCode, type ErrorCode } from '../errors/codes.js';
import { STRATEGY_NAMES, type RecoveryOverrides, type StrategyName } from '../jobs/types.js';
import type { RecoveryPolicy } from './types.js';

export { decideNext } from './decide.js';
export type { DecisionInput, PoolServer, PoolView, RecoveryDecision, RecoveryPolicy, ServerConstraint } from './types.js';

/**
 * Defaults, following DESIGN.md's error table:
 * - OOM walks the quality-keeping ladder; the reduce_* steps repeat while they change something.
 * - CONNECTION_ERROR / TIMEOUT: resume on the same server when it is healthy (its cache holds the
 *   finished nodes), else fail over at once, else retry with backoff until the budget is spent
 *   (a lone server that restarts comes back).
 * - SERVER_ERROR: ComfyUI's text 500 repeats, so one retry with backoff, then other servers.
 * - STALLED: the server is hung, so do not resume there: another server first, then retry.
 * - OVERLOADED: route elsewhere first, then back off and retry.
 * - GENERATION_ERROR: one retry, then fail. INTERRUPTED: resubmit.
 * - Permanent and fatal codes: abort at once.
 */
export const DEFAULT_POLICY: RecoveryPolicy = Object.freeze({
  COMFYUI_CONNECTION_ERROR: ['resume', 'failover', 'retry'],
  COMFYUI_TIMEOUT: ['resume', 'failover', 'retry'],
  COMFYUI_SERVER_ERROR: ['retry', 'failover'],
  COMFYUI_OVERLOADED: ['failover', 'retry'],
  COMFYUI_STALLED: ['failover', 'retry'],
  COMFYUI_INTERRUPTED: ['retry'],
  COMFYUI_OOM: ['free_memory', 'failover', 'tiled_vae', 'reduce_batch', 'reduce_resolution', 'reduce_steps'],
  COMFYUI_MODEL_MISSING: ['failover', 'switch_model', 'fallback_workflow'],
  COMFYUI_MISSING_NODE: ['failover', 'fallback_workflow'],
  COMFYUI_DEPENDENCY_ERROR: ['failover', 'fallback_workflow'],
  COMFYUI_GPU_FAULT: ['failover'],
  COMFYUI_GENERATION_ERROR: ['retry'],
  COMFYUI_OUTPUT_ERROR: ['abort'],
  COMFYUI_INVALID_PARAMETERS: ['abort'],
  COMFYUI_WORKFLOW_ERROR: ['abort'],
  COMFYUI_AUTH_ERROR: ['abort'],
  COMFYUI_DISK_FULL: ['abort'],
  INTERNAL_ERROR: ['abort'],
} satisfies Record<ErrorCode, StrategyName[]>);

/** One problem found in a recovery override. */
export interface PolicyIssue {
  /** e.g. `global.COMFYUI_OOM[2]` */
  path: string;
  message: string;
}

const kPolicyError = Symbol.for('comfyguard.RecoveryPolicyError');

/** A recovery override that does not make sense; lists every problem, each naming the code or strategy. */
export class RecoveryPolicyError extends Error {
  readonly code = 'INVALID_RECOVERY_POLICY';
  readonly issues: readonly PolicyIssue[];

  constructor(issues: PolicyIssue[]) {
    super(`invalid recovery policy: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.name = 'RecoveryPolicyError';
    this.issues = issues;
    Object.defineProperty(this, kPolicyError, { value: true });
  }

  /** Identifies policy errors by marker, not by prototype. */
  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[kPolicyError] === true;
  }
}

/** Checks one override object; pushes issues rather than throwing so all of them are reported at once. */
function validateOverrides(scope: string, overrides: unknown, issues: PolicyIssue[]): Partial<Record<ErrorCode, StrategyName[]>> {
  const out: Partial<Record<ErrorCode, StrategyName[]>> = {};
  if (overrides === undefined || overrides === null) return out;
  if (typeof overrides !== 'object' || Array.isArray(overrides)) {
    issues.push({ path: scope, message: 'must be an object mapping error codes to strategy lists' });
    return out;
  }
  for (const [code, list] of Object.entries(overrides)) {
    const path = `${scope}.${code}`;
    if (!isErrorCode(code)) {
      issues.push({ path, message: `unknown error code "${code}" (known: ${ERROR_CODES.join(', ')})` });
      continue;
    }
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.length === 0) {
      issues.push({ path, message: 'must be a non-empty list of strategies (use ["abort"] to fail at once)' });
      continue;
    }
    const strategies: StrategyName[] = [];
    list.forEach((s: unknown, i) => {
      if (typeof s !== 'string' || !(STRATEGY_NAMES as readonly string[]).includes(s)) {
        issues.push({ path: `${path}[${i}]`, message: `unknown strategy ${JSON.stringify(s)} (known: ${STRATEGY_NAMES.join(', ')})` });
      } else if (s === 'abort' && i !== list.length - 1) {
        issues.push({ path: `${path}[${i}]`, message: '"abort" must be the last strategy: nothing after it can run' });
      } else strategies.push(s as StrategyName);
    });
    out[code] = strategies;
  }
  return out;
}

/**
 * Builds the policy for one job: the defaults, then the guard's global overrides, then the job's
 * own. An override replaces the whole list of its code. Validates every name.
 * @throws RecoveryPolicyError naming each bad code or strategy.
 * @example compilePolicy({ COMFYUI_OOM: ['free_memory', 'reduce_batch'] }, job.options.recovery)
 */
export function compilePolicy(global?: RecoveryOverrides, perJob?: RecoveryOverrides): RecoveryPolicy {
  const issues: PolicyIssue[] = [];
  const g = validateOverrides('global', global, issues);
  const j = validateOverrides('job', perJob, issues);
  if (issues.length > 0) throw new RecoveryPolicyError(issues);
  const policy = {} as Record<ErrorCode, readonly StrategyName[]>;
  for (const code of ERROR_CODES) policy[code] = Object.freeze([...(j[code] ?? g[code] ?? DEFAULT_POLICY[code])]);
  return Object.freeze(policy);
}
