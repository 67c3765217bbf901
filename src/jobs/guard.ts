/**
 * The guard: accepts jobs, persists every transition before acting on it, dispatches them, runs
 * their attempts through the pool, classifies failures and walks the recovery policy until each
 * job is terminal. `createGuard()` is the library's front door; the HTTP service and the CLI use it.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { ApiWorkflow, NodeOutput } from '../comfy/types.js';
import { assertApiWorkflow } from '../comfy/workflow.js';
import { classify, classifyMissingCapability, ComfyGuardError, compileRules, type Classification, type MissingCapability } from '../errors/index.js';
import { ERROR_REGISTRY, isErrorCode } from '../errors/codes.js';
import { ServerPool } from '../pool/index.js';
import { InProcessDispatcher } from '../queue/in-process.js';
import type { Dispatcher } from '../queue/contract.js';
import { applyParams, compilePolicy, decideNext, scaleQuality, type PoolView, type RecoveryDecision, type RecoveryPolicy } from '../recovery/index.js';
import { compileRetryPolicy, type RetryPolicy } from '../resilience/index.js';
import type { JobQuery, JobPage, JobStore } from '../store/contract.js';
import { isStoreError } from '../store/errors.js';
import { openStore } from '../store/open.js';
import { sleep } from '../util/clock.js';
import { abortReason, runAttempt, type AttemptResult } from './attempt-runner.js';
import { FeedRegistry } from './feed-registry.js';
import { EventBus, type AttemptOutcome, type GuardEvent, type JobEvent } from './events.js';
import type { AnalyticsEvent, Guard, GuardStats, ServerHealthView, SubmitResult } from './guard-api.js';
import { validateJobOptions, JobInputError } from './job-input.js';
import { resolveGuardOptions, type GuardOptions, type ResolvedGuardOptions } from './options.js';
import { ProgressThrottle } from './progress-throttle.js';
import { guardStatsFrom } from './stats.js';
import { canTransition } from './state-machine.js';
import {
  isTerminal,
  newJobRecord,
  type AttemptRecord,
  type InputChange,
  type JobErrorInfo,
  type JobOptions,
  type JobParams,
  type JobRecord,
  type JobStatus,
  type OutputRef,
  type RecoveryStep,
  type StrategyName,
} from './types.js';

/** Error codes of the guard's own API (bad input, unknown job, refused action). */
export type GuardErrorCode = 'JOB_NOT_FOUND' | 'INVALID_JOB' | 'RETRY_REFUSED' | 'INVALID_STATE' | 'GUARD_CLOSED';

/** An error of the guard's API: a stable code, and the field at fault when there is one. */
export class GuardError extends Error {
  readonly code: GuardErrorCode;
  readonly field: string | undefined;
  constructor(code: GuardErrorCode, message: string, opts: { field?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'GuardError';
    this.code = code;
    this.field = opts.field;
  }
}

/** Creates a guard and starts it: store ready, servers probed, unfinished jobs recovered. */
export async function createGuard(options: GuardOptions): Promise<Guard> {
  const guard = new GuardImpl(resolveGuardOptions(options));
  try {
    await guard.start();
  } catch (err) {
    await guard.close().catch(() => undefined);
    throw err;
  }
  return guard;
}

const RETRY_BACKOFF_FLOOR_MS = 250;
/** Strategies whose repetition is the point (time passes, the server may come back); the budget bounds them. */
const REPEATABLE: ReadonlySet<StrategyName> = new Set(['retry', 'resume']);
/** Bounds on what one recovery step adds to the job record. */
const MAX_STEP_MESSAGE = 500;
const MAX_STEP_CHANGES = 50;
/** How often `wait()`/`progress()` re-read the store when no event arrives. */
const STORE_POLL_MS = 2_000;

class GuardImpl implements Guard {
  readonly #o: ResolvedGuardOptions;
  readonly #pool: ServerPool;
  readonly #dispatcher: Dispatcher;
  readonly #feeds: FeedRegistry;
  readonly #retry: RetryPolicy;
  readonly #policy: RecoveryPolicy;
  readonly #rules: ReturnType<typeof compileRules> | undefined;
  #store!: JobStore;
  readonly #ownsStore: boolean;
  readonly #bus: EventBus;
  readonly #running = new Map<string, AbortController>();
  readonly #cancelRequested = new Set<string>();
  readonly #throttle: ProgressThrottle;
  #cleanupTimer: ReturnType<ResolvedGuardOptions['clock']['setTimeout']> | null = null;
  #closing: Promise<void> | null = null;
  #started = false;

  constructor(o: ResolvedGuardOptions) {
    this.#o = o;
    this.#pool = new ServerPool({
      servers: o.servers.map((s) => ({ ...s })),
      clock: o.clock,
      healthTtlMs: o.healthTtlMs,
      healthTimeoutMs: o.healthTimeoutMs,
      requestTimeoutMs: o.requestTimeoutMs,
      breaker: o.breaker,
    });
    this.#dispatcher = o.dispatcher ?? new InProcessDispatcher({ concurrency: o.concurrency });
    this.#feeds = new FeedRegistry(o.servers, o.clock, o.logger);
    this.#retry = compileRetryPolicy({ maxRetries: o.maxRetries, ...o.retry });
    this.#policy = compilePolicy(o.recovery);
    this.#rules = o.classifierRules === undefined ? undefined : compileRules(o.classifierRules);
    this.#ownsStore = typeof o.store === 'string';
    this.#throttle = new ProgressThrottle(o.clock, o.progressThrottleMs, (e) => this.#emit(e));
    this.#bus = new EventBus((err, e) => o.logger.warn({ err, event: e.type }, 'event listener threw'));
    this.#pool.onEvent((change) => this.#emit({ type: 'pool', change, at: o.clock.now() }));
  }

  async start(): Promise<void> {
    this.#store = typeof this.#o.store === 'string' ? await openStore(this.#o.store) : this.#o.store;
    await this.#store.init();
    await this.#pool.start();
    // Every server's socket opens now: the first job must not wait for (or miss events during) an open.
    this.#feeds.openAll();
    await this.#recoverUnfinished();
    await this.#dispatcher.start((id, signal) => this.#runJob(id, signal));
    this.#armCleanup();
    this.#started = true;
  }

  // ---- public API ------------------------------------------------------------------------------

  async submit(workflow: ApiWorkflow, options: JobOptions & { params?: JobParams } = {}): Promise<SubmitResult> {
    this.#assertOpen();
    try {
      assertApiWorkflow(workflow);
    } catch (err) {
      throw new GuardError('INVALID_JOB', err instanceof Error ? err.message : String(err), { field: 'workflow', cause: err });
    }
    const { params = {}, ...jobOptions } = options;
    let opts: JobOptions;
    try {
      opts = validateJobOptions(jobOptions);
      if (opts.recovery) compilePolicy(this.#o.recovery, opts.recovery);
      // Apply the params once now, so a param that fits no node is refused at submit time.
      applyParams(workflow, params);
    } catch (err) {
      if (err instanceof JobInputError) throw new GuardError('INVALID_JOB', err.message, { field: err.field, cause: err });
      const e = err as { message?: string; param?: string };
      throw new GuardError('INVALID_JOB', e.message ?? String(err), { field: e.param ? `params.${e.param}` : 'options', cause: err });
    }
    const now = this.#o.clock.now();
    const job = newJobRecord({ id: randomUUID(), workflow: structuredClone(workflow), params: structuredClone(params), options: opts, now });
    const { created, job: stored } = await this.#store.createJob(job);
    if (created) {
      this.#emitState(stored, null);
      this.#analytics({ name: 'job_submitted', jobId: stored.id, priority: stored.priority });
      await this.#dispatcher.enqueue(stored.id, stored.priority);
    }
    return { id: stored.id, status: stored.status, created };
  }

  get(id: string): Promise<JobRecord | null> {
    return this.#store.getJob(id);
  }

  list(filter: JobQuery = {}): Promise<JobPage> {
    return this.#store.query(filter);
  }

  async wait(id: string, opts: { signal?: AbortSignal } = {}): Promise<JobRecord> {
    for await (const e of this.progress(id, opts)) {
      if (e.type === 'state' && isTerminal(e.to)) return e.job;
    }
    const job = await this.#store.getJob(id);
    if (!job) throw new GuardError('JOB_NOT_FOUND', `no job with id ${id}`);
    return job;
  }

  async *progress(id: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<JobEvent> {
    const buffer: JobEvent[] = [];
    let wake: (() => void) | null = null;
    const unsubscribe = this.onEvent((e) => {
      if (e.type === 'pool' || e.jobId !== id) return;
      buffer.push(e);
      wake?.();
    });
    const onAbort = () => wake?.();
    opts.signal?.addEventListener('abort', onAbort);
    try {
      const job = await this.#store.getJob(id);
      if (!job) throw new GuardError('JOB_NOT_FOUND', `no job with id ${id}`);
      // The current state first, so a late subscriber knows where the job is.
      yield { type: 'state', jobId: id, from: null, to: job.status, at: this.#o.clock.now(), job };
      if (isTerminal(job.status)) return;
      let seen: JobStatus = job.status;
      for (;;) {
        opts.signal?.throwIfAborted();
        const e = buffer.shift();
        if (!e) {
          // Events come from this process only; with a shared queue another process may run the
          // job, so the store is polled too and a change it shows becomes a state event.
          const timer = this.#o.clock.setTimeout(() => wake?.(), STORE_POLL_MS);
          await new Promise<void>((r) => (wake = r));
          wake = null;
          this.#o.clock.clearTimeout(timer);
          if (buffer.length === 0) {
            const fresh = await this.#store.getJob(id);
            if (fresh && fresh.status !== seen) buffer.push({ type: 'state', jobId: id, from: seen, to: fresh.status, at: this.#o.clock.now(), job: fresh });
          }
          continue;
        }
        if (e.type === 'state') seen = e.to;
        yield e;
        if (e.type === 'state' && isTerminal(e.to)) return;
      }
    } finally {
      unsubscribe();
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  async retry(id: string, opts: { force?: boolean } = {}): Promise<JobRecord> {
    this.#assertOpen();
    const job = await this.#mustGet(id);
    if (job.status !== 'failed' && job.status !== 'timed_out' && job.status !== 'cancelled') {
      throw new GuardError('INVALID_STATE', `job ${id} is ${job.status}; only failed, timed_out or cancelled jobs can be retried`);
    }
    if (job.error && !job.error.retryable && !opts.force) {
      throw new GuardError(
        'RETRY_REFUSED',
        `job ${id} failed with ${job.error.code}, which retrying will not fix; pass force to retry anyway`,
      );
    }
    const updated = await this.#transition(job, 'queued', { error: null, endedAt: null, progress: 0 });
    if (!updated) throw new GuardError('INVALID_STATE', `job ${id} changed state while retrying; try again`);
    this.#manualRetry.add(id);
    await this.#dispatcher.enqueue(id, updated.priority);
    return updated;
  }

  readonly #manualRetry = new Set<string>();

  async cancel(id: string): Promise<JobRecord> {
    const job = await this.#mustGet(id);
    if (isTerminal(job.status)) return job;
    this.#cancelRequested.add(id);
    const running = this.#running.get(id);
    if (running) {
      running.abort(abortReason('cancel'));
      return this.wait(id);
    }
    // Not running here: take it out of the queue, and withdraw its prompt if another process ran it.
    await this.#dispatcher.remove(id);
    if (job.promptId && job.server && this.#pool.names().includes(job.server)) {
      const client = this.#pool.client(job.server);
      await client.deleteFromQueue([job.promptId], { timeoutMs: 5_000 }).catch(() => undefined);
      await client.interrupt(job.promptId, { timeoutMs: 5_000 }).catch(() => undefined);
    }
    const updated = await this.#transition(job, 'cancelled', { endedAt: this.#o.clock.now() });
    if (updated) {
      this.#analytics({ name: 'job_cancelled', jobId: id });
      return updated;
    }
    // Someone else moved it meanwhile: report what it is now.
    return this.#mustGet(id);
  }

  async emergencyStop(): Promise<{ cancelled: number; servers: number }> {
    this.pause();
    const { jobs } = await this.#store.listNonTerminal();
    const results = await Promise.allSettled(jobs.map((j) => this.cancel(j.id)));
    let servers = 0;
    await Promise.all(
      this.#pool.names().map(async (name) => {
        const client = this.#pool.client(name);
        const ok = await Promise.allSettled([client.clearQueue({ timeoutMs: 5_000 }), client.interrupt(undefined, { timeoutMs: 5_000 })]);
        if (ok.every((r) => r.status === 'fulfilled')) servers++;
      }),
    );
    return { cancelled: results.filter((r) => r.status === 'fulfilled' && r.value.status === 'cancelled').length, servers };
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#o.logger.info({}, 'paused: queued jobs wait until resume()');
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    for (const w of [...this.#resumeWaiters]) w();
    this.#o.logger.info({}, 'resumed');
  }

  isPaused(): boolean {
    return this.#paused;
  }

  drain(server: string, on = true): void {
    if (!this.#pool.names().includes(server)) throw new GuardError('JOB_NOT_FOUND', `no server named ${server}`, { field: 'server' });
    if (on) this.#drained.add(server);
    else this.#drained.delete(server);
  }

  #paused = false;
  readonly #resumeWaiters = new Set<() => void>();
  readonly #drained = new Set<string>();

  /** Resolves when the guard is not paused (at once if it is not), or when `signal` aborts. */
  #untilResumed(signal: AbortSignal): Promise<void> {
    if (!this.#paused || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#resumeWaiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#resumeWaiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  async stats(): Promise<GuardStats> {
    return guardStatsFrom(await this.#store.stats(), this.#pool.degradation().level);
  }

  async servers(): Promise<ServerHealthView[]> {
    return this.#pool.state().map((s) => ({
      name: s.name,
      url: s.url,
      healthy: s.healthy,
      latencyMs: s.health?.latencyMs ?? null,
      vramTotal: s.health?.vramTotal ?? null,
      vramFree: s.health?.vramFree ?? null,
      queueRemaining: s.health?.queueRemaining ?? null,
      breaker: s.breaker,
      lastError: s.health?.error ?? null,
      checkedAt: s.health?.checkedAt ?? null,
      tags: s.tags,
      drained: this.#drained.has(s.name),
    }));
  }

  degradation(): GuardStats['degradation'] {
    return this.#pool.degradation().level;
  }

  cleanup(olderThanHours: number): Promise<number> {
    if (!(olderThanHours >= 0)) throw new GuardError('INVALID_JOB', '`olderThanHours` must be a number >= 0', { field: 'olderThanHours' });
    return this.#store.deleteTerminalBefore(this.#o.clock.now() - olderThanHours * 3_600_000);
  }

  onEvent(listener: (e: GuardEvent) => void): () => void {
    return this.#bus.on(listener);
  }

  fetchOutput(server: string, file: { filename: string; subfolder?: string; type?: string }): Promise<{ contentType: string; data: Uint8Array }> {
    if (!this.#pool.names().includes(server)) {
      return Promise.reject(new GuardError('JOB_NOT_FOUND', `no server named ${server}`, { field: 'server' }));
    }
    return this.#pool.client(server).view(file);
  }

  /** The pool, for the HTTP service's health routes and the CLI's doctor. */
  get pool(): ServerPool {
    return this.#pool;
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      if (this.#cleanupTimer) this.#o.clock.clearTimeout(this.#cleanupTimer);
      for (const t of this.#storeWaits) this.#o.clock.clearTimeout(t);
      // Detach running attempts: their prompts keep running and a restart reattaches to them.
      for (const ac of this.#running.values()) ac.abort(abortReason('shutdown'));
      const steps: Array<() => Promise<unknown>> = [
        () => this.#dispatcher.close(),
        async () => this.#throttle.close(),
        () => this.#feeds.close(),
        () => this.#pool.close(),
        async () => {
          if (this.#ownsStore && this.#store) await this.#store.close();
        },
      ];
      for (const step of steps) {
        try {
          await step();
        } catch (err) {
          this.#o.logger.warn({ err }, 'error while closing');
        }
      }
      this.#bus.clear();
    })();
    return this.#closing;
  }

  // ---- the job loop ---------------------------------------------------------------------------

  async #runJob(id: string, dispatcherSignal: AbortSignal): Promise<void> {
    const ac = new AbortController();
    const onShutdown = () => ac.abort(abortReason('shutdown'));
    dispatcherSignal.addEventListener('abort', onShutdown, { once: true });
    this.#running.set(id, ac);
    try {
      await this.#drive(id, ac.signal);
    } catch (err) {
      if (isStoreError(err, 'STORE_UNAVAILABLE') && !this.#closing) {
        // The store is away; the job's record is intact. Pick the job up again once the store
        // answers: restart-style recovery then reattaches to its prompt or reads its outcome.
        this.#o.logger.warn({ err, jobId: id }, 'store unavailable; the job resumes when it is back');
        this.#resumeWhenStoreIsBack(id);
        return;
      }
      this.#o.logger.error({ err, jobId: id }, 'job loop failed');
      await this.#failInternal(id, err).catch(() => undefined);
    } finally {
      this.#running.delete(id);
      this.#cancelRequested.delete(id);
      dispatcherSignal.removeEventListener('abort', onShutdown);
    }
  }

  async #drive(id: string, signal: AbortSignal): Promise<void> {
    let job = await this.#store.getJob(id);
    if (!job || isTerminal(job.status)) return;
    if (this.#cancelRequested.has(id)) {
      await this.#finishCancelled(job);
      return;
    }
    const manual = this.#manualRetry.delete(id);
    const now = () => this.#o.clock.now();
    const deadline = job.createdAt + (job.options.timeoutMs ?? this.#o.jobTimeoutMs);

    let next: PlannedAttempt;
    if (job.status === 'queued') {
      await this.#untilResumed(signal);
      if (signal.aborted) {
        if (this.#cancelRequested.has(id)) await this.#finishCancelled(job);
        return;
      }
      job = (await this.#store.getJob(id)) ?? job;
      if (isTerminal(job.status) || job.status !== 'queued') return;
      const started = await this.#transition(job, 'running', { startedAt: job.startedAt ?? now() });
      if (!started) return;
      job = started;
      this.#analytics({ name: 'job_started', jobId: id });
      next = this.#firstAttempt(job, manual);
    } else {
      // Orphaned by a restart (running or recovering): pick up where the record says we were.
      const resumed = await this.#resumePlan(job);
      if (!resumed) return;
      ({ job, next } = resumed);
    }

    for (;;) {
      if (signal.aborted) {
        if (this.#cancelRequested.has(id)) await this.#finishCancelled(job);
        return;
      }
      if (now() >= deadline) {
        await this.#finishTimedOut(job, 'the job ran out of its total time budget');
        return;
      }
      const attemptResult = await this.#runOne(job, next, signal, deadline);
      job = attemptResult.job;
      if (attemptResult.done) return;
      const failure = attemptResult.failure!;
      const decided = await this.#decide(job, failure);
      job = decided.job;
      if (!decided.next) return;
      next = decided.next;
      if (decided.delayMs > 0) {
        try {
          await sleep(this.#o.clock, Math.min(decided.delayMs, Math.max(0, deadline - now())), signal);
        } catch {
          if (this.#cancelRequested.has(id)) await this.#finishCancelled(job);
          return;
        }
      }
      const back = await this.#transition(job, 'running', { retryCount: job.retryCount + 1 });
      if (!back) return;
      job = back;
    }
  }

  #resumeWhenStoreIsBack(id: string, attempt = 1): void {
    const delay = Math.min(10_000, 250 * 2 ** Math.min(attempt, 6));
    const timer = this.#o.clock.setTimeout(() => {
      this.#storeWaits.delete(timer);
      if (this.#closing) return;
      this.#store
        .ping()
        .then(() => this.#dispatcher.enqueue(id, Number.MAX_SAFE_INTEGER))
        .catch(() => this.#resumeWhenStoreIsBack(id, attempt + 1));
    }, delay);
    this.#storeWaits.add(timer);
  }

  readonly #storeWaits = new Set<ReturnType<ResolvedGuardOptions['clock']['setTimeout']>>();

  /** The first attempt: the original workflow with the params applied (and degradation if allowed). */
  #firstAttempt(job: JobRecord, manual: boolean): PlannedAttempt {
    const { workflow, changes } = applyParams(job.workflow, job.params);
    const plan: PlannedAttempt = { workflow, changes, server: {}, manual };
    return plan;
  }

  async #resumePlan(job: JobRecord): Promise<{ job: JobRecord; next: PlannedAttempt } | null> {
    const last = job.attempts.at(-1);
    if (!last) {
      // Crashed between "running" and the first attempt record: start fresh.
      return { job, next: this.#firstAttempt(job, false) };
    }
    if (job.status === 'running' && (last.status === 'pending' || last.status === 'submitted' || last.status === 'running')) {
      return { job, next: { workflow: last.workflow, changes: last.changes ?? [], server: { prefer: last.server }, reattach: last, ...(last.strategy ? { strategy: last.strategy } : {}) } };
    }
    // Recovering (or the last attempt already failed): redo the pending recovery step.
    const step = job.recoveryHistory.at(-1);
    if (step && step.success === null && step.attempt === last.number && last.code && isErrorCode(last.code)) {
      // The policy is deterministic and skips a step already recorded for this attempt, so asking
      // it again rebuilds exactly the attempt we had decided on before the crash.
      const info = ERROR_REGISTRY[last.code];
      const decision = decideNext({
        code: last.code,
        classification: { retryable: info.retryable },
        job: { ...job, recoveryHistory: job.recoveryHistory.slice(0, -1) },
        failedAttempt: last,
        pool: this.#poolView(),
        policy: job.options.recovery ? compilePolicy(this.#o.recovery, job.options.recovery) : this.#policy,
        maxRetries: (job.options.maxRetries ?? this.#o.maxRetries) + baseAttemptIndex(job.attempts),
      });
      const back = job.status === 'recovering' ? await this.#transition(job, 'running', { retryCount: job.retryCount + 1 }) : job;
      if (!back) return null;
      if (decision.action === 'abort') {
        return { job: back, next: { workflow: last.workflow, changes: last.changes ?? [], server: {}, strategy: step.strategy } };
      }
      return {
        job: back,
        next: {
          workflow: decision.workflow,
          changes: decision.changes,
          strategy: decision.strategy,
          server: decision.server,
          ...(decision.freeMemoryFirst ? { freeMemoryFirst: true } : {}),
          ...(decision.partialTargets ? { partialTargets: decision.partialTargets } : {}),
        },
      };
    }
    if (job.status === 'recovering') {
      const back = await this.#transition(job, 'running', {});
      if (!back) return null;
      job = back;
    }
    return { job, next: { workflow: last.workflow, changes: last.changes ?? [], server: {}, strategy: 'retry' } };
  }

  async #runOne(
    job: JobRecord,
    plan: PlannedAttempt,
    signal: AbortSignal,
    deadline: number,
  ): Promise<{ job: JobRecord; done: boolean; failure?: FailedAttempt }> {
    const now = () => this.#o.clock.now();
    let attempt: AttemptRecord;
    let server: string;
    if (plan.reattach) {
      attempt = plan.reattach;
      server = attempt.server;
      if (!this.#pool.names().includes(server)) {
        return this.#failAttemptEarly(job, attempt, { kind: 'transport', code: 'ECONNREFUSED', message: 'server no longer configured' });
      }
    } else {
      let workflow = plan.workflow;
      let changes = plan.changes;
      let degraded = job.degraded;
      const level = this.#pool.degradation();
      if (job.options.allowDegradation && level.factor < 1 && !plan.strategy) {
        const scaled = scaleQuality(workflow, level.factor);
        workflow = scaled.workflow;
        changes = [...changes, ...scaled.changes];
        degraded = { level: level.level, factor: level.factor };
      }
      const picked = await this.#pickServer(job, workflow, plan, signal, deadline);
      if (!('server' in picked)) return picked;
      server = picked.server;
      attempt = {
        number: job.attempts.length + 1,
        server,
        promptId: randomUUID(),
        status: 'pending',
        workflow,
        ...(plan.strategy ? { strategy: plan.strategy } : {}),
        ...(changes.length ? { changes } : {}),
        ...(plan.partialTargets ? { partialTargets: plan.partialTargets } : {}),
        ...(plan.manual ? { manual: true } : {}),
        startedAt: now(),
      };
      if (degraded !== job.degraded) {
        await this.#store.patchJob(job.id, { degraded });
        job = { ...job, degraded };
      }
      // The prompt id is persisted before anything is sent: after a crash we can always look it up.
      await this.#store.recordAttempt(job.id, attempt);
      job = { ...job, attempts: [...job.attempts, attempt], server, promptId: attempt.promptId };
      this.#updateRecoveryStep(job, { server, promptId: attempt.promptId });
      if (this.#o.prepareAttempt) {
        try {
          await this.#o.prepareAttempt({ jobId: job.id, attempt: attempt.number, server, client: this.#pool.client(server), workflow, signal });
        } catch (err) {
          return this.#failAttemptEarly(job, attempt, { kind: 'thrown', error: err });
        }
      }
      if (plan.freeMemoryFirst) {
        await this.#pool
          .client(server)
          .free({ unloadModels: true, freeMemory: true }, { timeoutMs: this.#o.requestTimeoutMs })
          .catch((err: unknown) => this.#o.logger.warn({ err, server }, 'free memory failed'));
      }
    }

    const attemptStartedAt = now();
    this.#emit({
      type: 'attempt_started',
      jobId: job.id,
      attempt: attempt.number,
      server,
      promptId: attempt.promptId,
      strategy: attempt.strategy ?? null,
      reattached: Boolean(plan.reattach),
      at: attemptStartedAt,
    });
    const settled = (outcome: AttemptOutcome, code: string | null = null, message: string | null = null) =>
      this.#emit({
        type: 'attempt_settled',
        jobId: job.id,
        attempt: attempt.number,
        server,
        promptId: attempt.promptId,
        outcome,
        code,
        message,
        durationMs: Math.max(0, now() - attemptStartedAt),
        at: now(),
      });
    const release = this.#pool.acquire(server);
    const feed = this.#feeds.get(server);
    // Status writes of a running attempt are chained, and the final write waits for them, so a
    // late "submitted" can never overwrite "failed".
    let statusWrites: Promise<void> = Promise.resolve();
    // Events can outrun the POST response: once the attempt has ended, late callbacks are ignored.
    let ended = false;
    let result: AttemptResult;
    try {
      result = await runAttempt({
        server,
        client: this.#pool.client(server),
        feed,
        promptId: attempt.promptId,
        workflow: attempt.workflow,
        ...(attempt.partialTargets ? { partialTargets: attempt.partialTargets } : {}),
        reattach: Boolean(plan.reattach),
        clock: this.#o.clock,
        generationTimeoutMs: Math.min(job.options.generationTimeoutMs ?? this.#o.generationTimeoutMs, Math.max(1, deadline - now())),
        stallTimeoutMs: job.options.stallTimeoutMs ?? this.#o.stallTimeoutMs,
        pollIntervalMs: this.#o.pollIntervalMs,
        unreachableGraceMs: this.#o.unreachableGraceMs,
        signal,
        extraData: { comfyguard_job: job.id },
        onSubmitted: () => {
          if (!ended) statusWrites = statusWrites.then(() => this.#setAttemptStatus(job.id, attempt, 'submitted'));
        },
        onStarted: () => {
          if (!ended) statusWrites = statusWrites.then(() => this.#setAttemptStatus(job.id, attempt, 'running'));
        },
        onProgress: (pct, node) => this.#onProgress(job, attempt, pct, node),
        onComfy: (message) => {
          if (!ended) this.#emit({ type: 'comfy', jobId: job.id, attempt: attempt.number, server, promptId: attempt.promptId, message, at: now() });
        },
        onPreview: (frame) => {
          if (!ended) this.#emit({ type: 'preview', jobId: job.id, attempt: attempt.number, server, promptId: attempt.promptId, frame, at: now() });
        },
      });
    } finally {
      ended = true;
      release();
    }
    await statusWrites;

    switch (result.kind) {
      case 'completed': {
        settled('completed');
        this.#pool.recordSuccess(server);
        const ended = { ...attempt, status: 'completed' as const, endedAt: now() };
        await this.#store.recordAttempt(job.id, ended);
        const outputs = this.#outputRefs(server, result.outputs);
        const steps = this.#closeRecoveryStep(job, true);
        const done = await this.#transition(job, 'completed', {
          progress: 100,
          outputs,
          endedAt: now(),
          attempts: replaceAttempt(job.attempts, ended),
          ...(steps ? { recoveryHistory: steps } : {}),
          checkpoint: { progress: 100, completedOutputs: result.outputs, cacheServer: server, promptId: attempt.promptId, updatedAt: now() },
        });
        const closedStep = steps?.at(-1);
        if (closedStep) this.#emit({ type: 'recovery_closed', jobId: job.id, step: closedStep, at: now() });
        if (done) {
          if (done.attempts.length > 1) {
            this.#analytics({ name: 'comfyui_retry_succeeded', promptId: attempt.promptId, attempt: attempt.number, totalRetries: done.retryCount });
          }
          this.#analytics({ name: 'job_completed', jobId: job.id, attempts: done.attempts.length });
        }
        return { job: done ?? job, done: true };
      }
      case 'cancelled': {
        settled('cancelled');
        const ended = { ...attempt, status: 'cancelled' as const, endedAt: now() };
        await this.#store.recordAttempt(job.id, ended);
        await this.#finishCancelled({ ...job, attempts: replaceAttempt(job.attempts, ended) });
        return { job, done: true };
      }
      case 'detached':
        settled('detached');
        return { job, done: true };
      case 'failed': {
        const failed = await this.#failAttempt(job, attempt, result);
        const a = failed.failure.attempt;
        settled(a.status === 'lost' ? 'lost' : a.status === 'interrupted' ? 'interrupted' : 'failed', a.code ?? null, a.message ?? null);
        if (plan.reattach && this.#afterRestart.delete(job.id)) failed.failure.afterRestart = true;
        return failed;
      }
    }
  }

  async #failAttemptEarly(job: JobRecord, attempt: AttemptRecord, evidence: unknown) {
    return this.#failAttempt(job, attempt, { kind: 'failed', evidence, submitted: false, completedOutputs: {} });
  }

  async #failAttempt(
    job: JobRecord,
    attempt: AttemptRecord,
    result: Extract<AttemptResult, { kind: 'failed' }>,
  ): Promise<{ job: JobRecord; done: boolean; failure: FailedAttempt }> {
    const c = this.#classify(result.evidence, attempt.server, attempt.promptId);
    const ended: AttemptRecord = {
      ...attempt,
      status: result.lost ? 'lost' : c.code === 'COMFYUI_INTERRUPTED' ? 'interrupted' : 'failed',
      code: c.code,
      message: c.message,
      endedAt: this.#o.clock.now(),
    };
    await this.#store.recordAttempt(job.id, ended);
    this.#pool.recordFailure(attempt.server, c);
    if (c.code === 'COMFYUI_GPU_FAULT' || c.code === 'COMFYUI_DISK_FULL') {
      this.#pool.markUnhealthy(attempt.server, ERROR_REGISTRY[c.code].message);
    }
    let next: JobRecord = { ...job, attempts: replaceAttempt(job.attempts, ended) };
    const steps = this.#closeRecoveryStep(next, false);
    if (steps) {
      await this.#store.appendRecoveryStep(job.id, steps.at(-1)!, { replaceLast: true });
      next = { ...next, recoveryHistory: steps };
      this.#emit({ type: 'recovery_closed', jobId: job.id, step: steps.at(-1)!, at: this.#o.clock.now() });
    }
    if (Object.keys(result.completedOutputs).length > 0) {
      const checkpoint = {
        progress: next.progress,
        completedOutputs: { ...(next.checkpoint?.completedOutputs ?? {}), ...result.completedOutputs },
        cacheServer: attempt.server,
        promptId: attempt.promptId,
        updatedAt: this.#o.clock.now(),
      };
      await this.#store.updateProgress(job.id, next.progress, checkpoint);
      next = { ...next, checkpoint };
    }
    return { job: next, done: false, failure: { attempt: ended, classification: c, lost: Boolean(result.lost) } };
  }

  /** Chooses the server, waiting (bounded) while every capable server is unhealthy or busy. */
  async #pickServer(
    job: JobRecord,
    workflow: ApiWorkflow,
    plan: PlannedAttempt,
    signal: AbortSignal,
    deadline: number,
  ): Promise<{ server: string } | { job: JobRecord; done: boolean; failure?: FailedAttempt }> {
    const exclude = new Set(plan.server.exclude ?? []);
    if (plan.server.require) for (const n of this.#pool.names()) if (!plan.server.require.includes(n)) exclude.add(n);
    for (const n of this.#blocked.get(job.id) ?? []) exclude.add(n);
    for (const n of this.#drained) exclude.add(n);
    let waits = 0;
    for (;;) {
      const sel = await this.#pool.select({
        workflow,
        exclude: [...exclude],
        ...(plan.server.prefer ? { prefer: plan.server.prefer } : {}),
        ...(job.options.serverTags ? { tags: job.options.serverTags } : {}),
        ...(plan.server.moreVramThan ? { preferMoreVramThan: plan.server.moreVramThan } : {}),
      });
      if (sel) return { server: sel.name };
      const capable = this.#pool.capable(workflow);
      const usable = capable.servers.filter((s) => !exclude.has(s));
      if (usable.length === 0) {
        // No server can run it at all: that is what ComfyUI itself would say, so classify that.
        const c = classifyMissingCapability(workflow, missingEverywhere(capable.missing));
        if (c) {
          const pseudo: AttemptRecord = {
            number: job.attempts.length + 1,
            server: '',
            promptId: '',
            status: 'failed',
            workflow,
            startedAt: this.#o.clock.now(),
          };
          return { job, done: false, failure: { attempt: pseudo, classification: c, lost: false } };
        }
      }
      const now = this.#o.clock.now();
      if (now >= deadline) {
        await this.#finishTimedOut(job, 'no healthy ComfyUI server became available in time');
        return { job, done: true };
      }
      waits++;
      const delay = Math.max(RETRY_BACKOFF_FLOOR_MS, this.#retry.delayMs(Math.min(waits, 6)));
      await sleep(this.#o.clock, Math.min(delay, deadline - now), signal).catch(() => undefined);
      if (signal.aborted) {
        if (this.#cancelRequested.has(job.id)) await this.#finishCancelled(job);
        return { job, done: true };
      }
    }
  }

  readonly #blocked = new Map<string, Set<string>>();

  /** Classification, then the recovery decision; records the step and moves to recovering. */
  async #decide(job: JobRecord, failure: FailedAttempt): Promise<{ job: JobRecord; next: PlannedAttempt | null; delayMs: number }> {
    const c = failure.classification;
    const failedServer = failure.attempt.server;
    if (c.code === 'COMFYUI_DEPENDENCY_ERROR' || c.code === 'COMFYUI_MISSING_NODE' || c.code === 'COMFYUI_GPU_FAULT' || c.code === 'COMFYUI_DISK_FULL') {
      const set = this.#blocked.get(job.id) ?? new Set<string>();
      set.add(failedServer);
      this.#blocked.set(job.id, set);
    }
    // An expired job whose prompt vanished while we were down is not resubmitted.
    if (failure.lost && failure.afterRestart && this.#o.clock.now() - job.createdAt > this.#o.maxRecoveryAgeMs) {
      await this.#finishFailed(job, {
        code: 'COMFYUI_TIMEOUT',
        category: 'transient',
        message: 'The job expired while comfyguard was down: the server no longer knows its prompt and the job is older than the maximum recovery age.',
        hint: 'Submit it again; raise maxRecoveryAgeMs to resubmit older jobs automatically after a restart.',
        retryable: true,
        server: failedServer,
      }, failure);
      return { job, next: null, delayMs: 0 };
    }
    const code = isErrorCode(c.code) ? c.code : 'INTERNAL_ERROR';
    const base = baseAttemptIndex(job.attempts);
    const maxRetries = (job.options.maxRetries ?? this.#o.maxRetries) + base;
    let decision: RecoveryDecision;
    try {
      decision = decideNext({
        code,
        classification: c,
        job,
        failedAttempt: failure.attempt,
        pool: this.#poolView(),
        policy: job.options.recovery ? compilePolicy(this.#o.recovery, job.options.recovery) : this.#policy,
        maxRetries,
      });
    } catch (err) {
      this.#o.logger.error({ err, jobId: job.id }, 'recovery policy failed');
      decision = { action: 'abort', reason: 'the recovery policy failed' };
    }
    if (decision.action === 'abort') {
      const info = this.#errorInfo(c, failedServer || undefined);
      if (decision.reason && c.category !== 'permanent' && c.category !== 'fatal') info.hint = `${info.hint} (${decision.reason})`;
      await this.#finishFailed(job, info, failure);
      return { job, next: null, delayMs: 0 };
    }
    const fingerprint = this.#stepFingerprint(job, decision);
    if (!REPEATABLE.has(decision.strategy) && job.recoveryHistory.some((s) => s.fingerprint === fingerprint)) {
      // The same workflow on the same servers was already tried for this job: it cannot change anything.
      this.#o.logger.info({ jobId: job.id, strategy: decision.strategy }, 'recovery step would repeat an earlier one unchanged; failing');
      await this.#finishFailed(job, this.#errorInfo(c, failedServer || undefined), failure);
      return { job, next: null, delayMs: 0 };
    }
    const now = this.#o.clock.now();
    const step: RecoveryStep = {
      attempt: failure.attempt.number,
      code: c.code,
      strategy: decision.strategy,
      changes: decision.changes.slice(0, MAX_STEP_CHANGES),
      success: null,
      server: null,
      promptId: null,
      message: decision.message.length > MAX_STEP_MESSAGE ? `${decision.message.slice(0, MAX_STEP_MESSAGE - 3)}...` : decision.message,
      startedAt: now,
      endedAt: null,
      fingerprint,
    };
    // Outputs finished by a different workflow must not be skipped by a later resume.
    const workflowChanges = decision.changes.length > 0 || decision.strategy === 'fallback_workflow';
    const recovering = await this.#transition(job, 'recovering', {
      recoveryHistory: [...job.recoveryHistory, step],
      error: null,
      ...(workflowChanges && job.checkpoint ? { checkpoint: { ...job.checkpoint, completedOutputs: {} } } : {}),
    });
    if (!recovering) return { job, next: null, delayMs: 0 };
    this.#emit({ type: 'recovery', jobId: job.id, step, at: now });
    this.#analytics({ name: 'comfyui_retry_attempted', promptId: failure.attempt.promptId, attempt: failure.attempt.number + 1, errorType: c.code });
    const delayMs = decision.useBackoff ? this.#retry.delayMs(job.retryCount + 1, c.retryAfterMs !== undefined ? { retryAfterMs: c.retryAfterMs } : undefined) : 0;
    const exclude = [...(decision.server.exclude ?? [])];
    return {
      job: recovering,
      delayMs,
      next: {
        workflow: decision.workflow,
        changes: decision.changes,
        strategy: decision.strategy,
        server: { ...decision.server, exclude },
        ...(decision.freeMemoryFirst ? { freeMemoryFirst: true } : {}),
        ...(decision.partialTargets ? { partialTargets: decision.partialTargets } : {}),
      },
    };
  }

  /** Hash of what a step would run: the workflow and the servers it may go to. */
  #stepFingerprint(job: JobRecord, decision: Extract<RecoveryDecision, { action: 'attempt' }>): string {
    const blocked = this.#blocked.get(job.id) ?? new Set<string>();
    const exclude = new Set([...(decision.server.exclude ?? []), ...blocked]);
    const eligible = this.#pool
      .names()
      .filter((n) => !exclude.has(n) && (!decision.server.require || decision.server.require.includes(n)))
      .sort();
    return createHash('sha256')
      .update(decision.strategy)
      .update('\u0000')
      .update(JSON.stringify(decision.workflow))
      .update('\u0000')
      .update(eligible.join('\u0000'))
      .update(decision.freeMemoryFirst ? '\u0000free' : '')
      .digest('base64url')
      .slice(0, 22);
  }

  #poolView(): PoolView {
    return {
      servers: this.#pool.state().map((s) => ({
        name: s.name,
        healthy: s.healthy,
        breakerOpen: s.breaker === 'open' || s.breaker === 'isolated',
        vramTotal: s.health?.vramTotal ?? null,
        vramFree: s.health?.vramFree ?? null,
        models: this.#pool.modelMap(s.name),
        nodeTypes: this.#pool.nodeTypes(s.name),
        supportsPartialTargets: this.#pool.supports(s.name, 'partialTargets'),
      })),
    };
  }

  // ---- endings --------------------------------------------------------------------------------

  async #finishFailed(job: JobRecord, error: JobErrorInfo, failure: FailedAttempt): Promise<void> {
    const done = await this.#transition(job, 'failed', { error, endedAt: this.#o.clock.now() });
    if (!done) return;
    if (done.attempts.length > 1 || done.retryCount > 0) {
      this.#analytics({ name: 'comfyui_retry_exhausted', promptId: failure.attempt.promptId, totalRetries: done.retryCount, finalError: error.code });
    }
    this.#analytics({ name: 'job_failed', jobId: job.id, code: error.code });
  }

  async #finishTimedOut(job: JobRecord, why: string): Promise<void> {
    const info: JobErrorInfo = { ...this.#errorInfo(classify({ kind: 'timeout', phase: 'generation' }), job.server ?? undefined), message: `The job timed out: ${why}.` };
    const fresh = (await this.#store.getJob(job.id)) ?? job;
    const done = await this.#transition(fresh, 'timed_out', { error: info, endedAt: this.#o.clock.now() });
    if (done) this.#analytics({ name: 'job_timed_out', jobId: job.id });
  }

  async #finishCancelled(job: JobRecord): Promise<void> {
    const fresh = (await this.#store.getJob(job.id)) ?? job;
    if (isTerminal(fresh.status)) return;
    const done = await this.#transition(fresh, 'cancelled', { endedAt: this.#o.clock.now() });
    if (done) this.#analytics({ name: 'job_cancelled', jobId: job.id });
  }

  async #failInternal(id: string, err: unknown): Promise<void> {
    const job = await this.#store.getJob(id);
    if (!job || isTerminal(job.status)) return;
    const c = classify({ kind: 'thrown', error: err });
    const info = this.#errorInfo({ ...c, code: 'INTERNAL_ERROR', category: 'permanent', retryable: false, message: ERROR_REGISTRY.INTERNAL_ERROR.message, hint: ERROR_REGISTRY.INTERNAL_ERROR.hint }, job.server ?? undefined);
    await this.#transition(job, 'failed', { error: info, endedAt: this.#o.clock.now() });
  }

  // ---- helpers --------------------------------------------------------------------------------

  #classify(evidence: unknown, server: string | undefined, promptId: string | undefined): Classification {
    return classify(evidence, {
      ...(this.#rules ? { rules: this.#rules } : {}),
      context: { ...(server ? { server } : {}), ...(promptId ? { promptId } : {}) },
    });
  }

  #errorInfo(c: Classification, server: string | undefined): JobErrorInfo {
    const e = ComfyGuardError.fromClassification(c, server ? { server } : {});
    const json = e.toJSON();
    return {
      code: json.code,
      // The classification's verdict: a node type no server has is permanent for this pool.
      category: c.category,
      message: json.message,
      hint: json.hint,
      retryable: json.retryable,
      ...(json.nodeId ? { nodeId: json.nodeId } : {}),
      ...(json.nodeType ? { nodeType: json.nodeType } : {}),
      ...(server ? { server } : {}),
    };
  }

  #outputRefs(server: string, outputs: Record<string, NodeOutput>): OutputRef[] {
    const refs: OutputRef[] = [];
    for (const [node, out] of Object.entries(outputs)) {
      for (const value of Object.values(out ?? {})) {
        if (!Array.isArray(value)) continue;
        for (const f of value) {
          if (!f || typeof f !== 'object' || typeof (f as { filename?: unknown }).filename !== 'string') continue;
          const file = f as { filename: string; subfolder?: string; type?: string };
          const ref = { filename: file.filename, subfolder: file.subfolder ?? '', type: file.type ?? 'output' };
          refs.push({ node, ...ref, server, url: this.#o.outputUrl(server, ref) });
        }
      }
    }
    return refs;
  }

  #closeRecoveryStep(job: JobRecord, success: boolean): RecoveryStep[] | null {
    const last = job.recoveryHistory.at(-1);
    if (!last || last.success !== null) return null;
    const closed: RecoveryStep = { ...last, success, endedAt: this.#o.clock.now() };
    return [...job.recoveryHistory.slice(0, -1), closed];
  }

  #updateRecoveryStep(job: JobRecord, patch: { server: string; promptId: string }): void {
    const last = job.recoveryHistory.at(-1);
    if (!last || last.success !== null) return;
    const step = { ...last, ...patch };
    job.recoveryHistory = [...job.recoveryHistory.slice(0, -1), step];
    void this.#store.appendRecoveryStep(job.id, step, { replaceLast: true }).catch((err: unknown) => this.#o.logger.warn({ err }, 'could not record recovery step'));
  }

  async #setAttemptStatus(jobId: string, attempt: AttemptRecord, status: AttemptRecord['status']): Promise<void> {
    if (attempt.status === 'completed' || attempt.status === 'failed' || (attempt.status === 'running' && status === 'submitted')) return;
    attempt.status = status;
    await this.#store.recordAttempt(jobId, { ...attempt }).catch((err: unknown) => this.#o.logger.warn({ err }, 'could not record attempt'));
  }

  #onProgress(job: JobRecord, attempt: AttemptRecord, pct: number, node: string | null): void {
    const at = this.#o.clock.now();
    this.#throttle.push({ type: 'progress', jobId: job.id, progress: pct, node, attempt: attempt.number, at }, pct >= 100, () => {
      void this.#store
        .updateProgress(job.id, pct, {
          progress: pct,
          completedOutputs: job.checkpoint?.completedOutputs ?? {},
          cacheServer: attempt.server,
          promptId: attempt.promptId,
          updatedAt: at,
        })
        .catch((err: unknown) => this.#o.logger.warn({ err }, 'could not persist progress'));
    });
  }

  async #transition(job: JobRecord, to: JobStatus, patch: Partial<JobRecord>): Promise<JobRecord | null> {
    if (!canTransition(job.status, to)) {
      const fresh = await this.#store.getJob(job.id);
      if (!fresh || !canTransition(fresh.status, to)) return null;
      job = fresh;
    }
    const updated = await this.#store.transition(job.id, job.status, to, { ...patch, updatedAt: this.#o.clock.now() });
    if (!updated) return null;
    if (isTerminal(to)) this.#throttle.flush(job.id);
    this.#emitState(updated, job.status);
    return updated;
  }

  #emitState(job: JobRecord, from: JobStatus | null): void {
    this.#emit({ type: 'state', jobId: job.id, from, to: job.status, at: this.#o.clock.now(), job });
  }

  #emit(e: GuardEvent): void {
    this.#bus.emit(e);
  }

  #analytics(e: AnalyticsEvent): void {
    for (const sink of this.#o.analytics) {
      try {
        sink(e);
      } catch (err) {
        this.#o.logger.warn({ err, event: e.name }, 'analytics sink threw');
      }
    }
  }

  async #mustGet(id: string): Promise<JobRecord> {
    const job = await this.#store.getJob(id);
    if (!job) throw new GuardError('JOB_NOT_FOUND', `no job with id ${id}`, { field: 'id' });
    return job;
  }

  #assertOpen(): void {
    if (this.#closing) throw new GuardError('GUARD_CLOSED', 'the guard is closed');
    if (!this.#started) throw new GuardError('GUARD_CLOSED', 'the guard is not started');
  }

  /** Restart recovery: every unfinished job goes back to the dispatcher; orphans first. */
  async #recoverUnfinished(): Promise<void> {
    const { jobs, corrupt } = await this.#store.listNonTerminal();
    for (const c of corrupt) this.#o.logger.error({ jobId: c.id, error: c.error }, 'skipping unreadable job in the store');
    for (const job of jobs) {
      this.#afterRestart.add(job.id);
      // Orphans first: their prompts may be running now; queued jobs keep their own priority.
      await this.#dispatcher.enqueue(job.id, job.status === 'queued' ? job.priority : Number.MAX_SAFE_INTEGER);
    }
  }

  readonly #afterRestart = new Set<string>();

  #armCleanup(): void {
    if (this.#o.cleanupIntervalMs <= 0) return;
    const tick = () => {
      void this.cleanup(this.#o.cleanupAfterHours).catch((err: unknown) => this.#o.logger.warn({ err }, 'cleanup failed'));
      this.#cleanupTimer = this.#o.clock.setTimeout(tick, this.#o.cleanupIntervalMs);
    };
    this.#cleanupTimer = this.#o.clock.setTimeout(tick, this.#o.cleanupIntervalMs);
  }
}

interface PlannedAttempt {
  workflow: ApiWorkflow;
  changes: InputChange[];
  server: { prefer?: string; exclude?: string[]; require?: string[]; moreVramThan?: string };
  strategy?: StrategyName;
  freeMemoryFirst?: boolean;
  partialTargets?: string[];
  /** Restart recovery: follow this already-recorded attempt instead of submitting a new one. */
  reattach?: AttemptRecord;
  manual?: boolean;
}

interface FailedAttempt {
  attempt: AttemptRecord;
  classification: Classification;
  lost: boolean;
  afterRestart?: boolean;
}

function replaceAttempt(list: AttemptRecord[], a: AttemptRecord): AttemptRecord[] {
  return list.map((x) => (x.number === a.number ? a : x));
}

/** Attempts made before the last manual retry do not count against the retry budget. */
function baseAttemptIndex(attempts: AttemptRecord[]): number {
  for (let i = attempts.length - 1; i >= 0; i--) if (attempts[i]?.manual) return i;
  return 0;
}

/** What every server lacks (the intersection): what no failover can fix. */
function missingEverywhere(missing: Record<string, { nodeTypes: string[]; models: Array<{ folder: string; name: string }> }>): MissingCapability {
  const all = Object.values(missing);
  if (all.length === 0) return { nodeTypes: [], models: [] };
  const nodeTypes = all.map((m) => new Set(m.nodeTypes)).reduce((a, b) => new Set([...a].filter((x) => b.has(x))));
  const key = (m: { folder: string; name: string }) => `${m.folder}\u0000${m.name}`;
  const keys = all.map((m) => new Set(m.models.map(key))).reduce((a, b) => new Set([...a].filter((x) => b.has(x))));
  const models = (all[0]?.models ?? []).filter((m) => keys.has(key(m)));
  return { nodeTypes: [...nodeTypes], models };
}
