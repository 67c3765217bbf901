/**
 * `ComfySocket`: one WebSocket to a ComfyUI server's `/ws?clientId=…`. Text frames are parsed and
 * validated (unknown types and invalid payloads pass through as `unknown` events), binary frames are
 * decoded, a client ping keeps proxies from cutting a silent socket and detects a dead peer.
 * One instance is one connection; `ComfyEventStream` (event-stream.ts) reconnects.
 */
import WebSocket from 'ws';
import type { ComfySocketEvent } from './api.js';
import { decodeBinaryFrame } from './binary.js';
import { ComfyRequestError } from './errors.js';
import { EventHub, type Listener } from './event-hub.js';
import { parseWsText } from './messages.js';
import { messageOf, transportCodeOf } from './transport.js';
import { systemClock, type Clock, type TimerHandle } from '../util/clock.js';

/** Options of one ComfyUI WebSocket connection. */
export interface ComfySocketOptions {
  /** The server's HTTP base URL, e.g. `http://127.0.0.1:8188` (a path prefix is kept). */
  baseUrl: string;
  /** Sent as `?clientId=`; use the same id as `client_id` in POST /prompt. */
  clientId: string;
  /** Name used in errors. @default the URL's host */
  name?: string;
  /** Extra handshake headers (auth for hosted pods). `Origin` is never sent. */
  headers?: Record<string, string>;
  /**
   * Feature flags sent as the first text frame (0.3.45+), e.g. `{ supports_preview_metadata: true }`
   * to get binary type-4 previews with metadata. @default none sent
   */
  featureFlags?: Record<string, unknown>;
  /** Client ping period; 0 disables. @default 15_000 */
  pingIntervalMs?: number;
  /** Pings in a row without a pong or any frame before the socket is declared dead. @default 2 */
  maxMissedPongs?: number;
  /** Bound on the opening handshake. @default 10_000 */
  connectTimeoutMs?: number;
  /** Bound on a graceful close before the socket is terminated. @default 5_000 */
  closeTimeoutMs?: number;
  /** @default systemClock */
  clock?: Clock;
}

type State = 'idle' | 'connecting' | 'open' | 'closing' | 'closed';

/** How an open socket ended. */
export interface SocketClosed {
  code: number;
  reason: string;
  byUs: boolean;
}

/**
 * One WebSocket connection to ComfyUI.
 *
 * @example
 * const socket = new ComfySocket({ baseUrl, clientId, featureFlags: { supports_preview_metadata: true } });
 * const off = socket.on((e) => { if (e.kind === 'message') handle(e.message); });
 * await socket.connect({ signal });
 * // ... later
 * off();
 * await socket.close();
 */
export class ComfySocket {
  readonly clientId: string;
  readonly name: string;
  readonly url: string;
  readonly #o: Required<Omit<ComfySocketOptions, 'featureFlags' | 'name' | 'headers'>> & { featureFlags?: Record<string, unknown> };
  readonly #headers: Record<string, string>;
  readonly #hub: EventHub<ComfySocketEvent>;
  #state: State = 'idle';
  #ws: WebSocket | undefined;
  #closingByUs = false;
  #closeReasonOverride: string | undefined;
  #pingTimer: TimerHandle | undefined;
  #closeTimer: TimerHandle | undefined;
  #alive = true;
  #missed = 0;
  #reportingListenerError = false;
  #abortConnect: ((err: ComfyRequestError) => void) | undefined;
  readonly #closed: Promise<SocketClosed>;
  #resolveClosed!: (c: SocketClosed) => void;

  constructor(options: ComfySocketOptions) {
    const base = new URL(options.baseUrl);
    if (base.protocol !== 'http:' && base.protocol !== 'https:' && base.protocol !== 'ws:' && base.protocol !== 'wss:') {
      throw new TypeError(`ComfySocket: baseUrl must be http(s) or ws(s), got "${base.protocol}"`);
    }
    const url = new URL(`${base.pathname.replace(/\/+$/, '')}/ws`, base);
    url.protocol = base.protocol === 'https:' || base.protocol === 'wss:' ? 'wss:' : 'ws:';
    url.searchParams.set('clientId', options.clientId);
    this.url = url.href;
    this.clientId = options.clientId;
    this.name = options.name ?? base.host;
    this.#headers = {};
    for (const [k, v] of Object.entries(options.headers ?? {})) if (k.toLowerCase() !== 'origin') this.#headers[k] = v;
    this.#o = {
      baseUrl: options.baseUrl,
      clientId: options.clientId,
      pingIntervalMs: options.pingIntervalMs ?? 15_000,
      maxMissedPongs: options.maxMissedPongs ?? 2,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      closeTimeoutMs: options.closeTimeoutMs ?? 5_000,
      clock: options.clock ?? systemClock,
      ...(options.featureFlags ? { featureFlags: options.featureFlags } : {}),
    };
    this.#hub = new EventHub<ComfySocketEvent>((err) => this.#reportListenerError(err));
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  /** `idle`, `connecting`, `open`, `closing` or `closed`. */
  get state(): State {
    return this.#state;
  }

  /** Resolves when the socket has closed (immediately after a failed connect: code 1006). */
  get closed(): Promise<SocketClosed> {
    return this.#closed;
  }

  /** Subscribes to events; returns the unsubscribe function. */
  on(listener: Listener<ComfySocketEvent>): () => void {
    return this.#hub.on(listener);
  }

  /** Events from now until the socket closes (the `close` event is the last one). */
  events(signal?: AbortSignal): AsyncIterableIterator<ComfySocketEvent> {
    return this.#hub.iterate(signal);
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<ComfySocketEvent> {
    return this.events();
  }

  /**
   * Opens the connection, sends the feature flags, starts pinging. Rejects with a
   * `ComfyRequestError`: `transport` (refused, DNS...), `http` (upgrade refused with a status),
   * `timeout`, or `aborted`. A socket connects once; build a new one to reconnect.
   */
  connect(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state !== 'idle') {
      return Promise.reject(this.#error({ kind: 'websocket', message: `connect() called in state ${this.#state}; a ComfySocket connects once` }));
    }
    const { signal } = opts;
    if (signal?.aborted) {
      this.#finish({ code: 1006, reason: 'aborted', byUs: true }, false);
      return Promise.reject(this.#error({ kind: 'aborted', message: 'aborted before connecting', cause: signal.reason }));
    }
    this.#state = 'connecting';
    return new Promise<void>((resolve, reject) => {
      const clock = this.#o.clock;
      let settled = false;
      const fail = (err: ComfyRequestError) => {
        if (settled) return;
        settled = true;
        cleanup();
        ws.terminate();
        this.#finish({ code: 1006, reason: err.message, byUs: false }, false);
        reject(err);
      };
      const onAbort = () => fail(this.#error({ kind: 'aborted', message: 'aborted while connecting', cause: signal?.reason }));
      const timer = clock.setTimeout(
        () => fail(this.#error({ kind: 'timeout', message: `no WebSocket handshake within ${this.#o.connectTimeoutMs} ms`, timeoutMs: this.#o.connectTimeoutMs })),
        this.#o.connectTimeoutMs,
      );
      const cleanup = () => {
        clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#abortConnect = undefined;
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#abortConnect = fail;

      const ws = new WebSocket(this.url, { headers: this.#headers, followRedirects: false, perMessageDeflate: false });
      this.#ws = ws;
      // ws emits 'error' without a listener as an uncaught exception; this one stays for the socket's life.
      ws.on('error', (err) => {
        if (!settled) {
          fail(this.#error({ kind: 'transport', message: messageOf(err), transportCode: transportCodeOf(err), cause: err }));
          return;
        }
        if (this.#state === 'open' || this.#state === 'closing') {
          this.#hub.emit({ kind: 'error', error: this.#error({ kind: 'websocket', message: messageOf(err), transportCode: transportCodeOf(err), cause: err }) });
        }
      });
      ws.on('unexpected-response', (req, res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const status = res.statusCode ?? 0;
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
        const done = () => {
          const bodyText = Buffer.concat(chunks).toString('utf8');
          req.destroy();
          fail(this.#error({ kind: 'http', message: `WebSocket upgrade refused: HTTP ${status}`, status, headers, bodyText }));
        };
        res.on('data', (c: Buffer) => {
          if (size < 64 * 1024) chunks.push(c);
          size += c.length;
        });
        res.on('end', done);
        res.on('error', done);
      });
      ws.on('open', () => {
        if (settled) return;
        settled = true;
        cleanup();
        this.#state = 'open';
        if (this.#o.featureFlags) ws.send(JSON.stringify({ type: 'feature_flags', data: this.#o.featureFlags }));
        this.#startPing();
        this.#hub.emit({ kind: 'open', clientId: this.clientId });
        resolve();
      });
      ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
      ws.on('pong', () => {
        this.#alive = true;
      });
      ws.on('close', (code, reason) => {
        if (!settled) {
          fail(this.#error({ kind: 'websocket', message: `closed during the handshake (code ${code})`, wsCloseCode: code, wsCloseReason: reason.toString('utf8') }));
          return;
        }
        const text = this.#closeReasonOverride ?? reason.toString('utf8');
        this.#finish({ code, reason: text, byUs: this.#closingByUs }, true);
      });
    });
  }

  /**
   * Closes gracefully (close frame, code 1000 by default), terminating after `closeTimeoutMs`.
   * Resolves once closed. Safe in any state and idempotent.
   */
  async close(code = 1000, reason = ''): Promise<void> {
    switch (this.#state) {
      case 'idle':
        this.#finish({ code: 1000, reason: 'closed before connecting', byUs: true }, false);
        break;
      case 'connecting':
        this.#abortConnect?.(this.#error({ kind: 'aborted', message: 'socket closed while connecting' }));
        break;
      case 'open': {
        this.#state = 'closing';
        this.#closingByUs = true;
        this.#stopPing();
        const ws = this.#ws;
        this.#closeTimer = this.#o.clock.setTimeout(() => ws?.terminate(), this.#o.closeTimeoutMs);
        ws?.close(code, reason);
        break;
      }
      default:
        break;
    }
    await this.#closed;
  }

  /** Drops the connection without a close frame (what a dead peer looks like). For tests and watchdogs. */
  terminate(reason = 'terminated'): void {
    if (this.#state !== 'open' && this.#state !== 'closing') return;
    this.#closeReasonOverride = reason;
    this.#ws?.terminate();
  }

  #onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    this.#alive = true;
    if (this.#hub.size === 0) return;
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      this.#hub.emit({ kind: 'binary', frame: decodeBinaryFrame(buf) });
      return;
    }
    const m = parseWsText(buf.toString('utf8'));
    this.#hub.emit(m.type === 'unknown' ? { kind: 'unknown', message: m } : { kind: 'message', message: m });
  }

  #startPing(): void {
    if (this.#o.pingIntervalMs <= 0) return;
    const tick = () => {
      const ws = this.#ws;
      if (this.#state !== 'open' || !ws) return;
      if (this.#alive) {
        this.#missed = 0;
      } else if (++this.#missed >= this.#o.maxMissedPongs) {
        // Half-open TCP: no FIN will ever come. Declare it dead so the stream reconnects.
        this.terminate(`no pong after ${this.#missed} pings`);
        return;
      }
      this.#alive = false;
      try {
        ws.ping();
      } catch {
        // The socket is going away; its close event reports it.
      }
      this.#pingTimer = this.#o.clock.setTimeout(tick, this.#o.pingIntervalMs);
    };
    this.#pingTimer = this.#o.clock.setTimeout(tick, this.#o.pingIntervalMs);
  }

  #stopPing(): void {
    if (this.#pingTimer !== undefined) this.#o.clock.clearTimeout(this.#pingTimer);
    this.#pingTimer = undefined;
  }

  #finish(closed: SocketClosed, emit: boolean): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#stopPing();
    if (this.#closeTimer !== undefined) this.#o.clock.clearTimeout(this.#closeTimer);
    if (emit) this.#hub.emit({ kind: 'close', ...closed });
    this.#hub.end();
    this.#resolveClosed(closed);
  }

  #reportListenerError(err: unknown): void {
    // A listener that throws while handling an error event must not recurse.
    if (this.#reportingListenerError) return;
    this.#reportingListenerError = true;
    try {
      this.#hub.emit({ kind: 'error', error: err instanceof Error ? err : new Error(messageOf(err), { cause: err }) });
    } finally {
      this.#reportingListenerError = false;
    }
  }

  #error(init: Omit<ConstructorParameters<typeof ComfyRequestError>[0], 'server' | 'method' | 'path'>): ComfyRequestError {
    return new ComfyRequestError({ ...init, message: `${this.name} WS /ws: ${init.message}`, server: this.name, method: 'GET', path: '/ws' });
  }
}
