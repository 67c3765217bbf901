/**
 * A small scriptable Guard for the service tests that are hard to produce with a real guard
 * (a store that is down, an exact error info, a job held in a state). Jobs live in a real
 * MemoryStore, so listing, cursors and idempotency behave as they do in production; the test
 * moves jobs between states with `advance()`.
 */
import { randomUUID } from 'node:crypto';
import type { CleanupReport } from '../../src/jobs/cleanup.js';
import { guardStatsFrom } from '../../src/jobs/stats.js';
import type { ApiWorkflow } from '../../src/comfy/types.js';
import type { Guard, GuardStats, JobEvent, LearnedMemory, ServerHealthView, SubmitResult } from '../../src/jobs/guard-api.js';
import { isTerminal, newJobRecord, type JobOptions, type JobParams, type JobRecord, type JobStatus } from '../../src/jobs/types.js';
import { MemoryStore } from '../../src/store/memory.js';

class FakeGuardError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'GuardError';
  }
}

/** A Guard whose jobs only move when the test says so. */
export class FakeGuard implements Guard {
  readonly store = new MemoryStore();
  readonly listeners = new Set<(e: JobEvent) => void>();
  servers_: ServerHealthView[] = [
    { name: 'gpu-a', url: 'http://127.0.0.1:1', healthy: true, latencyMs: 12, vramTotal: 24e9, vramFree: 20e9, queueRemaining: 0, breaker: 'closed', lastError: null, checkedAt: Date.now(), tags: ['a'], drained: false },
  ];
  files = new Map<string, { contentType: string; data: Uint8Array }>();
  storeDown = false;
  emergencyStops = 0;
  cleanupCalls: number[] = [];

  async init(): Promise<this> {
    await this.store.init();
    return this;
  }

  async submit(workflow: ApiWorkflow, options: JobOptions & { params?: JobParams } = {}): Promise<SubmitResult> {
    const { params = {}, ...opts } = options;
    const now = Date.now();
    const job = newJobRecord({ id: randomUUID(), workflow, params, options: opts, now });
    const { created, job: stored } = await this.store.createJob(job);
    if (created) this.emit({ type: 'state', jobId: stored.id, from: null, to: 'queued', at: now, job: stored });
    return { id: stored.id, status: stored.status, created };
  }

  /** Moves a job to `to` with `patch`, emitting the state event as the guard does. */
  async advance(id: string, to: JobStatus, patch: Partial<JobRecord> = {}): Promise<JobRecord> {
    const job = await this.store.getJob(id);
    if (!job) throw new Error(`no job ${id}`);
    const updated = await this.store.transition(id, job.status, to, { ...patch, updatedAt: Date.now(), ...(isTerminal(to) ? { endedAt: Date.now() } : {}) });
    if (!updated) throw new Error(`could not move ${id} to ${to}`);
    this.emit({ type: 'state', jobId: id, from: job.status, to, at: Date.now(), job: updated });
    return updated;
  }

  emit(e: JobEvent): void {
    for (const l of this.listeners) l(e);
  }

  async get(id: string): Promise<JobRecord | null> {
    if (this.storeDown) throw Object.assign(new Error('database unreachable'), { code: 'STORE_UNAVAILABLE' });
    return this.store.getJob(id);
  }

  async list(filter = {}) {
    if (this.storeDown) throw Object.assign(new Error('database unreachable'), { code: 'STORE_UNAVAILABLE' });
    return this.store.query(filter);
  }

  async wait(id: string): Promise<JobRecord> {
    for await (const e of this.progress(id)) if (e.type === 'state' && isTerminal(e.to)) return e.job;
    throw new Error('unreachable');
  }

  async *progress(id: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<JobEvent> {
    const buffer: JobEvent[] = [];
    let wake: (() => void) | null = null;
    const l = (e: JobEvent) => {
      if (e.jobId !== id) return;
      buffer.push(e);
      wake?.();
    };
    this.listeners.add(l);
    const onAbort = () => wake?.();
    opts.signal?.addEventListener('abort', onAbort);
    try {
      const job = await this.store.getJob(id);
      if (!job) throw new FakeGuardError('JOB_NOT_FOUND', `no job with id ${id}`);
      yield { type: 'state', jobId: id, from: null, to: job.status, at: Date.now(), job };
      if (isTerminal(job.status)) return;
      for (;;) {
        opts.signal?.throwIfAborted();
        const e = buffer.shift();
        if (!e) {
          await new Promise<void>((r) => (wake = r));
          wake = null;
          continue;
        }
        yield e;
        if (e.type === 'state' && isTerminal(e.to)) return;
      }
    } finally {
      this.listeners.delete(l);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Number of active `progress()` subscribers (to see that a closed SSE client was cleaned up). */
  get subscribers(): number {
    return this.listeners.size;
  }

  async retry(id: string, opts: { force?: boolean } = {}): Promise<JobRecord> {
    const job = await this.store.getJob(id);
    if (!job) throw new FakeGuardError('JOB_NOT_FOUND', `no job with id ${id}`, 'id');
    if (!isTerminal(job.status) || job.status === 'completed') throw new FakeGuardError('INVALID_STATE', `job ${id} is ${job.status}`);
    if (job.error && !job.error.retryable && !opts.force) throw new FakeGuardError('RETRY_REFUSED', `job ${id} failed with ${job.error.code}; pass force`);
    return this.advance(id, 'queued', { error: null, endedAt: null });
  }

  async cancel(id: string): Promise<JobRecord> {
    const job = await this.store.getJob(id);
    if (!job) throw new FakeGuardError('JOB_NOT_FOUND', `no job with id ${id}`, 'id');
    if (isTerminal(job.status)) return job;
    return this.advance(id, 'cancelled');
  }

  listCorrupt(): Promise<Array<{ id: string; error: string }>> {
    return this.store.listCorrupt();
  }
  deleteJob(id: string): Promise<boolean> {
    return this.store.deleteJob(id);
  }

  paused = false;
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  isPaused(): boolean {
    return this.paused;
  }
  drain(server: string, on = true): void {
    const s = this.servers_.find((x) => x.name === server);
    if (s) s.drained = on;
  }

  async emergencyStop(): Promise<{ cancelled: number; servers: number }> {
    this.emergencyStops++;
    this.paused = true;
    const { jobs } = await this.store.listNonTerminal();
    for (const j of jobs) await this.cancel(j.id);
    return { cancelled: jobs.length, servers: this.servers_.length };
  }

  async stats(): Promise<GuardStats> {
    if (this.storeDown) throw Object.assign(new Error('database unreachable'), { code: 'STORE_UNAVAILABLE' });
    return guardStatsFrom(await this.store.stats(), 'full');
  }

  async servers(): Promise<ServerHealthView[]> {
    return this.servers_;
  }

  degradation(): 'full' {
    return 'full';
  }

  /** What `memoryModel()` answers; tests set it. */
  learned: LearnedMemory = { entries: [] };

  async memoryModel(): Promise<LearnedMemory> {
    if (this.storeDown) throw Object.assign(new Error('database unreachable'), { code: 'STORE_UNAVAILABLE' });
    return this.learned;
  }

  async cleanup(olderThanHours: number): Promise<CleanupReport> {
    this.cleanupCalls.push(olderThanHours);
    return { olderThanHours, deleted: await this.store.deleteTerminalBefore(Date.now() - olderThanHours * 3_600_000), outputs: null };
  }

  onEvent(listener: (e: JobEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async fetchOutput(server: string, file: { filename: string; subfolder?: string; type?: string }): Promise<{ contentType: string; data: Uint8Array }> {
    if (!this.servers_.some((s) => s.name === server)) throw new FakeGuardError('JOB_NOT_FOUND', `no server named ${server}`, 'server');
    const f = this.files.get(`${server}/${file.type ?? 'output'}/${file.subfolder ?? ''}/${file.filename}`);
    if (!f) throw Object.assign(new Error('HTTP 404'), { name: 'ComfyRequestError', kind: 'http', status: 404 });
    return f;
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.store.close();
  }
}
