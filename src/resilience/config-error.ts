import type { z } from 'zod';

const kPolicyConfigError = Symbol.for('comfyguard.PolicyConfigError');

/**
 * A policy or pool configuration that does not make sense (negative retries, jitter above 1...).
 * Thrown at compile time, never while a job runs, so a bad config fails at start-up.
 */
export class PolicyConfigError extends Error {
  /** Stable code for callers that match on codes rather than classes. */
  readonly code = 'ERR_COMFYGUARD_INVALID_POLICY';
  /** Dotted path of the first bad field, e.g. `retry.jitter`. */
  readonly field: string;
  /** Every problem found, one line each. */
  readonly issues: string[];

  constructor(what: string, issues: Array<{ field: string; message: string }>) {
    const first = issues[0] ?? { field: '(root)', message: 'invalid' };
    super(`Invalid ${what}: ${issues.map((i) => `\`${i.field}\` ${i.message}`).join('; ')}`);
    this.name = 'PolicyConfigError';
    this.field = first.field;
    this.issues = issues.map((i) => `${i.field}: ${i.message}`);
    Object.defineProperty(this, kPolicyConfigError, { value: true });
  }

  /** Cross-realm safe check. */
  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[kPolicyConfigError] === true;
  }
}

/** Turns zod issues into a PolicyConfigError naming each bad field under `prefix`. */
export function configErrorFromZod(what: string, prefix: string, issues: readonly z.core.$ZodIssue[]): PolicyConfigError {
  return new PolicyConfigError(
    what,
    issues.flatMap((issue) => {
      const path = issue.path.map(String);
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((k) => ({ field: [prefix, ...path, k].filter(Boolean).join('.'), message: 'is not a known option' }));
      }
      return [{ field: [prefix, ...path].filter(Boolean).join('.') || prefix, message: issue.message }];
    }),
  );
}
