/**
 * Retry policy as a value: compiled once from plain, persistable options (validated), then asked
 * "may I retry?" and "how long do I wait?". The delay schedule is cockatiel's ExponentialBackoff
 * iterator; jitter and server hints are applied on top so their bounds are exact.
 */
import { DelegateBackoff, ExponentialBackoff, handleWhen, retry, type GeneratorFn, type IBackoff, type RetryPolicy as CockatielRetryPolicy } from 'cockatiel';
import { z } from 'zod';
import { PolicyConfigError, configErrorFromZod } from './config-error.js';

/** Retry options: plain data, stored with a job and compiled into a {@link RetryPolicy}. */
export interface RetryOptions {
  /** Retries after the first attempt. @default 3 */
  maxRetries?: number;
  /** Delay before the first retry. @default 1000 */
  baseMs?: number;
  /** Growth per retry. @default 2 */
  factor?: number;
  /** Upper bound of any delay, server hints included. @default 60000 */
  capMs?: number;
  /** Relative jitter: the delay is spread uniformly over ±jitter of its nominal value. @default 0.25 */
  jitter?: number;
}

/** What a retry decision needs from a classified failure. */
export interface RetryClassification {
  category: string;
  retryable: boolean;
  retryAfterMs?: number;
}

/** A compiled retry policy (see {@link compileRetryPolicy}). */
export interface RetryPolicy {
  readonly options: Readonly<Required<RetryOptions>>;
  /** Delay before retry number `retry` (1-based), honouring a server hint (retryAfterMs) when given. */
  delayMs(retry: number, hint?: { retryAfterMs?: number }, random?: () => number): number;
  /** Whether a failure with this classification may be retried after `retriesSoFar` retries. */
  shouldRetry(c: { category: string; retryable: boolean }, retriesSoFar: number): boolean;
}

export const DEFAULT_RETRY_OPTIONS: Readonly<Required<RetryOptions>> = Object.freeze({
  maxRetries: 3,
  baseMs: 1000,
  factor: 2,
  capMs: 60_000,
  jitter: 0.25,
});

const finite = () => z.number().refine(Number.isFinite, 'must be a finite number');

const retryOptionsSchema = z
  .strictObject({
    maxRetries: z.number().int('must be an integer').min(0, 'must be >= 0').max(1000, 'must be <= 1000').optional(),
    baseMs: finite().min(0, 'must be >= 0').optional(),
    factor: finite().min(1, 'must be >= 1').optional(),
    capMs: finite().min(0, 'must be >= 0').optional(),
    jitter: finite().min(0, 'must be >= 0').max(1, 'must be <= 1').optional(),
  });

/** Only these categories are ever retried; permanent and fatal failures fail fast. */
const RETRYABLE_CATEGORIES: ReadonlySet<string> = new Set(['transient', 'recoverable']);

// cockatiel's own noJitterGenerator hard-codes a factor of 2; this one honours `exponent`.
const exponentialGenerator: GeneratorFn<number> = (attempt = 0, o) => [Math.min(o.maxDelay, o.initialDelay * o.exponent ** attempt), attempt + 1];

class CompiledRetryPolicy implements RetryPolicy {
  readonly options: Readonly<Required<RetryOptions>>;
  /** Nominal (un-jittered) delays computed so far; index 0 is retry 1. */
  readonly #schedule: number[] = [];
  #backoff: IBackoff<unknown>;

  constructor(options: Readonly<Required<RetryOptions>>) {
    this.options = options;
    this.#backoff = new ExponentialBackoff({
      generator: exponentialGenerator,
      initialDelay: options.baseMs,
      exponent: options.factor,
      maxDelay: options.capMs,
    }).next();
    this.#schedule.push(this.#backoff.duration);
  }

  delayMs(retryNo: number, hint?: { retryAfterMs?: number }, random: () => number = Math.random): number {
    if (!Number.isInteger(retryNo) || retryNo < 1) throw new RangeError(`retry must be an integer >= 1, got ${retryNo}`);
    const { capMs, jitter } = this.options;
    const after = hint?.retryAfterMs;
    // The server knows best: its hint replaces the backoff (no jitter), bounded only by the cap.
    if (typeof after === 'number' && Number.isFinite(after) && after >= 0) return Math.min(capMs, Math.ceil(after));
    const nominal = this.#nominal(retryNo);
    if (jitter === 0) return nominal;
    const r = Math.min(Math.max(random(), 0), 1);
    const spread = nominal * jitter * (2 * r - 1);
    return Math.min(capMs, Math.max(0, Math.round(nominal + spread)));
  }

  shouldRetry(c: { category: string; retryable: boolean }, retriesSoFar: number): boolean {
    return c.retryable && RETRYABLE_CATEGORIES.has(c.category) && retriesSoFar < this.options.maxRetries;
  }

  /** The nominal delay of retry `n`, walking cockatiel's immutable backoff iterator as far as needed. */
  #nominal(n: number): number {
    const last = this.#schedule[this.#schedule.length - 1] ?? 0;
    // Once the cap is reached every later delay is the cap; no need to iterate further.
    if (n > this.#schedule.length && last >= this.options.capMs) return this.options.capMs;
    while (this.#schedule.length < n) {
      this.#backoff = this.#backoff.next(undefined);
      this.#schedule.push(this.#backoff.duration);
    }
    return this.#schedule[n - 1] ?? this.options.capMs;
  }
}

/**
 * Compiles retry options (defaults merged, validated, frozen) into a policy value.
 * Throws a PolicyConfigError naming the bad field.
 * @example compileRetryPolicy({ maxRetries: 5 }).delayMs(2, undefined, () => 0.5) // 2000
 */
export function compileRetryPolicy(opts: RetryOptions = {}): RetryPolicy {
  const parsed = retryOptionsSchema.safeParse(opts);
  if (!parsed.success) throw configErrorFromZod('retry policy', 'retry', parsed.error.issues);
  const merged: Required<RetryOptions> = { ...DEFAULT_RETRY_OPTIONS };
  for (const [k, v] of Object.entries(parsed.data) as Array<[keyof RetryOptions, number | undefined]>) {
    if (v !== undefined) merged[k] = v;
  }
  if (merged.capMs < merged.baseMs) {
    throw new PolicyConfigError('retry policy', [{ field: 'retry.capMs', message: `must be >= baseMs (${merged.baseMs}), got ${merged.capMs}` }]);
  }
  return new CompiledRetryPolicy(Object.freeze(merged));
}

/**
 * A cockatiel RetryPolicy for short request-level retries (a health probe, a capability refresh):
 * it retries what `classify` says this policy may retry, waits `policy.delayMs` (server hints
 * included), and gives up after `maxRetries`. Job-level retries are persisted by the job engine
 * instead and use `delayMs`/`shouldRetry` directly.
 */
export function requestRetry(
  policy: RetryPolicy,
  classify: (error: unknown) => RetryClassification,
  random: () => number = Math.random,
): CockatielRetryPolicy {
  const backoff = new DelegateBackoff<{ attempt: number; result: { error: Error } | { value: unknown } }>((ctx) => {
    const hint = 'error' in ctx.result ? classify(ctx.result.error) : undefined;
    return policy.delayMs(ctx.attempt, hint, random);
  });
  return retry(
    handleWhen((e) => policy.shouldRetry(classify(e), 0)),
    { maxAttempts: policy.options.maxRetries, backoff },
  ).dangerouslyUnref();
}
