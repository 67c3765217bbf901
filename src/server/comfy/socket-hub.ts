/**
 * The ComfyUI-compatible WebSocket: one socket per `clientId`, fed with ComfyUI-shaped events for
 * the jobs that client submitted, plus a `status` heartbeat so clients that treat ~10 s of silence
 * as a dead connection (@saintno/comfyui-sdk) stay calm during long steps.
 */
import type { WebSocket } from 'ws';
import { encodeBinaryFrame } from '../../comfy/binary.js';
import type { BinaryFrame, WsMessage } from '../../comfy/types.js';
import type { Guard, JobEvent } from '../../jobs/guard-api.js';
import { isTerminal, type JobRecord } from '../../jobs/types.js';
import type { Clock, TimerHandle } from '../../util/clock.js';
import type { CompatRegistry } from './registry.js';
import { nodeOutputs, terminalMessage } from './shapes.js';

type PreviewFrame = Extract<BinaryFrame, { kind: 'preview' | 'preview_with_metadata' }>;

interface Logger {
  warn(obj: object, msg?: string): void;
}

/** What the hub knows about a job it relays. */
interface JobTrack {
  /** `execution_start` went out (later attempts' are not repeated: the client sees one prompt). */
  started: boolean;
  /** The attempt whose ComfyUI events are relayed; older attempts' late events are dropped. */
  attempt: number;
  /** ComfyUI's terminal message of the current attempt, held until the job's own end is known. */
  terminal: WsMessage | null;
  /** Output nodes whose `executed` went out. */
  executed: Set<string>;
}

const QUEUE_COUNT_TTL_MS = 250;
/** Events of jobs nobody claimed yet (a job can start before `POST /prompt` has answered). */
const UNCLAIMED_JOBS = 64;
const UNCLAIMED_EVENTS_PER_JOB = 500;

type Outgoing = WsMessage | { type: string; data: Record<string, unknown> } | Buffer;

/** The client's view of a ComfyUI message: every prompt id of the attempt becomes the client's. */
export function rewritePromptId<T extends { type: string; data: unknown }>(message: T, from: string, to: string): T {
  const data = message.data as Record<string, unknown>;
  const out: Record<string, unknown> = { ...data };
  if (out.prompt_id === from) out.prompt_id = to;
  if (message.type === 'progress_state' && data.nodes && typeof data.nodes === 'object') {
    const nodes: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(data.nodes as Record<string, Record<string, unknown>>)) nodes[k] = v?.prompt_id === from ? { ...v, prompt_id: to } : v;
    out.nodes = nodes;
  }
  return { ...message, data: out };
}

/** A preview frame for a client: type 4 (with metadata) only to clients that announced support for it. */
export function previewFor(frame: PreviewFrame, promptId: string, withMetadata: boolean): Buffer {
  if (frame.kind === 'preview') return encodeBinaryFrame({ kind: 'preview', formatCode: frame.formatCode, image: frame.image });
  if (withMetadata) return encodeBinaryFrame({ kind: 'preview_with_metadata', metadata: { ...frame.metadata, prompt_id: promptId }, image: frame.image });
  // ComfyUI's own fallback for such clients: a type 1 frame (format 1 = JPEG, 2 = PNG).
  const formatCode = frame.metadata.image_type === 'image/jpeg' ? 1 : 2;
  return encodeBinaryFrame({ kind: 'preview', formatCode, image: frame.image });
}

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
  /** Clients that announced `supports_preview_metadata` in their `feature_flags`. */
  readonly #previewMetadata = new Set<string>();
  readonly #unclaimed = new Map<string, JobEvent[]>();
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
        this.#previewMetadata.delete(clientId);
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
      const m = msg as { type?: unknown; data?: { supports_preview_metadata?: unknown } } | null;
      if (m?.type === 'feature_flags') {
        if (m.data?.supports_preview_metadata === true) this.#previewMetadata.add(clientId);
        else this.#previewMetadata.delete(clientId);
        this.#enqueue(clientId, async () => [{ type: 'feature_flags', data: { supports_preview_metadata: true } }]);
      }
    });
    this.#enqueue(clientId, async () => [{ type: 'status', data: { status: { exec_info: { queue_remaining: await this.#queueRemaining() } }, sid: clientId } }]);
  }

  /**
   * Relays what happened to a job before the endpoint recorded who submitted it (a job can start,
   * or even finish, before `POST /prompt` has answered), then follows it live.
   */
  async claim(jobId: string): Promise<void> {
    const early = this.#unclaimed.get(jobId) ?? [];
    this.#unclaimed.delete(jobId);
    for (const e of early) this.#onEvent(e);
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
    this.#unclaimed.clear();
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
        for (const m of messages) socket.send(Buffer.isBuffer(m) ? m : JSON.stringify(m));
      })
      .catch((err: unknown) => this.#log.warn({ err, clientId }, 'could not send to a ComfyUI client'));
    this.#chains.set(clientId, next);
  }

  #onEvent(e: JobEvent): void {
    const entry = this.#registry.peek(e.jobId);
    if (!entry) {
      this.#keepUnclaimed(e);
      this.#loadOnce(e.jobId);
      return;
    }
    if (!entry.clientId) return;
    const clientId = entry.clientId;
    const pid = entry.promptId;
    let track = this.#jobs.get(e.jobId);
    if (!track) {
      track = { started: false, attempt: 0, terminal: null, executed: new Set() };
      this.#jobs.set(e.jobId, track);
    }
    const t = track;
    const send = (out: Outgoing[]) => {
      if (out.length > 0) this.#enqueue(clientId, async () => out);
    };
    const start = (at: number): Outgoing[] => {
      if (t.started) return [];
      t.started = true;
      return [{ type: 'execution_start', data: { prompt_id: pid, timestamp: at } }];
    };

    switch (e.type) {
      case 'attempt_started':
        if (e.attempt > t.attempt) {
          // A new attempt: whatever the previous one said last is no longer the job's last word.
          if (t.attempt > 0) send([{ type: 'comfyguard_recovery', data: { prompt_id: pid, attempt: e.attempt, server: e.server } }]);
          t.attempt = e.attempt;
          t.terminal = null;
        }
        return;
      case 'comfy': {
        if (e.attempt < t.attempt) return;
        t.attempt = e.attempt;
        const m = rewritePromptId(e.message, e.promptId, pid);
        if (m.type === 'execution_start') return send(start(e.at));
        if (m.type === 'execution_success' || m.type === 'execution_error' || m.type === 'execution_interrupted') {
          t.terminal = m;
          return;
        }
        // The job's own end sends `executing {node: null}` once, after the terminal message.
        if (m.type === 'executing' && m.data.node === null) return;
        if (m.type === 'executed') {
          t.executed.add(m.data.node);
          for (const img of m.data.output?.images ?? []) this.#registry.rememberFile({ filename: img.filename, subfolder: img.subfolder ?? '', type: img.type ?? 'output' }, e.server);
        }
        return send([...start(e.at), m]);
      }
      case 'preview': {
        if (e.attempt < t.attempt) return;
        const frame = previewFor(e.frame, pid, this.#previewMetadata.has(clientId));
        return send([frame]);
      }
      case 'state':
        break;
      default:
        return;
    }
    if (e.to === 'queued' && e.from !== null && isTerminal(e.from)) {
      // A manual retry: the job runs again and will end again.
      this.#finished.delete(e.jobId);
      this.#jobs.delete(e.jobId);
      return;
    }
    if (!isTerminal(e.to) || this.#finished.has(e.jobId)) return;
    this.#jobs.delete(e.jobId);
    this.#finished.add(e.jobId);
    if (this.#finished.size > 10_000) this.#finished.delete(this.#finished.values().next().value as string);
    const job: JobRecord = e.job;
    const out: Outgoing[] = start(e.at);
    if (job.status === 'completed') {
      // Outputs whose `executed` was not relayed live (a cached result, a job that finished unclaimed).
      for (const [node, output] of Object.entries(nodeOutputs(job))) {
        if (!t.executed.has(node)) out.push({ type: 'executed', data: { node, display_node: node, output, prompt_id: pid } });
      }
    }
    for (const o of job.outputs) this.#registry.rememberFile(o, o.server);
    if (t.terminal) this.#registry.rememberTerminal(job.id, t.terminal);
    out.push(terminalMessage(job, pid, t.terminal ?? undefined));
    // ComfyUI's order: the terminal message, the queue's new status, then `executing {node: null}`.
    this.#enqueue(clientId, async () => [...out, this.#status(await this.#queueRemaining()), { type: 'executing', data: { node: null, prompt_id: pid } }]);
  }

  /** A job submitted before a restart: its client and prompt id are in the registry's store. */
  #loadOnce(jobId: string): void {
    if (this.#loading.has(jobId)) return;
    this.#loading.add(jobId);
    if (this.#loading.size > UNCLAIMED_JOBS * 4) this.#loading.delete(this.#loading.values().next().value as string);
    void this.#registry
      .load(jobId)
      .then((entry) => (entry ? this.claim(jobId) : undefined))
      .catch((err: unknown) => this.#log.warn({ err, jobId }, 'could not load a ComfyUI prompt id'));
  }

  readonly #loading = new Set<string>();

  #keepUnclaimed(e: JobEvent): void {
    let list = this.#unclaimed.get(e.jobId);
    if (!list) {
      if (this.#unclaimed.size >= UNCLAIMED_JOBS) this.#unclaimed.delete(this.#unclaimed.keys().next().value as string);
      list = [];
      this.#unclaimed.set(e.jobId, list);
    }
    if (list.length < UNCLAIMED_EVENTS_PER_JOB) list.push(e);
  }
}
