/**
 * The structured sections of the config file — the policies a flag or a variable cannot carry:
 * servers with tags and weights, classifier rules, per-code recovery strategies, backoff, breaker
 * thresholds and alert sinks. Validated with zod at start; an error names the bad key by its path
 * (`config file key "breaker.failureThreshold"`).
 */
import { z } from 'zod';
import { ClassifierRulesError, compileRules, ERROR_CODES, isErrorCode } from '../errors/index.js';
import { STRATEGY_NAMES, type RecoveryOverrides } from '../jobs/types.js';
import type { ServerOption } from '../jobs/options.js';
import { OutputDeleteRouteSchema } from '../pool/config.js';

const positiveInt = z.number().int().positive();
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

const ServerSchema = z.strictObject({
  url: httpUrl,
  name: z.string().min(1).optional(),
  weight: z.number().positive().optional(),
  tags: z.array(z.string().min(1)).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  maxInFlight: positiveInt.optional(),
  outputDelete: OutputDeleteRouteSchema.optional(),
});

const AlertSinkSchema = z.strictObject({
  type: z.enum(['slack', 'webhook']),
  url: httpUrl,
  secret: z.string().min(1).optional(),
});

/** The file's structured sections; every field optional. */
export const PolicySectionsSchema = z.strictObject({
  servers: z.array(ServerSchema).min(1).optional(),
  recovery: z.record(z.string(), z.array(z.enum(STRATEGY_NAMES)).min(1)).optional(),
  classifierRules: z.unknown().optional(),
  retry: z
    .strictObject({ baseMs: positiveInt, factor: z.number().min(1), capMs: positiveInt, jitter: z.number().min(0).max(1) })
    .partial()
    .optional(),
  breaker: z
    .strictObject({ failureThreshold: positiveInt, halfOpenAfterMs: positiveInt, halfOpenTrials: positiveInt, successesToClose: positiveInt })
    .partial()
    .optional(),
  alerts: z
    .strictObject({
      sinks: z.array(AlertSinkSchema),
      spikeBaselineMs: positiveInt,
      spikeFactor: z.number().min(1),
      maxPerMinute: positiveInt,
    })
    .partial()
    .optional(),
});

export type PolicySections = Omit<z.infer<typeof PolicySectionsSchema>, 'servers' | 'recovery'> & {
  servers?: ServerOption[];
  recovery?: RecoveryOverrides;
};

/** Keys of the config file handled here rather than by the flat settings table. */
export const POLICY_SECTION_KEYS = ['recovery', 'classifierRules', 'retry', 'breaker', 'alerts'] as const;

/** A bad section; `key` is the dotted path of the value at fault. */
export class PolicySectionError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(message);
    this.name = 'PolicySectionError';
    this.key = key;
  }
}

/**
 * Validates the structured sections of a parsed config file (other keys are ignored here): shape
 * by zod, error codes against the registry, classifier rules by the compiler the guard uses, so a
 * bad policy stops `serve` before anything starts.
 */
export function parsePolicySections(file: Record<string, unknown>): PolicySections {
  const picked: Record<string, unknown> = {};
  for (const k of POLICY_SECTION_KEYS) if (file[k] !== undefined && file[k] !== null) picked[k] = file[k];
  // Servers as objects (tags, weights, headers) are structured; as URLs they are the flat `servers` setting.
  if (Array.isArray(file['servers']) && file['servers'].some((s) => typeof s === 'object' && s !== null)) picked['servers'] = file['servers'];
  const parsed = PolicySectionsSchema.safeParse(picked);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.map(String).join('.');
    const keys = issue.code === 'unrecognized_keys' ? `${path ? `${path}.` : ''}${issue.keys[0] ?? ''}` : path;
    throw new PolicySectionError(keys, issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message);
  }
  const out = parsed.data as PolicySections;
  // Strategy names are checked by the schema; which strategies make sense for a code, by the guard at start.
  for (const code of Object.keys(out.recovery ?? {})) {
    if (!isErrorCode(code)) throw new PolicySectionError(`recovery.${code}`, `unknown error code (known: ${ERROR_CODES.join(', ')})`);
  }
  if (out.classifierRules !== undefined) {
    try {
      compileRules(out.classifierRules);
    } catch (err) {
      if (!(err instanceof ClassifierRulesError)) throw err;
      throw new PolicySectionError('classifierRules', err.issues.join('; '));
    }
  }
  return out;
}

/** `ERROR_RECOVERY_ENABLED=false`: classify and report, never change or retry — `abort` for every code. */
export function abortEverything(codes: readonly string[]): RecoveryOverrides {
  return Object.fromEntries(codes.map((c) => [c, ['abort']]));
}
