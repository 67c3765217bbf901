/**
 * The ComfyUI-compatible WebSocket: one socket per `clientId`, fed with ComfyUI-shaped events for
 * the jobs that client submitted, plus a `status` heartbeat so clients that treat ~10 s of silence
 * as a dead connection (@saintno/comfyui-sdk) stay calm during long steps.
 */
import type { WebSocket } from 'ws';
import type { WsMessage } from '../../comfy/types.js';
import type { Guard, JobEvent } from '../../jobs/guard-api.js';
import { isTerminal, type JobRecord } from '../../jobs/types.js';
import type { Clock, TimerHandle } from '../../util/clock.js';
import type { CompatRegistry } from './registry.js';
import { nodeOutputs, terminalMessage } from './shapes.js';

interface Logger {
  warn(obj: object, msg?: string): void;
}

interface JobTrack {
  started: boolean;
  lastNode: string | null;
}

const QUEUE_COUNT_TTL_MS = 250;

type Outgoing = WsMessage | { type: 'feature_flags'; data: Record<string, unknown> };

/** Routes guard events to ComfyUI clients' sockets in ComfyUI's message order. */
export class ComfySocketHub {
  readonly #guard: Guard;
  readonly #registry: CompatRegistry;
  readonly #clock: Clock;
  readonly #heartbeatMs: number;
  readonly #log: Logger;
  readonly #sockets = new Map<string, WebSocket>();
  /** Per-client send chain: messages that wait for a queue count still go out in order. */
  readonly #chains = new Map<string, Promise<void>>();
  readonly #jobs = new Map<string, JobTrack>();
  /** Jobs whose end was already sent (bounded), so a catch-up never sends it twice. */
  readonly #finished = new Set<string>();
  #unsubscribe: (() => void) | null = null;
  #timer: TimerHandle | null = null;
  #closed = false;

  constructor(opts: { guard: Guard; registry: CompatRegistry; clock: Clock; heartbeatMs: number; logger: Logger }) {
    this.#guard = opts.guard;
    this.#registry = opts.registry;
    this.#clock = opts.clock;
    this.#heartbeatMs = opts.heartbeatMs;
    this.#log = opts.logger;
  }

  /** Subscribes to the guard's events and starts the heartbeat. */
  start(): void {
    this.#unsubscribe = this.#guard.onEvent((e) => {
      if (e.type !== 'pool') this.#onEvent(e);
    });
    this.#armHeartbeat();
  }

  /** Number of connected clients. */
  get size(): number {
    return this.#sockets.size;
  }

  /** Takes over a client's socket: a reconnect with the same clientId replaces the old socket. */
  attach(clientId: string, socket: WebSocket): void {
    const previous = this.#sockets.get(clientId);
    this.#sockets.set(clientId, socket);
    if (previous && previous !== socket) previous.close(1000, 'replaced by a new connection');
    socket.on('close', () => {
      // Only if it is still ours: a reconnect may already have replaced it (ComfyUI issue #16010).
      if (this.#sockets.get(clientId) === socket) {
        this.#sockets.delete(clientId);
        this.#chains.delete(clientId);
      }
    });
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      let msg: unknown;
      try {
        msg = JSON.parse(String(data));
      } catch {
        return;
      }
      if ((msg as { type?: unknown } | null)?.type === 'feature_flags') {
        this.#enqueue(clientId, async () => [{ type: 'feature_flags', data: { supports_preview_metadata: false } }]);
      }
    });
    this.#enqueue(clientId, async () => [{ type: 'status', data: { status: { exec_info: { queue_remaining: await this.#queueRemaining() } }, sid: clientId } }]);
  }

  /**
   * Sends the end of a job that finished before the endpoint recorded who submitted it (a fast
   * server can finish a job before `POST /prompt` has answered).
   */
  async catchUp(jobId: string): Promise<void> {
    const job = await this.#guard.get(jobId);
    if (job && isTerminal(job.status) && !this.#finished.has(jobId)) {
      this.#onEvent({ type: 'state', jobId, from: null, to: job.status, at: this.#clock.now(), job });
    }
  }

  /** Closes every socket and stops listening. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    for (const s of this.#sockets.values()) s.close(1001, 'comfyguard is shutting down');
    this.#sockets.clear();
    this.#chains.clear();
  }

  /**
   * Jobs not yet finished, for `status` messages. Shared by concurrent callers and reused for
   * QUEUE_COUNT_TTL_MS: under load every finished job would otherwise cost a store aggregate.
   */
  #queueRemaining(): Promise<number> {
    const now = this.#clock.now();
    if (this.#count && now - this.#count.at < QUEUE_COUNT_TTL_MS) return this.#count.value;
    const value = this.#guard.stats().then(
      ({ byStatus }) => (byStatus.queued ?? 0) + (byStatus.running ?? 0) + (byStatus.recovering ?? 0),
      () => 0,
    );
    this.#count = { at: now, value };
    return value;
  }

  #count: { at: number; value: Promise<number> } | null = null;

  #status(n: number): WsMessage {
    return { type: 'status', data: { status: { exec_info: { queue_remaining: n } } } };
  }

  #armHeartbeat(): void {
    this.#timer = this.#clock.setTimeout(() => {
      if (this.#closed) return;
      if (this.#sockets.size > 0) {
        const count = this.#queueRemaining();
        for (const clientId of this.#sockets.keys()) this.#enqueue(clientId, async () => [this.#status(await count)]);
      }
      this.#armHeartbeat();
    }, this.#heartbeatMs);
  }

  /** Queues messages for a client behind whatever is still being sent to it. */
  #enqueue(clientId: string, build: () => Promise<Outgoing[]>): void {
    const prev = this.#chains.get(clientId) ?? Promise.resolve();
    const next = prev
      .then(build)
      .then((messages) => {
        const socket = this.#sockets.get(clientId);
        if (!socket || socket.readyState !== socket.OPEN) return;
        for (const m of messages) socket.send(JSON.stringify(m));
      })
      .catch((err: unknown) => this.#log.warn({ err, clientId }, 'could not send to a ComfyUI client'));
    this.#chains.set(clientId, next);
  }

  #onEvent(e: JobEvent): void {
    const entry = this.#registry.peek(e.jobId);
    if (!entry?.clientId) return;
    const pid = entry.promptId;
    const track = this.#jobs.get(e.jobId) ?? { started: false, lastNode: null };
    this.#jobs.set(e.jobId, track);
    const at = e.at;
    const startMessages = (): Outgoing[] => {
      if (track.started) return [];
      track.started = true;
      return [
        { type: 'execution_start', data: { prompt_id: pid, timestamp: at } },
        { type: 'execution_cached', data: { nodes: [], prompt_id: pid, timestamp: at } },
      ];
    };
    if (e.type === 'progress') {
      const out: Outgoing[] = startMessages();
      if (e.node && e.node !== track.lastNode) {
        track.lastNode = e.node;
        out.push({ type: 'executing', data: { node: e.node, display_node: e.node, prompt_id: pid } });
      }
      out.push({ type: 'progress', data: { value: Math.round(e.progress), max: 100, prompt_id: pid, node: e.node ?? track.lastNode } });
      this.#enqueue(entry.clientId, async () => out);
      return;
    }
    if (e.type !== 'state') return;
    if (e.to === 'queued' && e.from !== null && isTerminal(e.from)) {
      // A manual retry: the job runs again and will end again.
      this.#finished.delete(e.jobId);
      this.#jobs.delete(e.jobId);
      return;
    }
    if (e.to === 'running') {
      const out = startMessages();
      if (out.length > 0) this.#enqueue(entry.clientId, async () => out);
      return;
    }
    if (!isTerminal(e.to) || this.#finished.has(e.jobId)) return;
    this.#jobs.delete(e.jobId);
    this.#finished.add(e.jobId);
    if (this.#finished.size > 10_000) this.#finished.delete(this.#finished.values().next().value as string);
    const job: JobRecord = e.job;
    const out: Outgoing[] = startMessages();
    if (job.status === 'completed') {
      for (const [node, output] of Object.entries(nodeOutputs(job))) {
        out.push({ type: 'executed', data: { node, display_node: node, output, prompt_id: pid } });
      }
    }
    for (const o of job.outputs) this.#registry.rememberFile(o, o.server);
    out.push(terminalMessage(job, pid));
    this.#enqueue(entry.clientId, async () => [...out, this.#status(await this.#queueRemaining()), { type: 'executing', data: { node: null, prompt_id: pid } }]);
  }
}
