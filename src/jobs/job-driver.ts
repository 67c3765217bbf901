/**
 * The drive loop of one job: pick a server, record the attempt, run it, and on failure ask the
 * planner for the next step, until the job is terminal. Every change goes through the reducer (one
 * store write per step) and onto the event stream. Restart recovery reads the plan stored with the
 * open recovery step instead of deciding again.
 */
import { randomUUID } from 'node:crypto';
import type { NodeOutput } from '../comfy/types.js';
import { classify, ComfyGuardError, type Classification, type ClassifierRules } from '../errors/index.js';
import { ERROR_REGISTRY } from '../errors/codes.js';
import { oomWordsForDevice } from '../errors/oom-amount.js';
import type { ServerPool } from '../pool/index.js';
import { applyParams, scaleQuality, serverMemory, type MemoryModel, type OomMemoryInput } from '../recovery/index.js';
import type { JobStore } from '../store/contract.js';
import { sleep } from '../util/clock.js';
import { abortReason, runAttempt, type AttemptResult } from './attempt-runner.js';
import type { AttemptOutcome, GuardEvent } from './events.js';
import type { FeedRegistry } from './feed-registry.js';
import type { ResolvedGuardOptions } from './options.js';
import { failureDetails, planRecovery, plannedFromStep, type PlannedAttempt, type PlannerDeps } from './planner.js';
import type { ProgressThrottle } from './progress-throttle.js';
import { beginAttempt, closeOpenStep, completeAttempt, failAttempt, finish, openRecovery, openStep, type Reduced } from './reducer.js';
import { workflowKey, type BlockList, type ServerPicker } from './server-picker.js';
import { isTerminal, type AttemptRecord, type JobErrorInfo, type JobRecord, type OutputRef } from './types.js';

/** How long a (server, workflow) pair stays blocked after a dependency error or missing node there. */
const BLOCK_MS = 10 * 60_000;
/** Codes after which the server cannot run this workflow (or anything) until someone fixes it. */
const BLOCKING_CODES: ReadonlySet<string> = new Set(['COMFYUI_DEPENDENCY_ERROR', 'COMFYUI_MISSING_NODE', 'COMFYUI_GPU_FAULT', 'COMFYUI_DISK_FULL']);

export interface DriverDeps {
  o: ResolvedGuardOptions;
  store(): JobStore;
  pool: ServerPool;
  feeds: FeedRegistry;
  picker: ServerPicker;
  blocks: BlockList;
  planner: Omit<PlannerDeps, 'eligible'>;
  rules: ClassifierRules | undefined;
  throttle: ProgressThrottle;
  emit(e: GuardEvent): void;
  /** Resolves when the guard is not paused. */
  untilResumed(signal: AbortSignal): Promise<void>;
  /** True when this process was asked to cancel the job. */
  cancelRequested(id: string): boolean;
  /** The shared memory model (routing, OOM planning), and a call after it learned something (`soon`: a success, written with others shortly). */
  memory(): MemoryModel;
  learned(soon?: boolean): void;
}

type StepOutcome = { job: JobRecord; done: true } | { job: JobRecord; done: false; failure: Failure };

/** The exception text of a failure's evidence (ComfyUI's execution_error message), for the memory model. */
function oomTextOf(evidence: unknown): string {
  const e = evidence as { kind?: unknown; data?: { exception_message?: unknown }; message?: unknown; error?: { message?: unknown } } | null;
  if (e && typeof e.data?.exception_message === 'string') return e.data.exception_message;
  if (e && typeof e.message === 'string') return e.message;
  if (e && typeof e.error?.message === 'string') return e.error.message;
  return typeof evidence === 'string' ? evidence : '';
}

interface Failure {
  memory?: OomMemoryInput;
  attempt: AttemptRecord | null;
  classification: Classification;
  lost: boolean;
  afterRestart: boolean;
  workflow: PlannedAttempt['workflow'];
  server: string | null;
}

/** Runs jobs to a terminal state. One instance per guard; `run` is called by the dispatcher. */
export class JobDriver {
  /** Jobs this process picked up after a restart: a lost prompt of theirs was lost while we were down. */
  readonly afterRestart = new Set<string>();

  constructor(private readonly d: DriverDeps) {}

  /** Drives job `id` until it is terminal, detached (shutdown) or taken by another process. */
  async run(id: string, signal: AbortSignal): Promise<void> {
    const { d } = this;
    const now = () => d.o.clock.now();
    let job = await d.store().getJob(id);
    if (!job || isTerminal(job.status)) return;
    if (d.cancelRequested(id) || job.cancelRequestedAt) {
      await this.#end(job, finish(job, 'cancelled', now()));
      return;
    }
    const deadline = job.createdAt + (job.options.timeoutMs ?? d.o.jobTimeoutMs);
    let next: PlannedAttempt;
    if (job.status === 'queued') {
      await d.untilResumed(signal);
      if (signal.aborted) return this.#onAbort(job);
      job = (await d.store().getJob(id)) ?? job;
      if (job.status !== 'queued') return;
      const { workflow, changes } = applyParams(job.workflow, job.params);
      // Queued with attempts behind it: a manual retry. Its first attempt is marked, so the fresh budget
      // survives in stores that keep only the attempt list.
      next = { workflow, changes, server: {}, ...(job.attempts.length > 0 ? { manual: true } : {}) };
    } else {
      next = this.#resumePlan(job);
    }

    for (;;) {
      if (signal.aborted) return this.#onAbort(job);
      if (now() >= deadline) {
        await this.#timeOut(job, 'the job ran out of its total time budget');
        return;
      }
      const outcome = await this.#runOne(job, next, signal, deadline);
      job = outcome.job;
      if (outcome.done) return;
      const decided = await this.#decide(job, outcome.failure);
      if (!decided) return;
      ({ job, next } = decided);
      const delay = openStep(job)?.plan?.delayMs ?? 0;
      if (delay > 0) {
        try {
          await sleep(d.o.clock, Math.min(delay, Math.max(0, deadline - now())), signal);
        } catch {
          return this.#onAbort(job);
        }
      }
    }
  }

  /** After a restart (running or recovering): follow the recorded attempt, or the stored plan. */
  #resumePlan(job: JobRecord): PlannedAttempt {
    const last = job.attempts.at(-1);
    const step = openStep(job);
    if (job.status === 'recovering' && step) {
      // The plan was decided and stored before the crash: read it, never decide again.
      return plannedFromStep(step, last?.workflow ?? applyParams(job.workflow, job.params).workflow);
    }
    if (last && (last.status === 'pending' || last.status === 'submitted' || last.status === 'running')) {
      return { workflow: last.workflow, changes: last.changes ?? [], server: { prefer: last.server }, reattach: last, ...(last.strategy ? { strategy: last.strategy } : {}) };
    }
    if (!last) return { ...applyParams(job.workflow, job.params), server: {} };
    // Crashed after an attempt ended but before its decision was written: run it again.
    return { workflow: last.workflow, changes: last.changes ?? [], server: {}, strategy: 'retry' };
  }

  async #runOne(job: JobRecord, plan: PlannedAttempt, signal: AbortSignal, deadline: number): Promise<StepOutcome> {
    const { d } = this;
    const now = () => d.o.clock.now();
    let attempt: AttemptRecord;
    let server: string;
    if (plan.reattach) {
      attempt = plan.reattach;
      server = attempt.server;
      if (!d.pool.names().includes(server)) {
        return this.#settleFailed(job, attempt, { kind: 'transport', code: 'ECONNREFUSED', message: 'server no longer configured' }, {}, false);
      }
    } else {
      let workflow = plan.workflow;
      let changes = plan.changes;
      let degraded = job.degraded;
      const level = d.pool.degradation();
      if (job.options.allowDegradation && job.options.quality !== 'exact' && level.factor < 1 && !plan.strategy) {
        const scaled = scaleQuality(workflow, level.factor);
        workflow = scaled.workflow;
        changes = [...changes, ...scaled.changes];
        degraded = { level: level.level, factor: level.factor };
      }
      const mm = d.memory();
      const picked = await d.picker.pick({
        workflow,
        constraint: plan.server,
        ...(d.o.capacityAware ? { predict: (s: Parameters<MemoryModel['predict']>[1]) => mm.predict(workflow, s) } : {}),
        ...(job.options.serverTags ? { tags: job.options.serverTags } : {}),
        deadline,
        signal,
      });
      if (picked.kind === 'aborted') {
        await this.#onAbort(job);
        return { job, done: true };
      }
      if (picked.kind === 'deadline') {
        await this.#timeOut(job, 'no healthy ComfyUI server became available in time');
        return { job, done: true };
      }
      if (picked.kind === 'incapable') {
        return { job, done: false, failure: { attempt: null, classification: picked.classification, lost: false, afterRestart: false, workflow, server: null } };
      }
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
      // The prompt id is persisted before anything is sent: after a crash we can always look it up.
      const begun = await this.#apply(job, beginAttempt(job, attempt, now(), degraded));
      if (!begun) return { job, done: true };
      job = begun;
      if (d.o.prepareAttempt) {
        try {
          await d.o.prepareAttempt({ jobId: job.id, attempt: attempt.number, server, client: d.pool.client(server), workflow, signal });
        } catch (err) {
          return this.#settleFailed(job, attempt, { kind: 'thrown', error: err }, {}, false);
        }
      }
      if (plan.freeMemoryFirst) {
        await d.pool
          .client(server)
          .free({ unloadModels: true, freeMemory: true }, { timeoutMs: d.o.requestTimeoutMs })
          .catch((err: unknown) => d.o.logger.warn({ err, server }, 'free memory failed'));
      }
    }
    return this.#execute(job, attempt, plan, signal, deadline);
  }

  async #execute(job: JobRecord, attempt: AttemptRecord, plan: PlannedAttempt, signal: AbortSignal, deadline: number): Promise<StepOutcome> {
    const { d } = this;
    const now = () => d.o.clock.now();
    const server = attempt.server;
    const startedAt = now();
    d.emit({ type: 'attempt_started', jobId: job.id, attempt: attempt.number, server, promptId: attempt.promptId, strategy: attempt.strategy ?? null, reattached: Boolean(plan.reattach), at: startedAt });
    const settled = (outcome: AttemptOutcome, code: string | null = null, message: string | null = null) =>
      d.emit({ type: 'attempt_settled', jobId: job.id, attempt: attempt.number, server, promptId: attempt.promptId, outcome, code, message, durationMs: Math.max(0, now() - startedAt), at: now() });
    const release = d.pool.acquire(server);
    // Events can outrun the POST response: once the attempt has ended, late callbacks are ignored.
    let ended = false;
    let result: AttemptResult;
    try {
      result = await runAttempt({
        server,
        client: d.pool.client(server),
        feed: d.feeds.get(server),
        promptId: attempt.promptId,
        workflow: attempt.workflow,
        ...(attempt.partialTargets ? { partialTargets: attempt.partialTargets } : {}),
        reattach: Boolean(plan.reattach),
        clock: d.o.clock,
        generationTimeoutMs: Math.min(job.options.generationTimeoutMs ?? d.o.generationTimeoutMs, Math.max(1, deadline - now())),
        stallTimeoutMs: job.options.stallTimeoutMs ?? d.o.stallTimeoutMs,
        pollIntervalMs: d.o.pollIntervalMs,
        unreachableGraceMs: d.o.unreachableGraceMs,
        signal,
        extraData: { comfyguard_job: job.id },
        onProgress: (pct, node) => {
          if (!ended) d.throttle.push({ type: 'progress', jobId: job.id, progress: pct, node, attempt: attempt.number, at: now() }, pct >= 100);
        },
        onComfy: (message) => {
          if (!ended) d.emit({ type: 'comfy', jobId: job.id, attempt: attempt.number, server, promptId: attempt.promptId, message, at: now() });
        },
        onPreview: (frame) => {
          if (!ended) d.emit({ type: 'preview', jobId: job.id, attempt: attempt.number, server, promptId: attempt.promptId, frame, at: now() });
        },
      });
    } finally {
      ended = true;
      release();
    }

    switch (result.kind) {
      case 'completed': {
        settled('completed');
        d.pool.recordSuccess(server);
        const fitted = this.#serverMemory(server);
        if (fitted) {
          d.memory().observeSuccess({ server: fitted, workflow: attempt.workflow });
          d.learned(true);
        }
        const r = completeAttempt(job, attempt, { outputs: this.#outputRefs(server, result.outputs), raw: result.outputs }, now());
        const step = openStep(job);
        const done = await this.#apply(job, r);
        if (done && step) d.emit({ type: 'recovery_closed', jobId: job.id, step: done.recoveryHistory.at(-1)!, at: now() });
        return { job: done ?? job, done: true };
      }
      case 'cancelled': {
        settled('cancelled');
        const cancelled = { ...job, attempts: job.attempts.map((a) => (a.number === attempt.number ? { ...a, status: 'cancelled' as const, endedAt: now() } : a)) };
        await this.#end(job, finish(cancelled, 'cancelled', now()));
        return { job, done: true };
      }
      case 'detached':
        settled('detached');
        return { job, done: true };
      case 'failed': {
        const out = await this.#settleFailed(job, attempt, result.evidence, result.completedOutputs, Boolean(result.lost), plan.reattach !== undefined);
        if (!out.done && out.failure.attempt) {
          const a = out.failure.attempt;
          settled(a.status === 'lost' ? 'lost' : a.status === 'interrupted' ? 'interrupted' : 'failed', a.code ?? null, a.message ?? null);
        }
        return out;
      }
    }
  }

  /** Classifies a failed attempt and folds it into the record (written with the decision that follows). */
  async #settleFailed(
    job: JobRecord,
    attempt: AttemptRecord,
    evidence: unknown,
    completedOutputs: Record<string, NodeOutput>,
    lost: boolean,
    reattached = false,
  ): Promise<StepOutcome> {
    const { d } = this;
    const c = this.#wordsForDevice(this.classify(evidence, attempt.server, attempt.promptId), evidence, attempt.server);
    const status: AttemptRecord['status'] = lost ? 'lost' : c.code === 'COMFYUI_INTERRUPTED' ? 'interrupted' : 'failed';
    const folded = failAttempt(job, attempt, { status, code: c.code, message: c.message, failure: failureDetails(c), completedOutputs }, d.o.clock.now());
    d.pool.recordFailure(attempt.server, c);
    if (c.code === 'COMFYUI_GPU_FAULT' || c.code === 'COMFYUI_DISK_FULL') d.pool.markUnhealthy(attempt.server, ERROR_REGISTRY[c.code].message);
    if (BLOCKING_CODES.has(c.code)) {
      await d.blocks
        .block({ server: attempt.server, workflowKey: workflowKey(attempt.workflow), code: c.code, reason: c.message, until: d.o.clock.now() + BLOCK_MS })
        .catch((err: unknown) => d.o.logger.warn({ err }, 'could not record a blocked server'));
    }
    if (folded.closedStep) d.emit({ type: 'recovery_closed', jobId: job.id, step: folded.closedStep, at: d.o.clock.now() });
    const afterRestart = reattached && this.afterRestart.delete(job.id);
    const ended = folded.job.attempts.find((a) => a.number === attempt.number) ?? attempt;
    let memory: OomMemoryInput | undefined;
    const mem = c.code === 'COMFYUI_OOM' ? this.#serverMemory(attempt.server) : null;
    if (mem) {
      // What the OOM said it tried to allocate is a lower bound for this shape on this server.
      const text = oomTextOf(evidence);
      d.memory().observeOom({ server: mem, workflow: attempt.workflow, text });
      d.learned();
      // Without capacity awareness the planner walks the ladder, as it does for a model-less OOM.
      if (d.o.capacityAware) memory = { model: d.memory(), oomText: text };
    }
    return {
      job: folded.job,
      done: false,
      failure: { attempt: ended, classification: c, lost, afterRestart, workflow: attempt.workflow, server: attempt.server, ...(memory ? { memory } : {}) },
    };
  }

  /** The planner's verdict, written in one step with the failure it answers. */
  async #decide(job: JobRecord, failure: Failure): Promise<{ job: JobRecord; next: PlannedAttempt } | null> {
    const { d } = this;
    const now = () => d.o.clock.now();
    if (!failure.attempt) {
      // Found before sending: the open step (if any) failed too, and a queued job is started first.
      const closed = closeOpenStep(job, now());
      if (closed.closedStep) d.emit({ type: 'recovery_closed', jobId: job.id, step: closed.closedStep, at: now() });
      job = closed.job;
      if (job.status === 'queued') {
        const started = await this.#apply(job, { job: { ...job, status: 'running', startedAt: job.startedAt ?? now() }, write: { kind: 'transition', from: 'queued', to: 'running', patch: { startedAt: job.startedAt ?? now(), updatedAt: now() } } });
        if (!started) return null;
        job = started;
      }
    }
    // What is blocked for this workflow is read once, so the planner stays synchronous.
    const blocked = await d.blocks.blocked(workflowKey(failure.workflow)).catch(() => [] as string[]);
    const plan = planRecovery(job, failure, { ...d.planner, eligible: (_job, constraint) => d.picker.eligibleWith(constraint, blocked) });
    return this.#openStep(job, plan);
  }

  async #openStep(job: JobRecord, plan: ReturnType<typeof planRecovery>): Promise<{ job: JobRecord; next: PlannedAttempt } | null> {
    const { d } = this;
    const now = d.o.clock.now();
    if (plan.kind === 'end') {
      d.o.logger.info({ jobId: job.id, why: plan.why, code: plan.error.code }, 'job failed');
      await this.#end(job, finish(job, 'failed', now, plan.error));
      return null;
    }
    const workflowChanges = plan.step.changes.length > 0 || plan.step.strategy === 'fallback_workflow';
    const recovering = await this.#apply(job, openRecovery(job, plan.step, { workflowChanges }, now));
    if (!recovering) return null;
    const failedPromptId = job.attempts.find((a) => a.number === plan.step.attempt)?.promptId ?? '';
    d.emit({ type: 'recovery', jobId: job.id, step: plan.step, failedPromptId, at: now });
    return { job: recovering, next: plan.next };
  }

  /** Writes a reduction; null when another process changed the job first (it is then theirs). */
  async #apply(before: JobRecord, r: Reduced): Promise<JobRecord | null> {
    const { d } = this;
    const store = d.store();
    if (r.write.kind === 'patch') {
      await store.patchJob(before.id, r.write.patch);
      return r.job;
    }
    const updated = await store.transition(before.id, r.write.from, r.write.to, r.write.patch);
    if (!updated) return null;
    if (isTerminal(updated.status)) d.throttle.flush(updated.id);
    d.emit({ type: 'state', jobId: updated.id, from: before.status, to: updated.status, at: d.o.clock.now(), job: updated });
    return updated;
  }

  /** Ends a job; if another process moved it meanwhile, ends it from what the store now says. */
  async #end(job: JobRecord, r: Reduced): Promise<void> {
    if (await this.#apply(job, r)) return;
    const fresh = await this.d.store().getJob(job.id);
    if (!fresh || isTerminal(fresh.status) || r.write.kind !== 'transition') return;
    const to = r.write.to as 'failed' | 'timed_out' | 'cancelled';
    await this.#apply(fresh, finish({ ...fresh, attempts: r.job.attempts, recoveryHistory: r.job.recoveryHistory }, to, this.d.o.clock.now(), r.job.error));
  }

  async #timeOut(job: JobRecord, why: string): Promise<void> {
    const info: JobErrorInfo = { ...this.errorInfo(classify({ kind: 'timeout', phase: 'generation' }), job.server ?? undefined), message: `The job timed out: ${why}.` };
    await this.#end(job, finish(job, 'timed_out', this.d.o.clock.now(), info));
  }

  async #onAbort(job: JobRecord): Promise<void> {
    if (this.d.cancelRequested(job.id)) await this.#end(job, finish(job, 'cancelled', this.d.o.clock.now()));
  }

  /** Classifies evidence with the guard's rules. */
  classify(evidence: unknown, server: string | undefined, promptId: string | undefined): Classification {
    return classify(evidence, {
      ...(this.d.rules ? { rules: this.d.rules } : {}),
      context: { ...(server ? { server } : {}), ...(promptId ? { promptId } : {}) },
    });
  }

  /** What the user sees of a classification. Its category is the verdict (a node type no server has is permanent). */
  errorInfo(c: Classification, server: string | undefined): JobErrorInfo {
    const json = ComfyGuardError.fromClassification(c, server ? { server } : {}).toJSON();
    return {
      code: json.code,
      category: c.category,
      message: json.message,
      hint: json.hint,
      retryable: c.retryable,
      ...(json.nodeId ? { nodeId: json.nodeId } : {}),
      ...(json.nodeType ? { nodeType: json.nodeType } : {}),
      ...(server ? { server } : {}),
    };
  }

  /**
   * An OOM in words that fit where it happened: the CPU allocator, or a server whose device is the
   * CPU, ran out of system memory, and a bigger GPU would not help (the registry's words speak of a GPU).
   */
  #wordsForDevice(c: Classification, evidence: unknown, server: string): Classification {
    if (c.code !== 'COMFYUI_OOM') return c;
    const device = this.d.planner.pool().servers.find((x) => x.name === server)?.device ?? null;
    const words = oomWordsForDevice({ text: oomTextOf(evidence), deviceType: device });
    return words ? { ...c, ...words } : c;
  }

  /** The memory model's view of a server, from its last health check. */
  #serverMemory(server: string): ReturnType<typeof serverMemory> | null {
    const s = this.d.planner.pool().servers.find((x) => x.name === server);
    return s ? serverMemory(s) : null;
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
          refs.push({ node, ...ref, server, url: this.d.o.outputUrl(server, ref) });
        }
      }
    }
    return refs;
  }
}

export { abortReason };
