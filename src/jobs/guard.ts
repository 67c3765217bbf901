/**
 * The guard: the public API (`createGuard()`, the library's front door; the HTTP service and the
 * CLI use it) and the wiring of the engine's pieces — the dispatcher feeds job ids to the drive loop
 * (job-driver.ts), which uses the server picker, the reducer and the planner, and everything that
 * happens goes on one event stream (events.ts).
 */
import { randomUUID } from 'node:crypto';
import type { ApiWorkflow } from '../comfy/types.js';
import { assertApiWorkflow } from '../comfy/workflow.js';
import { compileRules } from '../errors/index.js';
import { PoolOutputDeleter, ServerPool, type OutputDeleter } from '../pool/index.js';
import { InProcessDispatcher } from '../queue/in-process.js';
import type { Dispatcher } from '../queue/contract.js';
import { applyParams, compilePolicy, type PoolView, type RecoveryPolicy } from '../recovery/index.js';
import { compileRetryPolicy, type RetryPolicy } from '../resilience/index.js';
import type { JobQuery, JobPage, JobStore, UnfinishedPage } from '../store/contract.js';
import { isStoreError } from '../store/errors.js';
import { openStore } from '../store/open.js';
import type { TimerHandle } from '../util/clock.js';
import { analyticsListener } from './analytics-feed.js';
import { cleanupWithOutputs, logCleanup, type CleanupReport } from './cleanup.js';
import { createErrorAnalytics, type ErrorAnalytics } from './error-analytics.js';
import { abortReason } from './attempt-runner.js';
import { EventBus, type GuardEvent, type JobEvent } from './events.js';
import { FeedRegistry } from './feed-registry.js';
import type { Guard, GuardStats, ServerHealthView, SubmitResult } from './guard-api.js';
import { GuardError } from './guard-error.js';
import { JobDriver } from './job-driver.js';
import type { LearnedMemory } from './learned-memory.js';
import { validateJobOptions, JobInputError } from './job-input.js';
import { resolveGuardOptions, type GuardOptions, type ResolvedGuardOptions } from './options.js';
import { ProgressThrottle } from './progress-throttle.js';
import { recoverUnfinishedJobs } from './restart-recovery.js';
import { finish, requeueForRetry } from './reducer.js';
import { ServerPicker, StoreBlockList } from './server-picker.js';
import { SharedMemoryModel } from './shared-memory-model.js';
import { guardStatsFrom } from './stats.js';
import { isTerminal, newJobRecord, type JobOptions, type JobParams, type JobRecord, type JobStatus } from './types.js';

export { GuardError, type GuardErrorCode } from './guard-error.js';

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

/** How often `wait()`/`progress()` re-read the store when no event arrives (another process may run the job). */
const STORE_POLL_MS = 2_000;

/** Successes teach the memory model little each: they are written to the store at most this often. */
const MEMORY_WRITE_DELAY_MS = 2_000;

/** Jobs an emergency stop cancels at once. */
const EMERGENCY_CANCEL_BATCH = 32;

class GuardImpl implements Guard {
  readonly #o: ResolvedGuardOptions;
  readonly #pool: ServerPool;
  readonly #dispatcher: Dispatcher;
  readonly #feeds: FeedRegistry;
  readonly #retry: RetryPolicy;
  readonly #policy: RecoveryPolicy;
  readonly #bus: EventBus;
  readonly #throttle: ProgressThrottle;
  readonly #driver: JobDriver;
  readonly #ownsStore: boolean;
  readonly #errorAnalytics: ErrorAnalytics | null;
  readonly #outputDeleter: OutputDeleter;
  #store!: JobStore;
  readonly #running = new Map<string, AbortController>();
  readonly #cancelRequested = new Set<string>();
  readonly #drained = new Set<string>();
  readonly #resumeWaiters = new Set<() => void>();
  readonly #storeWaits = new Set<TimerHandle>();
  #paused = false;
  readonly #memory: SharedMemoryModel;
  #cleanupTimer: TimerHandle | null = null;
  #closing: Promise<void> | null = null;
  #started = false;

  constructor(o: ResolvedGuardOptions) {
    this.#o = o;
    this.#memory = new SharedMemoryModel(
      () => this.#store,
      (err) => o.logger.warn({ err }, 'could not keep what was learned about memory'),
      { clock: o.clock, delayMs: MEMORY_WRITE_DELAY_MS },
    );
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
    this.#ownsStore = typeof o.store === 'string';
    this.#bus = new EventBus((err, e) => o.logger.warn({ err, event: e.type }, 'event listener threw'));
    this.#throttle = new ProgressThrottle(o.clock, o.progressThrottleMs, (e) => this.#bus.emit(e));
    this.#pool.onEvent((change) => this.#bus.emit({ type: 'pool', change, at: o.clock.now() }));
    this.#bus.on(analyticsListener(o.analytics, o.logger));
    this.#outputDeleter =
      o.outputDeleter ??
      new PoolOutputDeleter({
        servers: o.servers.map((s) => ({ name: s.name!, outputDelete: s.outputDelete ?? 'none' })),
        client: (name) => this.#pool.client(name),
        // A server known to be down is not waited for: its files are reported at once.
        unreachable: (name) => {
          const s = this.#pool.state().find((x) => x.name === name);
          return s?.readiness.state === 'unreachable' ? (s.health?.error ?? 'not answering') : null;
        },
      });
    // Subscribed before anything runs, so the figures cover every job of this process.
    this.#errorAnalytics = o.errorAnalytics ? createErrorAnalytics(this, { clock: o.clock }) : null;
    const blocks = new StoreBlockList(() => this.#store, o.clock);
    const picker = new ServerPicker({ pool: this.#pool, clock: o.clock, blocks, drained: this.#drained, delayMs: (n) => this.#retry.delayMs(n) });
    const rules = o.classifierRules === undefined ? undefined : compileRules(o.classifierRules);
    this.#driver = new JobDriver({
      o,
      store: () => this.#store,
      pool: this.#pool,
      feeds: this.#feeds,
      picker,
      blocks,
      rules,
      throttle: this.#throttle,
      emit: (e) => this.#bus.emit(e),
      untilResumed: (signal) => this.#untilResumed(signal),
      cancelRequested: (id) => this.#cancelRequested.has(id),
      planner: {
        policyFor: (job) => (job.options.recovery ? compilePolicy(o.recovery, job.options.recovery) : this.#policy),
        maxRetries: o.maxRetries,
        pool: () => this.#poolView(),
        delayMs: (n, retryAfterMs) => this.#retry.delayMs(n, retryAfterMs !== undefined ? { retryAfterMs } : undefined),
        errorInfo: (c, server) => this.#driver.errorInfo(c, server),
        now: () => o.clock.now(),
        maxRecoveryAgeMs: o.maxRecoveryAgeMs,
        oomRetries: o.oomRetries,
      },
      memory: () => this.#memory.view,
      learned: (soon) => this.#memory.persist({ soon }),
    });
  }

  async start(): Promise<void> {
    this.#store = typeof this.#o.store === 'string' ? await openStore(this.#o.store) : this.#o.store;
    await this.#store.init();
    // What every process learned about memory needs, kept in the store.
    await this.#memory.load();
    if (this.#o.instanceId !== undefined) {
      // One clientId per instance, kept across restarts: ComfyUI routes a prompt's events by it.
      const key = `instance:${this.#o.instanceId}:clientId`;
      const kept = await this.#store.getMeta(key);
      if (typeof kept === 'string' && kept) this.#feeds.clientId = kept;
      else await this.#store.setMeta(key, this.#feeds.clientId);
    }
    await this.#pool.start();
    // Every server's socket opens now: the first job must not wait for (or miss events during) an open.
    this.#feeds.openAll();
    await this.#recoverUnfinished();
    await this.#dispatcher.start((id, signal) => this.#runJob(id, signal));
    this.#armCleanup();
    this.#started = true;
  }

  // ---- jobs ------------------------------------------------------------------------------------

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
      this.#bus.emit({ type: 'state', jobId: stored.id, from: null, to: stored.status, at: now, job: stored });
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
    return this.#mustGet(id);
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
      const job = await this.#mustGet(id);
      // The current state first, so a late subscriber knows where the job is.
      yield { type: 'state', jobId: id, from: null, to: job.status, at: this.#o.clock.now(), job };
      if (isTerminal(job.status)) return;
      let seen: JobStatus = job.status;
      for (;;) {
        opts.signal?.throwIfAborted();
        const e = buffer.shift();
        if (!e) {
          // Another process may run the job: a change the store shows becomes a state event.
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
      throw new GuardError('RETRY_REFUSED', `job ${id} failed with ${job.error.code}, which retrying will not fix; pass force to retry anyway`);
    }
    // The fresh budget is a field of the job: whichever process runs it next honours it.
    const updated = await this.#write(job, requeueForRetry(job, this.#o.clock.now()));
    if (!updated) throw new GuardError('INVALID_STATE', `job ${id} changed state while retrying; try again`);
    await this.#dispatcher.enqueue(id, updated.priority);
    return updated;
  }

  async cancel(id: string): Promise<JobRecord> {
    const job = await this.#mustGet(id);
    if (isTerminal(job.status)) return job;
    this.#cancelRequested.add(id);
    const running = this.#running.get(id);
    if (running) {
      running.abort(abortReason('cancel'));
      return this.wait(id);
    }
    // Not running here: record the request (any process running it honours it), take it out of the
    // queue, withdraw its prompt, and end it.
    await this.#store.patchJob(id, { cancelRequestedAt: this.#o.clock.now() }).catch(() => undefined);
    await this.#dispatcher.remove(id);
    if (job.promptId && job.server && this.#pool.names().includes(job.server)) {
      const client = this.#pool.client(job.server);
      await client.deleteFromQueue([job.promptId], { timeoutMs: 5_000 }).catch(() => undefined);
      await client.interrupt(job.promptId, { timeoutMs: 5_000 }).catch(() => undefined);
    }
    const updated = await this.#write(job, finish(job, 'cancelled', this.#o.clock.now()));
    return updated ?? this.#mustGet(id);
  }

  async emergencyStop(): Promise<{ cancelled: number; servers: number }> {
    this.pause();
    // Page through summaries and cancel a bounded number at a time: a million queued jobs must not
    // be read whole or cancelled all at once.
    let cancelled = 0;
    let cursor: string | null = null;
    do {
      const page: UnfinishedPage = await this.#store.listUnfinished({ cursor, limit: 500 });
      for (let i = 0; i < page.jobs.length; i += EMERGENCY_CANCEL_BATCH) {
        const results = await Promise.allSettled(page.jobs.slice(i, i + EMERGENCY_CANCEL_BATCH).map((j) => this.cancel(j.id)));
        cancelled += results.filter((r) => r.status === 'fulfilled' && r.value.status === 'cancelled').length;
      }
      cursor = page.nextCursor;
    } while (cursor);
    let servers = 0;
    await Promise.all(
      this.#pool.names().map(async (name) => {
        const client = this.#pool.client(name);
        const ok = await Promise.allSettled([client.clearQueue({ timeoutMs: 5_000 }), client.interrupt(undefined, { timeoutMs: 5_000 })]);
        if (ok.every((r) => r.status === 'fulfilled')) servers++;
      }),
    );
    return { cancelled, servers };
  }

  // ---- the pool --------------------------------------------------------------------------------

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

  async stats(): Promise<GuardStats> {
    const stats = guardStatsFrom(await this.#store.stats(), this.#pool.degradation().level);
    return this.#errorAnalytics ? { ...stats, analytics: this.#errorAnalytics.snapshot() } : stats;
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

  listCorrupt(): Promise<Array<{ id: string; error: string }>> {
    return this.#store.listCorrupt();
  }

  async deleteJob(id: string): Promise<boolean> {
    // A readable job that is still running is cancelled first, so nothing keeps running for a deleted job.
    const job = await this.#store.getJob(id).catch(() => null);
    if (job && !isTerminal(job.status)) await this.cancel(id).catch(() => undefined);
    await this.#dispatcher.remove(id).catch(() => false);
    return this.#store.deleteJob(id);
  }

  async cleanup(olderThanHours: number): Promise<CleanupReport> {
    if (!(olderThanHours >= 0)) throw new GuardError('INVALID_JOB', '`olderThanHours` must be a number >= 0', { field: 'olderThanHours' });
    const cutoff = this.#o.clock.now() - olderThanHours * 3_600_000;
    const report: CleanupReport = this.#o.cleanupOutputs
      ? { olderThanHours, ...(await cleanupWithOutputs({ store: this.#store, deleter: this.#outputDeleter, cutoff })) }
      : { olderThanHours, deleted: await this.#store.deleteTerminalBefore(cutoff), outputs: null };
    logCleanup(this.#o.logger, report);
    return report;
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
      for (const w of [...this.#resumeWaiters]) w();
      const steps: Array<() => Promise<unknown>> = [
        () => this.#dispatcher.close(),
        () => this.#memory.flushed(),
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

  // ---- internals -------------------------------------------------------------------------------

  async #runJob(id: string, dispatcherSignal: AbortSignal): Promise<void> {
    const ac = new AbortController();
    const onShutdown = () => ac.abort(abortReason('shutdown'));
    dispatcherSignal.addEventListener('abort', onShutdown, { once: true });
    this.#running.set(id, ac);
    try {
      await this.#driver.run(id, ac.signal);
    } catch (err) {
      if (isStoreError(err, 'STORE_UNAVAILABLE') && !this.#closing) {
        // The store is away; the job's record is intact. Pick the job up again once the store
        // answers: restart-style recovery then reattaches to its prompt or reads its outcome.
        this.#o.logger.warn({ err, jobId: id }, 'store unavailable; the job resumes when it is back');
        this.#resumeWhenStoreIsBack(id);
        return;
      }
      if (isStoreError(err, 'STORE_CORRUPT_ROW')) {
        // Restart recovery queues jobs from index summaries, so a damaged record shows itself
        // here, when its turn comes: the store has quarantined it (listCorrupt lists it).
        this.#o.logger.error({ jobId: id, error: err.message }, 'skipping unreadable job in the store');
        return;
      }
      this.#o.logger.error({ err, jobId: id }, 'job loop failed');
      await this.#failInternal(id).catch(() => undefined);
    } finally {
      this.#running.delete(id);
      this.#cancelRequested.delete(id);
      dispatcherSignal.removeEventListener('abort', onShutdown);
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

  async #failInternal(id: string): Promise<void> {
    const job = await this.#store.getJob(id);
    if (!job || isTerminal(job.status)) return;
    const info = { code: 'INTERNAL_ERROR', category: 'permanent', message: 'comfyguard failed while running this job (a bug of ours).', hint: 'Retry the job; if it fails again, report it with the service log.', retryable: false };
    await this.#write(job, finish(job, 'failed', this.#o.clock.now(), info));
  }

  /** Applies a reduction written outside the drive loop (retry, cancel); null if another process won. */
  async #write(before: JobRecord, r: { job: JobRecord; write: { kind: 'transition'; from: JobStatus; to: JobStatus; patch: Partial<JobRecord> } | { kind: 'patch'; patch: Partial<JobRecord> } }): Promise<JobRecord | null> {
    if (r.write.kind === 'patch') {
      await this.#store.patchJob(before.id, r.write.patch);
      return r.job;
    }
    const updated = await this.#store.transition(before.id, r.write.from, r.write.to, r.write.patch);
    if (!updated) return null;
    if (isTerminal(updated.status)) this.#throttle.flush(updated.id);
    this.#bus.emit({ type: 'state', jobId: updated.id, from: before.status, to: updated.status, at: this.#o.clock.now(), job: updated });
    return updated;
  }

  memoryModel(): Promise<LearnedMemory> {
    return this.#memory.learned();
  }

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

  #poolView(): PoolView {
    return {
      servers: this.#pool.state().map((s) => ({
        name: s.name,
        healthy: s.healthy,
        breakerOpen: s.breaker === 'open' || s.breaker === 'isolated',
        vramTotal: s.health?.vramTotal ?? null,
        vramFree: s.health?.vramFree ?? null,
        device: s.health?.device ?? null,
        ramTotal: s.health?.ramTotal ?? null,
        models: this.#pool.modelMap(s.name),
        nodeTypes: this.#pool.nodeTypes(s.name),
        supportsPartialTargets: this.#pool.supports(s.name, 'partialTargets'),
      })),
    };
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

  /** Restart recovery: every unfinished job goes back to the dispatcher, page by page; orphans first. */
  async #recoverUnfinished(): Promise<void> {
    const r = await recoverUnfinishedJobs({
      store: this.#store,
      dispatcher: this.#dispatcher,
      onJob: (job) => {
        this.#driver.afterRestart.add(job.id);
      },
      onCorrupt: (c) => this.#o.logger.error({ jobId: c.id, error: c.error }, 'skipping unreadable job in the store'),
    });
    if (r.queued > 0 || r.corrupt > 0) this.#o.logger.info({ queued: r.queued, corrupt: r.corrupt }, 'resumed unfinished jobs');
  }

  #armCleanup(): void {
    if (this.#o.cleanupIntervalMs <= 0) return;
    const tick = () => {
      void this.cleanup(this.#o.cleanupAfterHours).catch((err: unknown) => this.#o.logger.warn({ err }, 'cleanup failed'));
      this.#cleanupTimer = this.#o.clock.setTimeout(tick, this.#o.cleanupIntervalMs, { background: true });
    };
    this.#cleanupTimer = this.#o.clock.setTimeout(tick, this.#o.cleanupIntervalMs, { background: true });
  }
}
