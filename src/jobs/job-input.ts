/**
 * Validation of the options a user sends with a job. Every error names the field at fault.
 */
import { JOB_QUALITIES, STRATEGY_NAMES, type JobOptions, type JobQuality } from './types.js';

/** Bad job input; `field` is the dotted path of the offending option. */
export class JobInputError extends Error {
  readonly code = 'INVALID_JOB';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'JobInputError';
  }
}

const KNOWN = new Set([
  'maxRetries',
  'timeoutMs',
  'generationTimeoutMs',
  'requestTimeoutMs',
  'stallTimeoutMs',
  'recovery',
  'fallbackModels',
  'fallbackWorkflows',
  'priority',
  'idempotencyKey',
  'webhookUrl',
  'allowDegradation',
  'serverTags',
  'quality',
]);

function int(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new JobInputError(field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function stringList(field: string, v: unknown, maxLen = 100): string[] {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x.length === 0 || x.length > 1_000) || v.length > maxLen) {
    throw new JobInputError(field, `must be a list of at most ${maxLen} non-empty strings`);
  }
  return [...(v as string[])];
}

/** Checks and copies job options; throws JobInputError naming the bad field. */
export function validateJobOptions(input: unknown): JobOptions {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input)) throw new JobInputError('options', 'must be an object');
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!KNOWN.has(k)) throw new JobInputError(`options.${k}`, 'is not a known job option');
  const out: JobOptions = {};
  if (o.maxRetries !== undefined) out.maxRetries = int('options.maxRetries', o.maxRetries, 0, 100);
  for (const k of ['timeoutMs', 'generationTimeoutMs', 'requestTimeoutMs', 'stallTimeoutMs'] as const) {
    if (o[k] !== undefined) out[k] = int(`options.${k}`, o[k], 1, 7 * 24 * 3_600_000);
  }
  if (o.priority !== undefined) out.priority = int('options.priority', o.priority, -1_000_000, 1_000_000);
  if (o.idempotencyKey !== undefined) {
    if (typeof o.idempotencyKey !== 'string' || o.idempotencyKey.length === 0 || o.idempotencyKey.length > 256) {
      throw new JobInputError('options.idempotencyKey', 'must be a string of 1 to 256 characters');
    }
    out.idempotencyKey = o.idempotencyKey;
  }
  if (o.webhookUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(String(o.webhookUrl));
    } catch {
      throw new JobInputError('options.webhookUrl', `is not a valid URL: ${JSON.stringify(o.webhookUrl)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new JobInputError('options.webhookUrl', 'must be an http(s) URL');
    out.webhookUrl = url.toString();
  }
  if (o.allowDegradation !== undefined) {
    if (typeof o.allowDegradation !== 'boolean') throw new JobInputError('options.allowDegradation', 'must be true or false');
    out.allowDegradation = o.allowDegradation;
  }
  if (o.quality !== undefined) {
    if (typeof o.quality !== 'string' || !(JOB_QUALITIES as readonly string[]).includes(o.quality)) {
      throw new JobInputError('options.quality', `must be one of ${JOB_QUALITIES.map((q) => JSON.stringify(q)).join(', ')}, got ${JSON.stringify(o.quality)}`);
    }
    out.quality = o.quality as JobQuality;
  }
  if (o.fallbackModels !== undefined) out.fallbackModels = stringList('options.fallbackModels', o.fallbackModels);
  if (o.serverTags !== undefined) out.serverTags = stringList('options.serverTags', o.serverTags);
  if (o.fallbackWorkflows !== undefined) {
    if (!Array.isArray(o.fallbackWorkflows) || o.fallbackWorkflows.length > 10) {
      throw new JobInputError('options.fallbackWorkflows', 'must be a list of at most 10 API-format workflows');
    }
    o.fallbackWorkflows.forEach((w, i) => {
      if (!w || typeof w !== 'object' || Array.isArray(w)) throw new JobInputError(`options.fallbackWorkflows[${i}]`, 'must be an API-format workflow object');
      for (const [id, n] of Object.entries(w as Record<string, unknown>)) {
        if (!n || typeof n !== 'object' || typeof (n as { class_type?: unknown }).class_type !== 'string') {
          throw new JobInputError(`options.fallbackWorkflows[${i}].${id}`, 'must be a node with a class_type');
        }
      }
    });
    out.fallbackWorkflows = structuredClone(o.fallbackWorkflows) as JobOptions['fallbackWorkflows'];
  }
  if (o.recovery !== undefined) {
    if (!o.recovery || typeof o.recovery !== 'object' || Array.isArray(o.recovery)) {
      throw new JobInputError('options.recovery', 'must be an object of error code -> list of strategies');
    }
    for (const [code, list] of Object.entries(o.recovery as Record<string, unknown>)) {
      const names = stringList(`options.recovery.${code}`, list, 20);
      for (const n of names) {
        if (!(STRATEGY_NAMES as readonly string[]).includes(n)) {
          throw new JobInputError(`options.recovery.${code}`, `unknown strategy ${JSON.stringify(n)}; known: ${STRATEGY_NAMES.join(', ')}`);
        }
      }
    }
    out.recovery = structuredClone(o.recovery) as JobOptions['recovery'];
  }
  return out;
}
