/**
 * Small helpers for the protocol tests: bounded waits on events and conditions (no sleeps; the
 * bound only turns a hang into a clear failure), a manual Clock, and odd servers (silent, resetting).
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Clock, TimerHandle } from '../../src/util/clock.js';
import { until } from '../support/wait.js';

const DEFAULT_BOUND_MS = 20_000;

/** Yields to the event loop once; setImmediate is never faked by the tests that use this. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Resolves when `cond()` is true; rejects with `what` after `boundMs` of real time. */
export async function waitFor(cond: () => boolean, what: string, boundMs = DEFAULT_BOUND_MS): Promise<void> {
  // Polls on setImmediate: some callers run with setTimeout faked.
  await until(cond, what, { timeoutMs: boundMs, pause: tick });
}

/** Collects events from an `on(listener) -> unsubscribe` source. */
export class EventLog<T> {
  readonly events: T[] = [];
  readonly off: () => void;

  constructor(on: (listener: (e: T) => void) => () => void) {
    this.off = on((e) => this.events.push(e));
  }

  /** The events matching `pred`. */
  filter<S extends T>(pred: (e: T) => e is S): S[] {
    return this.events.filter(pred);
  }

  /** Waits until `pred` matches `count` events (from the start of the log); returns the last match. */
  async waitFor<S extends T>(pred: (e: T) => e is S, what: string, count = 1): Promise<S> {
    await waitFor(() => this.events.filter(pred).length >= count, what);
    return this.events.filter(pred)[count - 1] as S;
  }
}

/** A Clock moved by hand: `advance(ms)` runs due timers in order. */
export class ManualClock implements Clock {
  #now = 0;
  #seq = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  /** Every delay requested, in order. */
  readonly requested: number[] = [];

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    this.requested.push(ms);
    this.#timers.set(id, { at: this.#now + ms, fn });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as unknown as number);
  }

  /** Number of pending timers. */
  get pending(): number {
    return this.#timers.size;
  }

  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) if (entry[1].at <= target && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
    }
    this.#now = target;
  }
}

/** Listens on 127.0.0.1:0 and returns the port. */
export async function listen(server: HttpServer | NetServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** A port nothing listens on: bound once, then released. */
export async function closedPort(): Promise<number> {
  const s = createNetServer();
  const port = await listen(s);
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A TCP server with per-connection behaviour; `close()` destroys every socket it accepted. */
export async function rawServer(onSocket: (socket: Socket) => void): Promise<{ url: string; port: number; accepted: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createNetServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    accepted: () => accepted,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An HTTP server answering every request with `handler`; `close()` drops open connections. */
export async function httpServer(
  handler: Parameters<typeof createHttpServer>[1],
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createHttpServer(handler);
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
