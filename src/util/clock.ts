/**
 * Injected time. Everything that waits, times out or stamps a date takes a Clock so tests can
 * drive it with fake timers (`vi.useFakeTimers()` patches the system clock's timers too).
 *
 * Keeping the process alive: a timer is something the process waits for (a retry's backoff, a
 * crash downtime, a store reconnect, a request deadline), so by default it keeps Node running, as
 * Node's own timers do. Without that, a CLI whose only pending work is a retry exits in silence
 * (status 13, an unsettled top-level await). Periodic housekeeping of an idle service (health
 * probes, capability refresh, cleanup) is marked `background`: it never keeps a process alive on
 * its own. Every owner clears its timers in `close()`, so closing still lets the process exit.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Schedules `fn` after `ms`; returns a handle for `clearTimeout`. */
  setTimeout(fn: () => void, ms: number, opts?: TimerOptions): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** How a timer relates to the process's lifetime. */
export interface TimerOptions {
  /** Housekeeping of an idle service: the timer alone does not keep the process alive. @default false */
  background?: boolean;
}

export type TimerHandle = { readonly __timer: unique symbol } | ReturnType<typeof setTimeout>;

/** The real clock. Reads globals at call time so vitest's fake timers take effect. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms, opts) => {
    const t = setTimeout(fn, ms);
    if (opts?.background === true && typeof t === 'object' && t && 'unref' in t) t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * Resolves after `ms` on `clock`, or rejects with the signal's reason when aborted. A sleep is
 * always awaited by someone, so it keeps the process alive until it ends or is aborted.
 */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(signal?.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
