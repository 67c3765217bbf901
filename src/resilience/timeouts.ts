/**
 * Timeouts: the defaults, per-job overrides, and one helper that bounds an async call with
 * cockatiel's TimeoutPolicy while keeping the caller's own abort distinct from a timeout.
 */
import { TimeoutStrategy, timeout } from 'cockatiel';
import { z } from 'zod';
import { ComfyRequestError } from '../comfy/errors.js';
import { configErrorFromZod } from './config-error.js';

/** Default bounds. Every one is configurable globally and (request, generation) per job. */
export const DEFAULT_TIMEOUTS = Object.freeze({ requestMs: 30_000, generationMs: 300_000, healthMs: 2_000 });

export interface TimeoutOptions {
  /** One HTTP request to a server. @default 30000 */
  requestMs?: number;
  /** One attempt, from submit to its terminal event. @default 300000 */
  generationMs?: number;
  /** One health probe. @default 2000 */
  healthMs?: number;
}

export type ResolvedTimeouts = Readonly<Required<TimeoutOptions>>;

const positiveMs = () => z.number().refine(Number.isFinite, 'must be a finite number').positive('must be > 0');
const timeoutSchema = z.strictObject({ requestMs: positiveMs().optional(), generationMs: positiveMs().optional(), healthMs: positiveMs().optional() });

/**
 * Global timeouts overridden by a job's own (`requestTimeoutMs`, `generationTimeoutMs` as in
 * JobOptions). Throws a PolicyConfigError naming the bad field.
 * @example resolveTimeouts({ requestMs: 10_000 }, { generationTimeoutMs: 600_000 })
 */
export function resolveTimeouts(
  global: TimeoutOptions = {},
  job: { requestTimeoutMs?: number; generationTimeoutMs?: number } = {},
): ResolvedTimeouts {
  const g = timeoutSchema.safeParse(global);
  if (!g.success) throw configErrorFromZod('timeouts', 'timeouts', g.error.issues);
  const j = timeoutSchema.safeParse({ requestMs: job.requestTimeoutMs, generationMs: job.generationTimeoutMs });
  if (!j.success) {
    const renamed = j.error.issues.map((i) => ({ ...i, path: i.path.map((p) => (p === 'requestMs' ? 'requestTimeoutMs' : p === 'generationMs' ? 'generationTimeoutMs' : p)) }));
    throw configErrorFromZod('job timeouts', 'options', renamed);
  }
  return Object.freeze({
    requestMs: j.data.requestMs ?? g.data.requestMs ?? DEFAULT_TIMEOUTS.requestMs,
    generationMs: j.data.generationMs ?? g.data.generationMs ?? DEFAULT_TIMEOUTS.generationMs,
    healthMs: g.data.healthMs ?? DEFAULT_TIMEOUTS.healthMs,
  });
}

/**
 * Runs `fn` with a deadline (cockatiel TimeoutPolicy, aggressive: the call is abandoned and its
 * signal aborted when the time is up). A timeout rejects with a ComfyRequestError of kind
 * `timeout` (the classifier's COMFYUI_TIMEOUT); the caller's own abort rejects with its reason.
 */
export async function withTimeout<T>(
  ms: number,
  fn: (signal: AbortSignal) => Promise<T>,
  opts: { signal?: AbortSignal; server?: string; what?: string } = {},
): Promise<T> {
  opts.signal?.throwIfAborted();
  const policy = timeout(ms, TimeoutStrategy.Aggressive).dangerouslyUnref();
  try {
    return await policy.execute(({ signal }) => fn(signal), opts.signal);
  } catch (e) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (isTaskCancelled(e)) {
      throw new ComfyRequestError({
        kind: 'timeout',
        message: `${opts.what ?? 'request'} timed out after ${ms} ms`,
        server: opts.server,
        timeoutMs: ms,
        cause: e,
      });
    }
    throw e;
  }
}

// cockatiel 3.2.1's own isTaskCancelledError() tests the bulkhead marker by mistake; test the real one.
function isTaskCancelled(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { isTaskCancelledError?: unknown }).isTaskCancelledError === true;
}
