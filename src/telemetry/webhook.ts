/**
 * Webhooks: signed JSON POSTs with bounded, jittered retries, and `attachWebhooks` which posts a
 * job's terminal state to its `options.webhookUrl`. Delivery never throws into the caller: a
 * webhook receiver that is down must not fail a job.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Guard, GuardEvent } from '../jobs/guard-api.js';
import type { Logger } from '../jobs/options.js';
import { isTerminal, type JobErrorInfo, type JobRecord, type JobStatus, type OutputRef } from '../jobs/types.js';
import { sleep, systemClock, type Clock } from '../util/clock.js';
import { checkOutboundUrl, createOutboundFetch, OutboundRefusedError, redactUrl, type OutboundPolicy } from '../util/outbound.js';

/** The subset of `fetch` the notifier uses (so tests and proxies can inject one). */
export type FetchLike = (
  url: string,
  init: { method: 'POST'; headers: Record<string, string>; body: string; signal: AbortSignal; redirect?: 'manual' },
) => Promise<{ status: number; headers: { get(name: string): string | null }; arrayBuffer(): Promise<ArrayBuffer> }>;

export interface WebhookRetryOptions {
  /** Deliveries tried in total (first try included). @default 5 */
  attempts?: number;
  /** First backoff delay. @default 1_000 */
  baseMs?: number;
  /** Backoff multiplier. @default 2 */
  factor?: number;
  /** Longest backoff delay, also the cap on a receiver's Retry-After. @default 30_000 */
  capMs?: number;
  /** Random spread of each delay, 0..1. @default 0.25 */
  jitter?: number;
}

export interface WebhookNotifierOptions {
  /** HMAC-SHA256 key. Without one a random key is generated (read it from `notifier.secret` and show it once). */
  secret?: string;
  /**
   * Which targets beyond public addresses may be called. Link-local and metadata addresses never are.
   * @default {} (public addresses only)
   */
  outbound?: OutboundPolicy;
  clock?: Clock;
  retry?: WebhookRetryOptions;
  /** Per-request timeout. @default 10_000 */
  timeoutMs?: number;
  /** Deliveries in flight at once; more wait in order. @default 16 */
  maxConcurrent?: number;
  /** Replaces the guarded fetch (tests, proxies). URLs are still checked against `outbound` first. @default a guarded undici fetch */
  fetch?: FetchLike;
  logger?: Logger;
  /** Called after each delivery finished (delivered or given up), for metrics and tests. */
  onResult?: (result: WebhookResult) => void;
}

export interface WebhookResult {
  url: string;
  event: string;
  delivered: boolean;
  attempts: number;
  /** Last HTTP status seen, null when no response arrived. */
  status: number | null;
  error: string | null;
}

export interface WebhookNotifier {
  /** The HMAC key every delivery is signed with. */
  readonly secret: string;
  /** True when `secret` was generated here (the caller should show it once). */
  readonly secretGenerated: boolean;
  /** Posts `payload` as JSON to `url`; resolves when delivered or given up. Never rejects. */
  notify(url: string, payload: unknown, opts?: { event?: string }): Promise<void>;
  /** Resolves when no delivery is in flight. */
  onIdle(): Promise<void>;
  /** Stops new deliveries, aborts retries and in-flight requests, waits for them to settle. Idempotent. */
  close(): Promise<void>;
}

/** Header carrying `sha256=<hex HMAC-SHA256 of the raw body>`. */
export const SIGNATURE_HEADER = 'X-Comfyguard-Signature';
/** Header carrying the event name, e.g. `job.completed`. */
export const EVENT_HEADER = 'X-Comfyguard-Event';

/** `sha256=<hex>` of `body` under `secret`, as sent in the signature header. */
export function signWebhookBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** True for the statuses worth another try: 408, 429 and 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

class Closed extends Error {}

/**
 * Creates a notifier.
 *
 * @example
 * const notifier = createWebhookNotifier({ secret: process.env.WEBHOOK_SECRET });
 * const detach = attachWebhooks(guard, notifier);
 * // on shutdown
 * detach(); await notifier.onIdle(); await notifier.close();
 */
export function createWebhookNotifier(opts: WebhookNotifierOptions = {}): WebhookNotifier {
  const clock = opts.clock ?? systemClock;
  const attempts = opts.retry?.attempts ?? 5;
  const baseMs = opts.retry?.baseMs ?? 1_000;
  const factor = opts.retry?.factor ?? 2;
  const capMs = opts.retry?.capMs ?? 30_000;
  const jitter = opts.retry?.jitter ?? 0.25;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  if (!Number.isInteger(attempts) || attempts < 1) throw new RangeError(`retry.attempts must be an integer >= 1, got ${String(attempts)}`);
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${String(timeoutMs)}`);
  const maxConcurrent = opts.maxConcurrent ?? 16;
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) throw new RangeError(`maxConcurrent must be an integer >= 1, got ${String(maxConcurrent)}`);
  const policy: OutboundPolicy = { ...opts.outbound };
  const secret = opts.secret !== undefined && opts.secret !== '' ? opts.secret : randomBytes(32).toString('hex');
  const guarded = opts.fetch ? null : createOutboundFetch(policy);
  const doFetch: FetchLike = opts.fetch ?? ((url, init) => guarded!(url, init));
  const closer = new AbortController();
  // One abort listener per delivery in flight (removed when it settles), so no fixed cap applies.
  setMaxListeners(0, closer.signal);
  let running = 0;
  const slots: Array<() => void> = [];
  const acquire = async (): Promise<boolean> => {
    if (running < maxConcurrent) {
      running++;
      return true;
    }
    await new Promise<void>((resolve) => slots.push(resolve));
    if (closer.signal.aborted) return false;
    running++;
    return true;
  };
  const release = () => {
    running--;
    slots.shift()?.();
  };
  const inFlight = new Set<Promise<void>>();
  let idleWaiters: Array<() => void> = [];
  let closing: Promise<void> | null = null;

  const delayFor = (n: number, retryAfterMs: number | null): number => {
    if (retryAfterMs !== null) return Math.min(capMs, retryAfterMs);
    const raw = Math.min(capMs, baseMs * factor ** (n - 1));
    return Math.max(0, Math.round(raw * (1 + jitter * (Math.random() * 2 - 1))));
  };

  const postOnce = async (url: string, headers: Record<string, string>, body: string) => {
    const ac = new AbortController();
    const onClose = () => ac.abort(new Closed('notifier closed'));
    closer.signal.addEventListener('abort', onClose, { once: true });
    const timer = clock.setTimeout(() => ac.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    try {
      const res = await doFetch(url, { method: 'POST', headers, body, signal: ac.signal, redirect: 'manual' });
      // Drain the body so the keep-alive socket is released.
      await res.arrayBuffer().catch(() => undefined);
      return res;
    } catch (err) {
      throw ac.signal.aborted ? ac.signal.reason : err;
    } finally {
      clock.clearTimeout(timer);
      closer.signal.removeEventListener('abort', onClose);
    }
  };

  const deliver = async (url: string, payload: unknown, event: string): Promise<void> => {
    const body = JSON.stringify(payload);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'comfyguard-webhook',
      [EVENT_HEADER]: event,
    };
    headers[SIGNATURE_HEADER] = signWebhookBody(secret, body);
    let status: number | null = null;
    let error: string | null = null;
    let n = 0;
    let delivered = false;
    let refused = false;
    try {
      checkOutboundUrl(url, policy);
    } catch (err) {
      // Refused before any request (attempts stays 0): nothing to retry.
      error = describe(err);
      refused = true;
    }
    while (!refused && n < attempts && !closer.signal.aborted) {
      n++;
      let retryAfterMs: number | null = null;
      try {
        const res = await postOnce(url, headers, body);
        status = res.status;
        error = null;
        if (res.status >= 200 && res.status < 300) {
          delivered = true;
          break;
        }
        error = `HTTP ${res.status}`;
        if (res.status >= 300 && res.status < 400) {
          // A redirect is never followed: it could lead anywhere, and 307/308 would re-send the body.
          error = `HTTP ${res.status}: redirects are not followed`;
          break;
        }
        if (!isRetryableStatus(res.status)) break;
        retryAfterMs = parseRetryAfter(res.headers.get('retry-after'), clock.now());
      } catch (err) {
        if (err instanceof Closed) break;
        status = null;
        error = describe(err);
        // The target resolved to an address the policy refuses: asking again will not change that.
        if (refusal(err)) break;
      }
      if (n >= attempts) break;
      try {
        await sleep(clock, delayFor(n, retryAfterMs), closer.signal);
      } catch {
        break;
      }
    }
    const result: WebhookResult = { url: redactUrl(url), event, delivered, attempts: n, status, error };
    if (!delivered) opts.logger?.warn({ url: redactUrl(url), event, attempts: n, status, error }, 'webhook delivery failed');
    try {
      opts.onResult?.(result);
    } catch {
      // Observers must not turn a delivery into a rejection.
    }
  };

  const settle = () => {
    if (inFlight.size > 0) return;
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const w of waiters) w();
  };

  return {
    secret,
    secretGenerated: secret !== opts.secret,
    notify(url, payload, o = {}) {
      if (closing) return Promise.resolve();
      const event = o.event ?? eventOf(payload);
      const p: Promise<void> = acquire()
        .then(async (ok) => {
          if (!ok) {
            opts.onResult?.({ url: redactUrl(url), event, delivered: false, attempts: 0, status: null, error: 'notifier closed' });
            return;
          }
          try {
            await deliver(url, payload, event);
          } finally {
            release();
          }
        })
        .catch((err: unknown) => opts.logger?.error({ err, url: redactUrl(url), event }, 'webhook delivery crashed'))
        .finally(() => {
          inFlight.delete(p);
          settle();
        });
      inFlight.add(p);
      return p;
    },
    onIdle() {
      if (inFlight.size === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
    close() {
      closing ??= (async () => {
        closer.abort(new Closed('notifier closed'));
        // Waiting deliveries wake up, see the abort and give up without sending.
        for (const wake of slots.splice(0)) wake();
        await Promise.allSettled([...inFlight]);
        await guarded?.close().catch(() => undefined);
      })();
      return closing;
    },
  };
}

/** The JSON body posted for a job's terminal state. */
export interface JobWebhookPayload {
  event: `job.${JobStatus}`;
  id: string;
  status: JobStatus;
  outputs: OutputRef[];
  error: JobErrorInfo | null;
  attempts: number;
  retryCount: number;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
}

/** Builds the webhook body of a job. */
export function jobWebhookPayload(job: JobRecord): JobWebhookPayload {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return {
    event: `job.${job.status}`,
    id: job.id,
    status: job.status,
    outputs: job.outputs,
    error: job.error,
    attempts: job.attempts.length,
    retryCount: job.retryCount,
    createdAt: new Date(job.createdAt).toISOString(),
    startedAt: iso(job.startedAt),
    endedAt: iso(job.endedAt),
  };
}

/**
 * Posts each job's terminal state (completed, failed, timed_out, cancelled) to its
 * `options.webhookUrl`. Returns the unsubscribe function.
 *
 * @example
 * const detach = attachWebhooks(guard, createWebhookNotifier({ secret }));
 */
export function attachWebhooks(guard: Pick<Guard, 'onEvent'>, notifier: Pick<WebhookNotifier, 'notify'>): () => void {
  // A terminal state is posted once, even if the event is repeated; a manual retry ends later, with a new endedAt.
  const posted = new Map<string, number | null>();
  const onEvent = (e: GuardEvent) => {
    if (e.type !== 'state' || !isTerminal(e.to)) return;
    const job = e.job;
    const url = job.options.webhookUrl;
    if (!url) return;
    const key = `${job.id}:${job.status}`;
    if (posted.has(key) && posted.get(key) === job.endedAt) return;
    posted.set(key, job.endedAt);
    if (posted.size > 10_000) {
      const oldest = posted.keys().next().value;
      if (oldest !== undefined) posted.delete(oldest);
    }
    void notifier.notify(url, jobWebhookPayload(job), { event: `job.${job.status}` });
  };
  return guard.onEvent(onEvent);
}

function eventOf(payload: unknown): string {
  if (payload && typeof payload === 'object' && 'event' in payload && typeof payload.event === 'string') return payload.event;
  return 'comfyguard.notification';
}

/** Retry-After as milliseconds (delta-seconds or an HTTP date), null when absent or unparseable. */
function parseRetryAfter(value: string | null, now: number): number | null {
  if (!value) return null;
  const secs = Number(value);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

function refusal(err: unknown): boolean {
  return err instanceof OutboundRefusedError || (err as { cause?: unknown } | null)?.cause instanceof OutboundRefusedError;
}

function describe(err: unknown): string {
  if (err instanceof OutboundRefusedError) return `refused: the URL ${err.message}`;
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}
