/**
 * The service-side memory of the operator console: the recent health and breaker changes of each
 * server (the guard keeps only the current state, and a badge that flips with every check tells an
 * operator less than a short history), and the control changes made through the API (pause,
 * resume, drain), which the guard's event stream does not carry. One feed per service context.
 */
import type { Guard, GuardEvent } from '../jobs/guard-api.js';
import type { ServiceContext } from './context.js';

/** How many changes are kept per server. */
export const HISTORY_PER_SERVER = 50;

/** One remembered change of a server. */
export type ServerChange =
  | { kind: 'health'; at: number; healthy: boolean; error: string | null }
  | { kind: 'breaker'; at: number; from: string; to: string; failures: number }
  | { kind: 'drain'; at: number; drained: boolean };

/** A change of the pool's control state, as sent on `/api/events` (event `control`). */
export interface ControlChange {
  type: 'control';
  paused: boolean;
  /** The server whose drain changed, if that was the change. */
  server: string | null;
  at: number;
}

export interface ConsoleFeed {
  history(server: string): ServerChange[];
  /** Remembers a drain made through the API in the server's history. */
  noteDrain(server: string, on: boolean): void;
  /** Tells every open `/api/events` stream that the control state changed. */
  notifyControl(server?: string): void;
  onControl(listener: (c: ControlChange) => void): () => void;
  close(): void;
}

function createFeed(guard: Guard, now: () => number): ConsoleFeed {
  const history = new Map<string, ServerChange[]>();
  const listeners = new Set<(c: ControlChange) => void>();
  const remember = (server: string, c: ServerChange) => {
    const list = history.get(server) ?? [];
    list.push(c);
    if (list.length > HISTORY_PER_SERVER) list.splice(0, list.length - HISTORY_PER_SERVER);
    history.set(server, list);
  };
  const off = guard.onEvent((e: GuardEvent) => {
    if (e.type !== 'pool') return;
    const c = e.change;
    if (c.type === 'health') remember(c.server, { kind: 'health', at: c.at, healthy: c.healthy, error: c.error });
    else if (c.type === 'breaker') remember(c.server, { kind: 'breaker', at: c.at, from: c.from, to: c.to, failures: c.failures });
  });
  const feed: ConsoleFeed = {
    history: (server) => [...(history.get(server) ?? [])],
    noteDrain(server, on) {
      remember(server, { kind: 'drain', at: now(), drained: on });
    },
    notifyControl(server) {
      const c: ControlChange = { type: 'control', paused: guard.isPaused(), server: server ?? null, at: now() };
      for (const l of listeners) l(c);
    },
    onControl(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close() {
      off();
      listeners.clear();
    },
  };
  return feed;
}

const feeds = new WeakMap<ServiceContext, ConsoleFeed>();

/** The console feed of a service (created, and subscribed to the guard, on first use). */
export function consoleFeed(ctx: ServiceContext): ConsoleFeed {
  let feed = feeds.get(ctx);
  if (!feed) {
    feed = createFeed(ctx.guard, () => ctx.clock.now());
    feeds.set(ctx, feed);
  }
  return feed;
}
