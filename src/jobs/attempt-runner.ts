/**
 * Runs one attempt: submits one concrete workflow under a prompt id chosen (and persisted) by the
 * caller, follows it over the server's event feed, falls back to polling history and queue when
 * the socket is down, reconciles after every reconnect, and watches for stalls and timeouts.
 *
 * It returns evidence, not a verdict: the engine classifies failures and decides recovery.
 */
import { ComfyRequestError } from '../comfy/errors.js';
import type { NodeOutput, PromptOutcome, WsMessage } from '../comfy/types.js';
import type { TimerHandle } from '../util/clock.js';
import { abortKindOf, type AttemptResult, type AttemptSpec } from './attempt-spec.js';
import { isExecutionMessage } from './events.js';
import { locatePrompt } from './prompt-locator.js';
import { ProgressTracker } from './progress.js';
import type { FeedEvent } from './server-feed.js';

export { abortReason, type AbortKind, type AttemptResult, type AttemptSpec } from './attempt-spec.js';

/** Lookups (500 ms apart) that wait for history after a success before the prompt counts as lost. */
const MAX_HISTORY_WAITS = 20;

/** How long after a queue shrank an attempt that heard nothing looks its prompt up. */
const QUEUE_CHECK_GRACE_MS = 500;

type Where = 'running' | 'pending' | 'done' | 'lost' | 'unreachable';

/** Runs one attempt to its end. Never throws: every failure is returned as evidence. */
export async function runAttempt(spec: AttemptSpec): Promise<AttemptResult> {
  return new AttemptRun(spec).run();
}

class AttemptRun {
  readonly #s: AttemptSpec;
  readonly #tracker: ProgressTracker;
  readonly #outputsSeen: Record<string, NodeOutput> = {};
  readonly #cachedNodes = new Set<string>();
  #resolve!: (r: AttemptResult) => void;
  readonly #done: Promise<AttemptResult>;
  #finished = false;
  #submitted = false;
  #started = false;
  #successSeen = false;
  #ourInterrupt: 'cancel' | 'stall' | 'timeout' | null = null;
  #lastActivity: number;
  #unreachableSince: number | null = null;
  #lastQueueSignature: string | null = null;
  #reconciling = false;
  readonly #timers = new Set<TimerHandle>();

  constructor(spec: AttemptSpec) {
    this.#s = spec;
    this.#tracker = new ProgressTracker(spec.workflow);
    this.#lastActivity = spec.clock.now();
    this.#done = new Promise((r) => (this.#resolve = r));
  }

  async run(): Promise<AttemptResult> {
    const s = this.#s;
    if (s.signal.aborted) return abortKindOf(s.signal) === 'shutdown' ? { kind: 'detached' } : { kind: 'cancelled' };
    // Subscribe before submitting: ComfyUI may emit events before the POST response arrives.
    const unsubscribe = s.feed.subscribe(s.promptId, (e) => this.#onFeed(e));
    const onAbort = () => void this.#onAbort();
    s.signal.addEventListener('abort', onAbort, { once: true });
    try {
      this.#armGenerationTimeout();
      this.#armStallCheck();
      this.#armPoll();
      if (s.reattach) {
        this.#submitted = true;
        void this.#reconcile('reattach');
      } else {
        // Submit once the socket is open (or known down): events sent before it opens are lost for good.
        void s.feed.ready(s.socketReadyTimeoutMs ?? 5_000).then(() => {
          if (!this.#finished && !s.signal.aborted) void this.#submit();
        });
      }
      return await this.#done;
    } finally {
      unsubscribe();
      s.signal.removeEventListener('abort', onAbort);
      for (const t of this.#timers) s.clock.clearTimeout(t);
      this.#timers.clear();
    }
  }

  #finish(r: AttemptResult): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#resolve(r);
  }

  #fail(evidence: unknown, extra: { lost?: boolean; submitted?: boolean } = {}): void {
    this.#finish({
      kind: 'failed',
      evidence,
      submitted: extra.submitted ?? this.#submitted,
      ...(extra.lost ? { lost: true } : {}),
      completedOutputs: { ...this.#outputsSeen },
    });
  }

  #timer(ms: number, fn: () => void): void {
    const h = this.#s.clock.setTimeout(() => {
      this.#timers.delete(h);
      if (!this.#finished) fn();
    }, ms);
    this.#timers.add(h);
  }

  // ---- submit --------------------------------------------------------------------------------

  async #submit(): Promise<void> {
    const s = this.#s;
    try {
      const res = await s.client.submitPrompt(s.workflow, {
        clientId: s.feed.clientId,
        promptId: s.promptId,
        ...(s.partialTargets ? { partialExecutionTargets: s.partialTargets } : {}),
        ...(s.extraData ? { extraData: s.extraData } : {}),
        signal: s.signal,
      });
      this.#submitted = true;
      this.#lastActivity = s.clock.now();
      if (this.#finished) return;
      s.onSubmitted?.();
      if (res.node_errors && Object.keys(res.node_errors).length > 0) {
        // Accepted with some outputs dropped: the job would silently lose outputs. Take it back and
        // let recovery act on the node errors (a missing model on one branch is still recoverable).
        await this.#withdraw();
        this.#fail(
          { kind: 'validation', body: { error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} }, node_errors: res.node_errors } },
          { submitted: false },
        );
      }
    } catch (err) {
      if (this.#finished) return;
      if (s.signal.aborted) return; // #onAbort handles it
      const ambiguous = !(err instanceof ComfyRequestError) || (err.kind !== 'http' || (err.status ?? 0) >= 500);
      const definitelyRejected = err instanceof ComfyRequestError && err.kind === 'http' && (err.status ?? 0) < 500;
      if (definitelyRejected || !ambiguous) {
        this.#fail(err, { submitted: false });
        return;
      }
      // The server may have queued it before the connection broke: look before anyone resubmits.
      const where = await this.#locate();
      if (where === 'running' || where === 'pending') {
        this.#submitted = true;
        s.onSubmitted?.();
        return;
      }
      if (where === 'done') return;
      this.#fail(err, { submitted: false });
    }
  }

  /** Removes our prompt from the server: delete if pending, scoped interrupt if running. */
  async #withdraw(): Promise<void> {
    const s = this.#s;
    const opts = { timeoutMs: 5_000 };
    await s.client.deleteFromQueue([s.promptId], opts).catch(() => undefined);
    await s.client.interrupt(s.promptId, opts).catch(() => undefined);
  }

  // ---- events --------------------------------------------------------------------------------

  #onFeed(e: FeedEvent): void {
    if (this.#finished) return;
    const s = this.#s;
    if (e.kind === 'connection') {
      if (e.connected && (this.#submitted || s.reattach)) void this.#reconcile('reconnect');
      return;
    }
    if (e.kind === 'queue') {
      // A prompt left the queue: if it was ours and its end event went missing, history has it now.
      // Checked after a short grace, and only if we heard nothing meanwhile: normally the end marker
      // follows the status broadcast within milliseconds, and N prompts must not cost N² requests.
      if (e.shrank && this.#submitted && !this.#queueCheckArmed) {
        this.#queueCheckArmed = true;
        const armedAt = s.clock.now();
        this.#timer(QUEUE_CHECK_GRACE_MS, () => {
          this.#queueCheckArmed = false;
          if (this.#lastActivity <= armedAt) void this.#reconcile('queue');
        });
      }
      return;
    }
    this.#lastActivity = s.clock.now();
    if (e.kind === 'preview') {
      s.onPreview?.(e.frame);
      return;
    }
    if (isExecutionMessage(e.message)) s.onComfy?.(e.message);
    this.#onMessage(e.message);
  }

  #onMessage(m: WsMessage): void {
    const s = this.#s;
    switch (m.type) {
      case 'execution_start':
        this.#submitted = true;
        if (!this.#started) {
          this.#started = true;
          s.onStarted?.();
        }
        break;
      case 'execution_cached':
        for (const n of m.data.nodes) this.#cachedNodes.add(n);
        this.#progress(this.#tracker.cached(m.data.nodes), null);
        break;
      case 'executing':
        if (m.data.node === null) {
          // End marker: history is written. Read the outcome from there.
          void this.#reconcile('end');
        } else {
          this.#markStarted();
          this.#progress(this.#tracker.executing(m.data.node), m.data.node);
        }
        break;
      case 'progress':
        this.#markStarted();
        this.#progress(this.#tracker.step(m.data.node ?? null, m.data.value, m.data.max), m.data.node ?? null);
        break;
      case 'progress_state':
        this.#markStarted();
        this.#progress(this.#tracker.snapshot(m.data.nodes), null);
        break;
      case 'executed':
        if (m.data.output) this.#outputsSeen[m.data.node] = m.data.output;
        this.#progress(this.#tracker.finished(m.data.node), m.data.node);
        break;
      case 'execution_success':
        this.#successSeen = true;
        // Success can arrive before history has the outputs; the end marker or a poll confirms.
        this.#timer(Math.min(2_000, this.#s.pollIntervalMs ?? 2_000), () => void this.#reconcile('success'));
        break;
      case 'execution_error':
        // ExecutionBlocked is informational: execution continues.
        if (m.data.exception_type === 'ExecutionBlocked') break;
        this.#fail({ kind: 'execution_error', data: m.data }, { submitted: true });
        break;
      case 'execution_interrupted':
        this.#onInterrupted(m.data);
        break;
      default:
        break;
    }
  }

  #markStarted(): void {
    if (!this.#started) {
      this.#started = true;
      this.#submitted = true;
      this.#s.onStarted?.();
    }
  }

  #progress(pct: number, node: string | null): void {
    this.#s.onProgress?.(pct, node);
  }

  #onInterrupted(data: unknown): void {
    switch (this.#ourInterrupt) {
      case 'cancel':
        this.#finish({ kind: 'cancelled' });
        return;
      case 'stall':
        this.#fail({ kind: 'timeout', phase: 'stall', ms: this.#s.stallTimeoutMs }, { submitted: true });
        return;
      case 'timeout':
        this.#fail({ kind: 'timeout', phase: 'generation', ms: this.#s.generationTimeoutMs }, { submitted: true });
        return;
      default:
        this.#fail({ kind: 'interrupted', data, byOwner: false }, { submitted: true });
    }
  }

  // ---- outcome from history ------------------------------------------------------------------

  #applyOutcome(o: PromptOutcome): void {
    if (o.kind === 'success') {
      this.#progress(this.#tracker.complete(), null);
      this.#finish({ kind: 'completed', outputs: { ...this.#outputsSeen, ...o.outputs }, cachedNodes: [...this.#cachedNodes] });
    } else if (o.kind === 'error') {
      for (const [k, v] of Object.entries(o.outputs)) this.#outputsSeen[k] = v;
      this.#fail({ kind: 'execution_error', data: o.error }, { submitted: true });
    } else {
      this.#onInterrupted(o.interrupted);
    }
  }

  /** Where our prompt is (see `locatePrompt`); a finished outcome found there ends the attempt. */
  async #locate(): Promise<Where> {
    const s = this.#s;
    try {
      const found = await locatePrompt(s.client, s.promptId, { timeoutMs: Math.min(10_000, s.stallTimeoutMs) });
      this.#unreachableSince = null;
      // Movement of the queue AHEAD of a pending prompt (the running item changes, fewer items before
      // ours) proves the server works; prompts arriving behind ours prove nothing.
      if (found.signature !== undefined) {
        if (this.#lastQueueSignature !== null && found.signature !== this.#lastQueueSignature && found.where !== 'running') this.#lastActivity = s.clock.now();
        this.#lastQueueSignature = found.signature;
      }
      if (found.where === 'done') this.#applyOutcome(found.outcome);
      return found.where;
    } catch (err) {
      this.#unreachableSince ??= s.clock.now();
      this.#lastUnreachableError = err;
      return 'unreachable';
    }
  }

  #lastUnreachableError: unknown = null;

  async #reconcile(why: 'reconnect' | 'poll' | 'end' | 'success' | 'reattach' | 'stall' | 'queue'): Promise<void> {
    if (this.#finished) return;
    if (this.#reconciling) {
      // A lookup is in flight and may have read the server before this news (an end marker, a
      // reconnect): look again once it is done, or the news is lost until the next poll.
      if (why !== 'poll' && why !== 'stall') this.#again = why;
      return;
    }
    this.#reconciling = true;
    try {
      const where = await this.#locate();
      if (this.#finished) return;
      const s = this.#s;
      if (where === 'lost') {
        if (!this.#submitted && !this.#s.reattach) return; // our POST is still in flight
        if (this.#successSeen && why !== 'reattach' && this.#historyWaits++ < MAX_HISTORY_WAITS) {
          // Success was announced; history can lag behind the socket. Look again shortly (not only at
          // the next safety poll, seconds away).
          this.#timer(Math.min(500, s.pollIntervalMs ?? 2_000), () => void this.#reconcile('success'));
          return;
        }
        this.#fail({ kind: 'transport', code: 'PROMPT_LOST', message: 'the prompt is in neither the queue nor the history of the server (it restarted or the prompt was removed)' }, { lost: true, submitted: true });
        return;
      }
      if (where === 'unreachable') {
        const since = this.#unreachableSince ?? s.clock.now();
        if (s.clock.now() - since >= (s.unreachableGraceMs ?? 15_000)) {
          this.#fail(this.#lastUnreachableError ?? { kind: 'transport', code: 'ECONNREFUSED' });
        }
        return;
      }
      if (why === 'stall' && (where === 'running' || where === 'pending')) {
        if (s.clock.now() - this.#lastLife() >= s.stallTimeoutMs) await this.#stalled(where);
      }
    } finally {
      this.#reconciling = false;
      const again = this.#again;
      this.#again = null;
      if (again && !this.#finished) void this.#reconcile(again);
    }
  }

  #again: 'reconnect' | 'end' | 'success' | 'reattach' | 'queue' | null = null;

  // ---- watchdogs -----------------------------------------------------------------------------

  #armGenerationTimeout(): void {
    const s = this.#s;
    this.#timer(s.generationTimeoutMs, () => {
      this.#ourInterrupt = 'timeout';
      void this.#withdraw().finally(() =>
        this.#fail({ kind: 'timeout', phase: 'generation', ms: s.generationTimeoutMs }, { submitted: this.#submitted }),
      );
    });
  }

  #armStallCheck(): void {
    const s = this.#s;
    const check = () => {
      const idle = s.clock.now() - this.#lastLife();
      if (idle >= s.stallTimeoutMs) {
        void this.#reconcile('stall').finally(() => {
          if (!this.#finished) this.#armStallCheckIn(s.stallTimeoutMs);
        });
      } else {
        this.#armStallCheckIn(s.stallTimeoutMs - idle);
      }
    };
    this.#stallCheck = check;
    this.#armStallCheckIn(s.stallTimeoutMs);
  }

  #stallCheck: () => void = () => undefined;

  /** The last sign of life: ours, or while waiting our turn, any execution event on this server's socket. */
  #lastLife(): number {
    return this.#started ? this.#lastActivity : Math.max(this.#lastActivity, this.#s.feed.lastActivityAt);
  }

  #armStallCheckIn(ms: number): void {
    this.#timer(Math.max(50, ms), () => this.#stallCheck());
  }

  async #stalled(where: 'running' | 'pending'): Promise<void> {
    // Running with no event, or waiting behind a queue that never moves: the server is stuck.
    this.#ourInterrupt = 'stall';
    await this.#withdraw();
    this.#fail(
      { kind: 'timeout', phase: 'stall', ms: this.#s.stallTimeoutMs, detail: where === 'pending' ? 'accepted but never started' : 'no progress while running' },
      { submitted: true },
    );
  }

  #armPoll(): void {
    const s = this.#s;
    const interval = s.pollIntervalMs ?? 2_000;
    const tick = () => {
      // While the socket is down, poll at the interval; while it is up, a slower safety poll
      // covers the upstream bug where a reconnected socket is silently unregistered.
      const every = s.feed.connected ? interval * 5 : interval;
      const due = s.clock.now() - this.#lastPoll >= every;
      if (due && this.#submitted) {
        this.#lastPoll = s.clock.now();
        void this.#reconcile('poll');
      }
      this.#timer(interval, tick);
    };
    this.#lastPoll = s.clock.now();
    this.#timer(interval, tick);
  }

  #lastPoll = 0;
  #queueCheckArmed = false;
  /** Lookups so far that found no history after a success was announced. */
  #historyWaits = 0;

  // ---- cancel / shutdown ---------------------------------------------------------------------

  async #onAbort(): Promise<void> {
    if (this.#finished) return;
    if (abortKindOf(this.#s.signal) === 'shutdown') {
      this.#finish({ kind: 'detached' });
      return;
    }
    this.#ourInterrupt = 'cancel';
    await this.#withdraw();
    // The interrupt lands at the next node boundary; wait for it briefly, then confirm by polling.
    this.#timer(5_000, () => this.#finish({ kind: 'cancelled' }));
    const where = await this.#locate();
    if (where === 'lost' || where === 'pending' || where === 'unreachable') this.#finish({ kind: 'cancelled' });
  }
}
