/**
 * One reconnecting WebSocket per server, shared by every attempt on it, with events routed by
 * prompt id. Opened lazily on first use; a reconnect is announced to every subscriber so each
 * attempt reconciles from history and queue (ComfyUI replays nothing).
 */
import { randomUUID } from 'node:crypto';
import { ComfyEventStream, type ComfyStreamEvent } from '../comfy/event-stream.js';
import type { Clock } from '../util/clock.js';
import type { Logger, ServerOption } from './options.js';
import { promptIdOf, type FeedEvent, type ServerFeed } from './server-feed.js';

class StreamFeed implements ServerFeed {
  readonly clientId: string;
  readonly #stream: ComfyEventStream;
  readonly #byPrompt = new Map<string, Set<(e: FeedEvent) => void>>();
  #connected = false;
  /** A connect attempt failed and none has succeeded since. */
  #down = false;
  #lastRemaining: number | null = null;
  #lastActivityAt = 0;
  readonly #readyWaiters = new Set<(open: boolean) => void>();
  readonly #clock: Clock;
  /** The prompt this socket last saw executing: ComfyUI's type-1 previews do not name their prompt. */
  #executing: string | null = null;

  constructor(server: ServerOption, clock: Clock, logger: Logger, clientId: string) {
    this.clientId = clientId;
    this.#clock = clock;
    this.#stream = new ComfyEventStream({
      baseUrl: server.url,
      clientId: this.clientId,
      name: server.name ?? server.url,
      ...(server.headers ? { headers: server.headers } : {}),
      clock,
      backoff: { initialMs: 250, maxMs: 10_000 },
    });
    this.#stream.on((e) => {
      try {
        this.#route(e);
      } catch (err) {
        logger.warn({ err, server: server.name }, 'feed listener failed');
      }
    });
    this.#stream.start();
  }

  get lastActivityAt(): number {
    return this.#lastActivityAt;
  }

  get connected(): boolean {
    return this.#connected;
  }

  ready(timeoutMs: number): Promise<boolean> {
    if (this.#connected) return Promise.resolve(true);
    if (this.#down) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = this.#clock.setTimeout(() => settle(false), timeoutMs);
      const settle = (open: boolean) => {
        this.#clock.clearTimeout(timer);
        this.#readyWaiters.delete(settle);
        resolve(open);
      };
      this.#readyWaiters.add(settle);
    });
  }

  #settleReady(open: boolean): void {
    for (const w of [...this.#readyWaiters]) w(open);
  }

  subscribe(promptId: string, listener: (e: FeedEvent) => void): () => void {
    let set = this.#byPrompt.get(promptId);
    if (!set) {
      set = new Set();
      this.#byPrompt.set(promptId, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#byPrompt.delete(promptId);
    };
  }

  close(): Promise<void> {
    this.#settleReady(false);
    this.#byPrompt.clear();
    return this.#stream.close();
  }

  #all(e: FeedEvent): void {
    for (const set of this.#byPrompt.values()) for (const l of set) l(e);
  }

  #route(e: ComfyStreamEvent): void {
    switch (e.kind) {
      case 'open': {
        this.#connected = true;
        this.#down = false;
        this.#lastRemaining = null;
        this.#settleReady(true);
        // Every open reconciles, the first too: a prompt submitted while the socket was still opening
        // (or before comfyguard restarted) may have run meanwhile, and ComfyUI replays nothing.
        this.#all({ kind: 'connection', connected: true });
        return;
      }
      case 'close':
        if (this.#connected) {
          this.#connected = false;
          this.#all({ kind: 'connection', connected: false });
        }
        return;
      case 'reconnecting':
        // A connect attempt failed: the server is down for now. Waiters stop waiting; polling covers it.
        if (!this.#connected && e.error) {
          this.#down = true;
          this.#settleReady(false);
        }
        return;
      case 'binary': {
        const f = e.frame;
        if (f.kind !== 'preview' && f.kind !== 'preview_with_metadata') return;
        const id = f.kind === 'preview_with_metadata' && typeof f.metadata.prompt_id === 'string' ? f.metadata.prompt_id : this.#executing;
        if (!id) return;
        const set = this.#byPrompt.get(id);
        if (set) for (const l of set) l({ kind: 'preview', frame: f });
        return;
      }
      case 'message': {
        const m = e.message;
        if (m.type === 'executing') this.#executing = m.data.node === null ? null : (m.data.prompt_id ?? this.#executing);
        if (m.type === 'status') {
          const remaining = m.data.status.exec_info.queue_remaining;
          const shrank = this.#lastRemaining !== null && remaining < this.#lastRemaining;
          this.#lastRemaining = remaining;
          this.#all({ kind: 'queue', queueRemaining: remaining, shrank: shrank || remaining === 0 });
          return;
        }
        const id = promptIdOf(m);
        this.#lastActivityAt = this.#clock.now();
        // Messages without a prompt id (the reconnect `executing` echo) cannot be attributed: the
        // reconnect reconciliation covers them.
        if (!id) return;
        const set = this.#byPrompt.get(id);
        if (set) for (const l of set) l({ kind: 'message', message: m });
        return;
      }
      default:
        return;
    }
  }
}

/** Lazily opened feeds, one per configured server. */
export class FeedRegistry {
  readonly #feeds = new Map<string, StreamFeed>();
  readonly #servers: Map<string, ServerOption>;
  #closed = false;
  /** One clientId for every socket of this instance; set (from the store) before the first socket opens. */
  #clientId = `comfyguard-${randomUUID()}`;

  constructor(
    servers: readonly ServerOption[],
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.#servers = new Map(servers.map((s) => [s.name ?? s.url, s]));
  }

  /** The clientId prompts are sent with. Kept across restarts, so a reattached prompt's events come back here. */
  get clientId(): string {
    return this.#clientId;
  }

  set clientId(id: string) {
    if (this.#feeds.size > 0) throw new Error('the clientId is fixed once a socket is open');
    this.#clientId = id;
  }

  /** Opens every server's socket now, so the first job's events are never missed while one opens. */
  openAll(): void {
    for (const name of this.#servers.keys()) this.get(name);
  }

  /** The feed of `server`, opening its socket on first use. */
  get(server: string): ServerFeed {
    if (this.#closed) throw new Error('feeds are closed');
    let feed = this.#feeds.get(server);
    if (!feed) {
      const cfg = this.#servers.get(server);
      if (!cfg) throw new Error(`unknown server ${server}`);
      feed = new StreamFeed(cfg, this.clock, this.logger, this.#clientId);
      this.#feeds.set(server, feed);
    }
    return feed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#feeds.values()].map((f) => f.close()));
    this.#feeds.clear();
  }
}
