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
  readonly clientId = `comfyguard-${randomUUID()}`;
  readonly #stream: ComfyEventStream;
  readonly #byPrompt = new Map<string, Set<(e: FeedEvent) => void>>();
  #connected = false;
  #everOpened = false;

  constructor(server: ServerOption, clock: Clock, logger: Logger) {
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

  get connected(): boolean {
    return this.#connected;
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
    this.#byPrompt.clear();
    return this.#stream.close();
  }

  #all(e: FeedEvent): void {
    for (const set of this.#byPrompt.values()) for (const l of set) l(e);
  }

  #route(e: ComfyStreamEvent): void {
    switch (e.kind) {
      case 'open': {
        const reconnected = this.#everOpened;
        this.#everOpened = true;
        this.#connected = true;
        this.#all({ kind: 'connection', connected: true, reconnected });
        return;
      }
      case 'close':
        if (this.#connected) {
          this.#connected = false;
          this.#all({ kind: 'connection', connected: false, reconnected: false });
        }
        return;
      case 'message': {
        const m = e.message;
        if (m.type === 'status') {
          this.#all({ kind: 'queue', queueRemaining: m.data.status.exec_info.queue_remaining });
          return;
        }
        const id = promptIdOf(m);
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

  constructor(
    servers: readonly ServerOption[],
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.#servers = new Map(servers.map((s) => [s.name ?? s.url, s]));
  }

  /** The feed of `server`, opening its socket on first use. */
  get(server: string): ServerFeed {
    if (this.#closed) throw new Error('feeds are closed');
    let feed = this.#feeds.get(server);
    if (!feed) {
      const cfg = this.#servers.get(server);
      if (!cfg) throw new Error(`unknown server ${server}`);
      feed = new StreamFeed(cfg, this.clock, this.logger);
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
