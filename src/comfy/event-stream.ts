/**
 * `ComfyEventStream`: a ComfyUI event stream that survives drops. It keeps one `ComfySocket` open
 * with the same clientId, reconnecting with capped exponential backoff and jitter (timed by the
 * injected Clock) until closed or aborted. Every reopen is announced as `open` with
 * `reconnect: true`: ComfyUI replays nothing, so the job engine must reconcile via /queue + /history.
 */
import type { ComfySocketEvent } from './api.js';
import { ComfyRequestError } from './errors.js';
import { EventHub, type Listener } from './event-hub.js';
import { ComfySocket, type ComfySocketOptions } from './socket.js';
import { messageOf } from './transport.js';
import { sleep, systemClock, type Clock } from '../util/clock.js';

/** Reconnect backoff. Delay of attempt n (0-based): `min(maxMs, initialMs * multiplier^n)`, then jittered. */
export interface ReconnectBackoff {
  /** @default 500 */
  initialMs?: number;
  /** @default 30_000 */
  maxMs?: number;
  /** @default 2 */
  multiplier?: number;
  /** Fraction of the delay randomised either way: 0.2 gives 80%..120%. Never above `maxMs`. @default 0.2 */
  jitter?: number;
}

/** Events of the stream: every socket event, plus a notice before each reconnect wait. */
export type ComfyStreamEvent =
  | ComfySocketEvent
  /** Waiting `delayMs` before connect attempt `attempt` (1-based); `error` is why the last one failed, if it did. */
  | { kind: 'reconnecting'; attempt: number; delayMs: number; error?: ComfyRequestError };

/** Options of `ComfyEventStream`. */
export interface ComfyEventStreamOptions extends ComfySocketOptions {
  backoff?: ReconnectBackoff;
  /** Random source in [0, 1) for jitter. @default Math.random */
  random?: () => number;
  /** Aborting it closes the stream. */
  signal?: AbortSignal;
}

/** The reconnect delay before attempt `attempt` (0-based) with `random()` in [0, 1). */
export function reconnectDelay(attempt: number, backoff: ReconnectBackoff = {}, random: () => number = Math.random): number {
  const initial = backoff.initialMs ?? 500;
  const max = backoff.maxMs ?? 30_000;
  const multiplier = backoff.multiplier ?? 2;
  const jitter = Math.min(1, Math.max(0, backoff.jitter ?? 0.2));
  const base = Math.min(max, initial * multiplier ** Math.max(0, attempt));
  const factor = 1 - jitter + 2 * jitter * random();
  return Math.max(0, Math.min(max, Math.round(base * factor)));
}

/**
 * A reconnecting event stream for one server and clientId.
 *
 * @example
 * const stream = new ComfyEventStream({ baseUrl, clientId });
 * stream.on((e) => {
 *   if (e.kind === 'open' && e.reconnect) reconcileInFlightPrompts();
 *   if (e.kind === 'message') route(e.message);
 * });
 * stream.start();
 * await stream.whenOpen({ signal });
 * // ...
 * await stream.close();
 */
export class ComfyEventStream {
  readonly clientId: string;
  readonly #o: ComfyEventStreamOptions;
  readonly #clock: Clock;
  readonly #hub: EventHub<ComfyStreamEvent>;
  readonly #ac = new AbortController();
  #socket: ComfySocket | undefined;
  #running: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #opens = 0;
  #isOpen = false;
  #releaseSignal: (() => void) | undefined;
  readonly #openWaiters = new Set<{ settle: (err?: ComfyRequestError) => void }>();

  constructor(options: ComfyEventStreamOptions) {
    this.#o = options;
    this.clientId = options.clientId;
    this.#clock = options.clock ?? systemClock;
    this.#hub = new EventHub<ComfyStreamEvent>();
  }

  /** True while a socket is open. */
  get isOpen(): boolean {
    return this.#isOpen;
  }

  /** How many times a socket has opened (the first open included). */
  get opens(): number {
    return this.#opens;
  }

  /** Subscribes to events; returns the unsubscribe function. */
  on(listener: Listener<ComfyStreamEvent>): () => void {
    return this.#hub.on(listener);
  }

  /** Events from now until the stream is closed. */
  events(signal?: AbortSignal): AsyncIterableIterator<ComfyStreamEvent> {
    return this.#hub.iterate(signal);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ComfyStreamEvent> {
    return this.events();
  }

  /** Starts connecting (idempotent). Failures are retried with backoff, reported as `reconnecting`. */
  start(): void {
    if (this.#running || this.#closing) return;
    const signal = this.#o.signal;
    if (signal) {
      if (signal.aborted) {
        void this.close();
        return;
      }
      const onAbort = () => void this.close();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#releaseSignal = () => signal.removeEventListener('abort', onAbort);
    }
    this.#running = this.#run();
  }

  /**
   * Resolves when a socket is open (now, or at the next open). Rejects with an `aborted`
   * ComfyRequestError if `signal` aborts or the stream closes first.
   */
  whenOpen(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#isOpen) return Promise.resolve();
    const { signal } = opts;
    const aborted = (message: string, cause?: unknown) => this.#abortedError(message, cause);
    if (signal?.aborted) return Promise.reject(aborted('aborted while waiting for the event stream to open', signal.reason));
    if (this.#closing) return Promise.reject(aborted('event stream is closed'));
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => waiter.settle(aborted('aborted while waiting for the event stream to open', signal?.reason));
      const waiter = {
        settle: (err?: ComfyRequestError) => {
          this.#openWaiters.delete(waiter);
          signal?.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve();
        },
      };
      this.#openWaiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Stops reconnecting and closes the current socket. Idempotent; resolves when everything stopped. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#releaseSignal?.();
      this.#ac.abort();
      await this.#socket?.close();
      await this.#running;
      this.#isOpen = false;
      for (const w of [...this.#openWaiters]) w.settle(this.#abortedError('event stream is closed'));
      this.#hub.end();
    })();
    return this.#closing;
  }

  #abortedError(message: string, cause?: unknown): ComfyRequestError {
    return new ComfyRequestError({ kind: 'aborted', message, server: this.#o.name, path: '/ws', cause });
  }

  async #run(): Promise<void> {
    const signal = this.#ac.signal;
    // Failed connects in the current outage; the drop of an open socket is not one.
    let failures = 0;
    let lastError: ComfyRequestError | undefined;
    for (let first = true; !signal.aborted; first = false) {
      if (!first) {
        const delayMs = reconnectDelay(failures, this.#o.backoff, this.#o.random);
        this.#hub.emit({ kind: 'reconnecting', attempt: failures + 1, delayMs, ...(lastError ? { error: lastError } : {}) });
        try {
          await sleep(this.#clock, delayMs, signal);
        } catch {
          break;
        }
      }
      const socket = new ComfySocket(this.#o);
      this.#socket = socket;
      const reconnect = this.#opens > 0;
      const off = socket.on((e) => {
        if (e.kind === 'open') {
          this.#opens++;
          this.#isOpen = true;
          this.#hub.emit({ ...e, reconnect });
          for (const w of [...this.#openWaiters]) w.settle();
          return;
        }
        if (e.kind === 'close') this.#isOpen = false;
        this.#hub.emit(e);
      });
      try {
        await socket.connect({ signal });
        failures = 0;
        const closed = await socket.closed;
        lastError = new ComfyRequestError({
          kind: 'websocket',
          message: `socket closed (code ${closed.code}${closed.reason ? `: ${closed.reason}` : ''})`,
          server: socket.name,
          path: '/ws',
          wsCloseCode: closed.code,
          wsCloseReason: closed.reason,
        });
      } catch (err) {
        failures++;
        lastError = err instanceof ComfyRequestError ? err : new ComfyRequestError({ kind: 'websocket', message: messageOf(err), server: socket.name, path: '/ws', cause: err });
      } finally {
        off();
      }
    }
  }
}
