/**
 * The one typed event stream of a guard: everything that happens to a job (state changes, attempts
 * started and settled, recovery steps opened and closed, ComfyUI's own execution events of the
 * current attempt, previews) and to the pool (breaker, health, capabilities, degradation). Every face
 * subscribes here — SSE, metrics, analytics, alerts, webhooks, the ComfyUI-compatible endpoint — and
 * every event is also published on `node:diagnostics_channel` (`comfyguard:<type>`) for tracing tools.
 * Nobody reconstructs events by diffing records.
 */
import diagnostics from 'node:diagnostics_channel';
import type { BinaryFrame, WsMessage } from '../comfy/types.js';
import type { PoolEvent } from '../pool/index.js';
import type { JobRecord, JobStatus, RecoveryStep, StrategyName } from './types.js';

/** ComfyUI's own execution messages, as the server sent them for the attempt's prompt id. */
export type ComfyExecutionMessage = Extract<
  WsMessage,
  {
    type:
      | 'execution_start'
      | 'execution_cached'
      | 'executing'
      | 'progress'
      | 'progress_state'
      | 'executed'
      | 'execution_success'
      | 'execution_error'
      | 'execution_interrupted';
  }
>;

const EXECUTION_TYPES: ReadonlySet<string> = new Set<ComfyExecutionMessage['type']>([
  'execution_start',
  'execution_cached',
  'executing',
  'progress',
  'progress_state',
  'executed',
  'execution_success',
  'execution_error',
  'execution_interrupted',
]);

/** True for the messages a job's `comfy` events carry. */
export function isExecutionMessage(m: WsMessage): m is ComfyExecutionMessage {
  return EXECUTION_TYPES.has(m.type);
}

/** How an attempt ended. `detached`: comfyguard shut down; the prompt runs on and a restart reattaches. */
export type AttemptOutcome = 'completed' | 'failed' | 'interrupted' | 'lost' | 'cancelled' | 'detached';

/** What happened to one job. Every event names the job; attempt-level events name the attempt too. */
export type JobEvent =
  /** A persisted status change (`from: null` for a newly created job, or the current state of a late subscriber). */
  | { type: 'state'; jobId: string; from: JobStatus | null; to: JobStatus; at: number; job: JobRecord }
  /** The job's overall progress (0..100) as computed from ComfyUI's events; throttled. */
  | { type: 'progress'; jobId: string; progress: number; node: string | null; attempt: number; at: number }
  /** An attempt's prompt id was recorded and it is about to be sent (or reattached after a restart). */
  | { type: 'attempt_started'; jobId: string; attempt: number; server: string; promptId: string; strategy: StrategyName | null; reattached: boolean; at: number }
  /** An attempt ended; `code` and `message` for failures. */
  | {
      type: 'attempt_settled';
      jobId: string;
      attempt: number;
      server: string;
      promptId: string;
      outcome: AttemptOutcome;
      code: string | null;
      message: string | null;
      durationMs: number;
      at: number;
    }
  /** A recovery step was decided (its attempt has not run yet: `success: null`); `failedPromptId` is the prompt that failed ('' when it failed before sending). */
  | { type: 'recovery'; jobId: string; step: RecoveryStep; failedPromptId: string; at: number }
  /** The attempt a recovery step produced has ended: `step.success` says how. */
  | { type: 'recovery_closed'; jobId: string; step: RecoveryStep; at: number }
  /** One of ComfyUI's execution messages for the current attempt, unchanged (its prompt id is the attempt's). */
  | { type: 'comfy'; jobId: string; attempt: number; server: string; promptId: string; message: ComfyExecutionMessage; at: number }
  /** A preview frame of the current attempt (binary type 1 or 4 from ComfyUI). */
  | {
      type: 'preview';
      jobId: string;
      attempt: number;
      server: string;
      promptId: string;
      frame: Extract<BinaryFrame, { kind: 'preview' | 'preview_with_metadata' }>;
      at: number;
    };

/** A change in the pool (breaker, health, capabilities, degradation), as the pool reported it. */
export interface PoolChangeEvent {
  type: 'pool';
  change: PoolEvent;
  at: number;
}

/** Everything on a guard's event stream. */
export type GuardEvent = JobEvent | PoolChangeEvent;

/** Every event type on the stream (also the diagnostics channel suffixes). */
export const GUARD_EVENT_TYPES = [
  'state',
  'progress',
  'attempt_started',
  'attempt_settled',
  'recovery',
  'recovery_closed',
  'comfy',
  'preview',
  'pool',
] as const satisfies ReadonlyArray<GuardEvent['type']>;

/** The diagnostics channel name of an event type: `comfyguard:<type>`. */
export function channelName(type: GuardEvent['type']): string {
  return `comfyguard:${type}`;
}

/** True for events about a job (everything but pool changes). */
export function isJobEvent(e: GuardEvent): e is JobEvent {
  return e.type !== 'pool';
}

type Listener = (e: GuardEvent) => void;

/**
 * Delivers events to listeners synchronously, in subscription order; a listener that throws is
 * reported to `onListenerError` and does not stop the others. Costs nothing per event type nobody
 * listens to on the diagnostics channel.
 */
export class EventBus {
  readonly #listeners = new Set<Listener>();
  readonly #channels = new Map<string, diagnostics.Channel>();
  readonly #onListenerError: (err: unknown, e: GuardEvent) => void;

  constructor(onListenerError: (err: unknown, e: GuardEvent) => void = () => undefined) {
    this.#onListenerError = onListenerError;
    for (const t of GUARD_EVENT_TYPES) this.#channels.set(t, diagnostics.channel(channelName(t)));
  }

  /** Subscribes to every event; returns an unsubscribe function. */
  on(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  emit(e: GuardEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        this.#onListenerError(err, e);
      }
    }
    const ch = this.#channels.get(e.type);
    if (ch?.hasSubscribers) ch.publish(e);
  }

  clear(): void {
    this.#listeners.clear();
  }
}
