/**
 * Analytics sinks (JSON lines, logger) and the error-spike alert. A guard takes
 * `analytics: AnalyticsSink | AnalyticsSink[]`; each sink here is a plain function plus whatever
 * it needs to be closed.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import type { AnalyticsEvent, AnalyticsSink } from '../jobs/guard-api.js';
import type { Logger } from '../jobs/options.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

/** A sink that holds a resource. */
export interface ClosableSink {
  readonly sink: AnalyticsSink;
  /** Flushes and releases the resource. Idempotent. */
  close(): Promise<void>;
}

/**
 * Writes one JSON object per line (`{"ts":…,"name":…,…}`) to a stream, or appends to a file.
 * Write errors are reported once to `onError` and never thrown into the guard.
 *
 * @example
 * const jsonl = await createJsonLinesSink('./data/analytics.jsonl');
 * const guard = await createGuard({ servers, analytics: jsonl.sink });
 * // on shutdown
 * await guard.close(); await jsonl.close();
 */
export async function createJsonLinesSink(
  target: string | Writable,
  opts: { clock?: Clock; onError?: (err: unknown) => void } = {},
): Promise<ClosableSink> {
  const clock = opts.clock ?? systemClock;
  const ownsStream = typeof target === 'string';
  let stream: Writable;
  if (typeof target === 'string') {
    await mkdir(dirname(target), { recursive: true });
    stream = createWriteStream(target, { flags: 'a' });
  } else {
    stream = target;
  }
  let failed = false;
  const onError = (err: unknown) => {
    if (failed) return;
    failed = true;
    opts.onError?.(err);
  };
  stream.on('error', onError);
  let closing: Promise<void> | null = null;
  return {
    sink(event: AnalyticsEvent) {
      if (closing || failed) return;
      try {
        stream.write(`${JSON.stringify({ ts: new Date(clock.now()).toISOString(), ...event })}\n`);
      } catch (err) {
        onError(err);
      }
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        stream.off('error', onError);
        if (!ownsStream || stream.destroyed) {
          resolve();
          return;
        }
        stream.end(() => resolve());
        stream.once('error', () => resolve());
      });
      return closing;
    },
  };
}

/**
 * Logs every analytics event at `info` (retries and failures at `warn`) with the event's fields.
 *
 * @example
 * createGuard({ servers, analytics: createLoggerSink(pino()) });
 */
export function createLoggerSink(logger: Logger): AnalyticsSink {
  return (event) => {
    const { name, ...fields } = event;
    const warn = name === 'comfyui_retry_exhausted' || name === 'job_failed' || name === 'job_timed_out';
    (warn ? logger.warn : logger.info).call(logger, { event: name, ...fields }, name);
  };
}

/** Analytics events that count as an error for the spike alert: each failed attempt counts once. */
export const ERROR_EVENT_NAMES: ReadonlySet<AnalyticsEvent['name']> = new Set(['comfyui_retry_attempted', 'job_failed', 'job_timed_out']);

export interface ErrorSpike {
  /** Errors inside the window when the alert fired. */
  count: number;
  threshold: number;
  windowMs: number;
  /** Errors by code (or event name when there is no code) inside the window. */
  byCode: Record<string, number>;
  at: number;
}

export interface ErrorSpikeAlertOptions {
  /** Sliding window length. */
  windowMs: number;
  /** Fires when more than this many errors fall inside the window. */
  threshold: number;
  clock?: Clock;
  onAlert: (spike: ErrorSpike) => void;
  /** Called once the window has `threshold` or fewer errors again (the alert is re-armed). */
  onRecover?: (info: { count: number; at: number }) => void;
}

export interface ErrorSpikeAlert {
  /** Feed it analytics events (pass as one of the guard's sinks). */
  readonly sink: AnalyticsSink;
  /** Records one error directly. */
  record(code: string): void;
  /** Errors inside the window now. */
  count(): number;
  /** True between firing and recovering. */
  readonly firing: boolean;
  /** Stops the expiry timer. Idempotent. */
  close(): void;
}

/**
 * Fires `onAlert` once when more than `threshold` errors fall inside a sliding `windowMs`, and
 * re-arms after the count drops back to `threshold` or fewer (checked when errors expire, on the
 * injected clock).
 *
 * @example
 * const spike = createErrorSpikeAlert({ windowMs: 60_000, threshold: 20, onAlert: (s) => log.error(s, 'error spike') });
 * createGuard({ servers, analytics: [jsonl.sink, spike.sink] });
 */
export function createErrorSpikeAlert(opts: ErrorSpikeAlertOptions): ErrorSpikeAlert {
  const { windowMs, threshold } = opts;
  if (!Number.isFinite(windowMs) || windowMs <= 0) throw new RangeError(`windowMs must be a positive number, got ${String(windowMs)}`);
  if (!Number.isInteger(threshold) || threshold < 0) throw new RangeError(`threshold must be a non-negative integer, got ${String(threshold)}`);
  const clock = opts.clock ?? systemClock;
  // Timestamps are appended in clock order, so expiry only ever trims the front.
  const errors: Array<{ at: number; code: string }> = [];
  let firing = false;
  let timer: TimerHandle | null = null;
  let closed = false;

  const trim = (now: number) => {
    let drop = 0;
    while (drop < errors.length && errors[drop]!.at <= now - windowMs) drop++;
    if (drop > 0) errors.splice(0, drop);
  };

  const schedule = () => {
    if (timer !== null) clock.clearTimeout(timer);
    timer = null;
    const oldest = errors[0];
    if (closed || !firing || !oldest) return;
    // Wake when the oldest error leaves the window: the earliest moment the count can drop.
    timer = clock.setTimeout(check, Math.max(0, oldest.at + windowMs - clock.now()));
  };

  function check() {
    timer = null;
    const now = clock.now();
    trim(now);
    if (!firing && errors.length > threshold) {
      firing = true;
      const byCode: Record<string, number> = {};
      for (const e of errors) byCode[e.code] = (byCode[e.code] ?? 0) + 1;
      try {
        opts.onAlert({ count: errors.length, threshold, windowMs, byCode, at: now });
      } catch {
        // An alert callback must not break the guard's analytics delivery.
      }
    } else if (firing && errors.length <= threshold) {
      firing = false;
      try {
        opts.onRecover?.({ count: errors.length, at: now });
      } catch {
        // As above.
      }
    }
    schedule();
  }

  const record = (code: string) => {
    if (closed) return;
    errors.push({ at: clock.now(), code });
    check();
  };

  return {
    sink(event) {
      if (!ERROR_EVENT_NAMES.has(event.name)) return;
      const code =
        event.name === 'comfyui_retry_attempted'
          ? event.errorType
          : typeof (event as Record<string, unknown>)['code'] === 'string'
            ? ((event as Record<string, unknown>)['code'] as string)
            : event.name;
      record(code);
    },
    record,
    count() {
      trim(clock.now());
      return errors.length;
    },
    get firing() {
      return firing;
    },
    close() {
      closed = true;
      if (timer !== null) clock.clearTimeout(timer);
      timer = null;
    },
  };
}
